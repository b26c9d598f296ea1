/**
 * How a transport (`listen`'s Deno one, `@duplex-ws/node`, HTTP streaming)
 * and `combineServers` reach what a server keeps off its public object.
 *
 * @module
 */

import type { DuplexServer, ServerInternals } from "./server_types.ts";

const internals = new WeakMap<object, ServerInternals<unknown>>();

/** Gives a server object its internals (`createServer`, `combineServers`). */
export function setServerInternals<State>(
  server: DuplexServer<State, never>,
  found: ServerInternals<State>,
): void {
  internals.set(server, found as ServerInternals<unknown>);
}

/**
 * A server's internals, for the transports.
 * @throws {TypeError} for an object `createServer` did not make.
 */
export function serverInternals<State>(
  server: DuplexServer<State, never>,
): ServerInternals<State> {
  const found = internals.get(server);
  if (!found) throw new TypeError("Not a server made by createServer");
  return found as ServerInternals<State>;
}
