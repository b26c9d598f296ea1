/**
 * The server API over HTTP, on the socket's own port, for a backend job or
 * an operator: publish, disconnect, subscribe and unsubscribe a subject,
 * refresh, presence, history, members, topics and node info, on every node
 * of the engine (docs/PROTOCOL.md §9; the OpenAPI 3.1 document is
 * `serverApiDocument` in `@duplex-ws/asyncapi/openapi`). Mount it on the
 * server's `HttpRouter` for every method at `/api/:method` (it answers 405
 * to anything but `POST` itself); callers send the key in
 * `X-API-Key` (compared in constant time, never logged). Keep the key out
 * of code: `readEnv` gives it from `API_KEY`.
 *
 * @example
 * ```ts
 * import { createServer, EventRouter, HttpRouter } from "@duplex-ws/duplex";
 * import { serverApi } from "@duplex-ws/api";
 *
 * const key = "a key of 16 characters or more";
 * const http = new HttpRouter().on("*", "/api/:method", serverApi({ key }));
 * const app = createServer({ router: new EventRouter(), http });
 * const response = await app.fetch(
 *   new Request("http://localhost/api/info", {
 *     method: "POST",
 *     headers: { "x-api-key": key },
 *     body: "{}",
 *   }),
 * );
 * console.assert(response.status === 200);
 * await app.shutdown();
 * ```
 *
 * @module
 */

import type { HttpHandler } from "@duplex-ws/duplex";
import { API_METHODS, HttpApi } from "./server_api.ts";

export { API_KEY_HEADER } from "./server_api.ts";

/** The server API's methods, by name (what `POST /api/<method>` answers). */
export const SERVER_API_METHODS: readonly string[] = Object.keys(API_METHODS);

/** Options of {@linkcode serverApi}. */
export interface ServerApiOptions {
  /** The key callers send in `X-API-Key`; at least 16 characters. */
  readonly key: string;
}

/**
 * The server API as an `HttpRouter` handler, for `on("*", "/api/:method")`:
 * the API's method is the route's `method` parameter.
 *
 * @throws {RangeError} when the key is shorter than 16 characters.
 */
export function serverApi(options: ServerApiOptions): HttpHandler {
  if (typeof options.key !== "string" || options.key.length < 16) {
    throw new RangeError("serverApi: the key must be at least 16 characters");
  }
  const api = new HttpApi(options.key);
  return (request, { server, params }) => {
    if (!server) {
      throw new TypeError("serverApi: mount it on a server's router");
    }
    return api.handle(request, server as never, params.method ?? "");
  };
}
