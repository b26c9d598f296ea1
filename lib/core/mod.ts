/**
 * duplex: HTTP and WebSocket on one `Deno.serve` handler, with an RFC 6455
 * handshake check, a typed event router, written-down close semantics and
 * topics that scale from one process to many machines.
 *
 * This is what an app author uses. The package's other entries have their
 * own audiences: `./router` (the router's type vocabulary), `./auth`
 * (helpers for custom authentication), `./options` (the option tables, for
 * configuration readers), `./engine` (for engine authors) and `./transport`
 * (for transport authors). The wire is `@duplex-ws/protocol`; the typed
 * client `@duplex-ws/client`; engines, transports and the test kit are
 * packages of their own.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { createServer, EventRouter, HttpRouter } from "@duplex-ws/duplex";
 *
 * const router = new EventRouter<undefined, { hello: string }>()
 *   .onOpen((ctx) => { ctx.emit("hello", "welcome"); })
 *   .on("echo", z.unknown(), (data) => data);
 * const http = new HttpRouter().get("/healthz", (_req, { server }) =>
 *   Response.json(server?.health())
 * );
 * const app = createServer({ router, http });
 * export default { fetch: app.fetch };
 * ```
 *
 * @module
 */

export { createServer } from "./server.ts";
export type { DuplexServer, ServerHealth } from "./server_types.ts";
export type { ServerOptions } from "./server_options.ts";
export { SERVER_DEFAULTS } from "./server_defaults.ts";
export { EventRouter } from "./event_router.ts";
export type {
  ConnectionIdentity,
  Context,
  PublishData,
  PublishOptions,
  PushArgs,
  PushMap,
} from "./context.ts";
export { EventError } from "./event_error.ts";
export { PositionConflict } from "./position_conflict.ts";
export { defineRequest, type ServerRequest } from "./server_request.ts";
export {
  type HttpContext,
  type HttpHandler,
  HttpRouter,
  jsonError,
} from "./http_router.ts";
export { HttpError, readJson } from "./http_body.ts";
export {
  listen,
  type Listener,
  ListenError,
  type ListenOptions,
  shutdownOnSignals,
} from "./listen.ts";
export { createLogger, type Logger, silentLogger } from "./logger.ts";
export { installProcessGuard } from "./process_guard.ts";
export { combineServers } from "./endpoints.ts";
export {
  AuthFailure,
  type AuthOptions,
  type Identity,
} from "./auth/identity.ts";
export type { TopicPolicy } from "./pubsub/topic_policy.ts";
export type { TopicHistory } from "./pubsub/history_view.ts";
export type {
  JoinOptions,
  JoinResult,
  PublishResult,
} from "./pubsub/pubsub.ts";
export {
  type Backplane,
  LocalBackplane,
  type Presence,
} from "./pubsub/backplane.ts";
export { BroadcastChannelBackplane } from "./pubsub/broadcast_channel_backplane.ts";
export type { StandardSchemaV1 } from "./standard_schema.ts";
export {
  CloseCode,
  type CloseInfo,
  ErrorCode,
  ReadyState,
  type StreamPosition,
} from "@duplex-ws/protocol";
