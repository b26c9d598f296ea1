/**
 * For transport authors (the `@duplex-ws/node` package is one): the
 * {@linkcode Transport} a session runs on and the {@linkcode SessionDriver}
 * it is driven through, and what a transport needs of a server besides its
 * `fetch`: run the handshake checks, start a session on an upgraded
 * connection, refuse, give capacity back.
 *
 * @module
 */

export type { SessionDriver, Transport } from "../transport.ts";
export { serverInternals } from "../server_internals.ts";
export type { ServerInternals } from "../server_types.ts";
export type { Admitted, Refused } from "../gate.ts";
export type { Reservation } from "../admission.ts";
export {
  HANDSHAKE_REFUSALS,
  type HandshakeRefusal,
  type RefusalReason,
} from "../handshake.ts";
export { ListenerLostError } from "../listener.ts";
