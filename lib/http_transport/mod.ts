/**
 * The HTTP transport, for clients whose WebSocket is blocked (a corporate
 * proxy, an old load balancer): on the WebSocket endpoint's own URL, `GET`
 * with `Accept: text/event-stream` opens a session whose frames come as
 * Server-Sent Events, and `POST` with `Duplex-Session: <id>` carries its
 * messages, one envelope per line (docs/PROTOCOL.md §7). The session is
 * the server's own: admission, Origin, authentication, limits and metrics
 * apply as to a socket, and no session code knows which transport it runs
 * on. With a multi-node engine a `POST` that reaches another node is
 * forwarded to the session's own, so no sticky sessions are needed.
 *
 * The typed client falls back to it by itself (`transports`, default
 * `["websocket", "sse"]`).
 *
 * @example
 * ```ts
 * import { createServer, EventRouter } from "@duplex-ws/duplex";
 * import { httpTransport } from "@duplex-ws/http-transport";
 *
 * const router = new EventRouter();
 * const app = createServer({ router, httpTransport: httpTransport() });
 * const stream = await app.fetch(
 *   new Request("http://localhost/", {
 *     headers: { accept: "text/event-stream" },
 *   }),
 * );
 * console.assert(stream.headers.get("content-type")?.startsWith("text/event-stream"));
 * await stream.body?.cancel();
 * await app.shutdown();
 * ```
 *
 * @module
 */

import type { FetchTransport } from "@duplex-ws/duplex/transport";
import { HttpStreams } from "./http_streams.ts";

/** The HTTP transport, for `createServer`'s `httpTransport` option. */
export function httpTransport(): FetchTransport {
  return (host) => new HttpStreams(host);
}
