/**
 * duplex: HTTP and WebSocket on one `Deno.serve` handler, with an RFC 6455
 * handshake check, a typed event router and written-down close semantics.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { createServer, EventRouter, HttpRouter } from "./mod.ts";
 *
 * const router = new EventRouter<undefined, { hello: string }>()
 *   .onOpen((ctx) => { ctx.emit("hello", "welcome"); })
 *   .on("echo", z.unknown(), (data) => data);
 * const http = new HttpRouter().get("/healthz", () => Response.json({ ok: true }));
 * const app = createServer({ router, http });
 * export default { fetch: app.fetch };
 * ```
 *
 * @module
 */

export * from "./backplane.ts";
export * from "./client.ts";
export * from "./broadcast_channel_backplane.ts";
export * from "./close_code.ts";
export * from "./connection.ts";
export * from "./context.ts";
export * from "./env_config.ts";
export * from "./envelope.ts";
export * from "./event_error.ts";
export * from "./event_router.ts";
export * from "./handshake.ts";
export * from "./hub.ts";
export * from "./http_router.ts";
export * from "./listen.ts";
export * from "./logger.ts";
export * from "./metrics.ts";
export * from "./origin_policy.ts";
export * from "./process_guard.ts";
export * from "./pubsub.ts";
export * from "./rate_limit.ts";
export * from "./redis_backplane.ts";
export * from "./server.ts";
export * from "./server_options.ts";
export * from "./standard_schema.ts";
export * from "./topic.ts";
