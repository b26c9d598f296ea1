/**
 * For transport authors (`@duplex-ws/node` and `@duplex-ws/http-transport`
 * are two): the {@linkcode Transport} a session runs on and the
 * {@linkcode SessionDriver} it is driven through, and what a transport
 * needs of a server besides its `fetch`: run the handshake checks, start a
 * session on an upgraded connection, refuse, give capacity back; for one
 * served inside the server's `fetch`, a {@linkcode FetchTransport}.
 *
 * @module
 */

export type {
  FetchTransport,
  FetchTransportHost,
  SessionDriver,
  Transport,
} from "../transport.ts";
export type { ControlHandler, ControlPlane } from "../control.ts";
export { readBody } from "../http_body.ts";
export { KeyedBuckets, TokenBucket } from "../token_bucket.ts";
export { serverInternals } from "../server_internals.ts";
export type { ServerInternals } from "../server_types.ts";
export type { MetricFamily } from "../metrics.ts";
export type { Admitted, Refused } from "../gate.ts";
export type { Reservation } from "../admission.ts";
export {
  HANDSHAKE_REFUSALS,
  type HandshakeRefusal,
  type RefusalReason,
} from "../handshake.ts";
export { ListenerLostError } from "../listener.ts";
