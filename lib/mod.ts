/**
 * duplex: HTTP and WebSocket on one `Deno.serve` handler, with an RFC 6455
 * handshake check, a typed event router, written-down close semantics and
 * topics that scale from one process to many machines.
 *
 * This is the server entry. The others: `./client` (the typed client, web
 * APIs only), `./redis` (the Redis engine, the only entry that loads a Redis
 * client), `./jwt` (signed tokens for the `auth` option, the only entry that
 * loads a JWT library), `./env` (configuration from environment variables),
 * `./node` (the `node:http` transport) and `./testing` (start an app on port
 * 0 and talk to it in tests).
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

export { type FanoutLimitOptions } from "./server_options.ts";
export {
  allowTopics,
  AuthFailure,
  type AuthOptions,
  AuthUnavailableError,
  type Awaitable,
  type Identity,
  matchesTopic,
  type TopicAction,
  unauthorizedResponse,
} from "./auth/identity.ts";
export {
  readCookie,
  readToken,
  tokenFromProtocols,
  type TokenSource,
} from "./auth/credentials.ts";
export {
  AUTH_FAILURES,
  AUTH_PROTOCOL,
  AUTH_REFRESH,
  type AuthFailureReason,
  type AuthRefreshData,
  type AuthRefreshReply,
  type AuthRefreshRequest,
  BEARER_PROTOCOL_PREFIX,
  bearerProtocols,
  TOPIC_LEFT,
  type TopicLeft,
} from "./protocol/auth.ts";
export { type AnyServer, combineServers } from "./endpoints.ts";
export {
  createServer,
  type DuplexServer,
  type ServerHealth,
  type ShutdownOptions,
} from "./server.ts";
export {
  type Authenticate,
  type AuthResult,
  type RateLimitOptions,
  SERVER_DEFAULTS,
  type ServerOptions,
} from "./server_options.ts";
export {
  type BinaryHandler,
  type CloseHandler,
  type EventDefinition,
  type EventDefinitions,
  type EventDocs,
  type EventHandler,
  type EventOptions,
  EventRouter,
  type OpenHandler,
  type PushDocs,
  type RequestDefinitions,
} from "./event_router.ts";
export type {
  ConnectionIdentity,
  Context,
  PublishData,
  PublishOptions,
  PushArgs,
  PushMap,
} from "./context.ts";
export {
  STREAM_RESET,
  type StreamPosition,
  type StreamReset,
} from "./protocol/stream.ts";
export { EventError } from "./event_error.ts";
export {
  defineRequest,
  type DefineRequestOptions,
  type ServerRequest,
  type ServerRequestOptions,
} from "./server_request.ts";
export {
  asyncApi,
  ASYNCAPI_VERSION,
  type AsyncApiDocument,
  asyncApiHandler,
  type AsyncApiOptions,
  type JsonSchema,
  toJsonSchema,
} from "./asyncapi.ts";
export { ErrorCode } from "./protocol/error_code.ts";
export {
  CloseCode,
  type CloseInfo,
  LibraryClose,
  type LibraryCloseInfo,
  type LibraryCloseKind,
  ReadyState,
} from "./protocol/close_code.ts";
export {
  type HandleOptions,
  type HttpContext,
  type HttpHandler,
  HttpRouter,
  jsonError,
} from "./http_router.ts";
export {
  listen,
  LISTEN_DEFAULTS,
  type Listener,
  ListenerLostError,
  type ListenOptions,
  shutdownOnSignals,
  type ShutdownOnSignalsOptions,
} from "./listen.ts";
export {
  createLogger,
  type LogFields,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  silentLogger,
} from "./logger.ts";
export { installProcessGuard } from "./process_guard.ts";
export {
  type Backplane,
  type BackplaneEvents,
  type BackplaneHealth,
  type BackplaneSink,
  LocalBackplane,
  type LocalBackplaneOptions,
  type Presence,
} from "./pubsub/backplane.ts";
export {
  BroadcastChannelBackplane,
  type BroadcastChannelBackplaneOptions,
} from "./pubsub/broadcast_channel_backplane.ts";
export type {
  JoinOptions,
  JoinResult,
  PublishResult,
} from "./pubsub/pubsub.ts";
export type { PresenceDelta, PresenceEntry } from "./pubsub/presence.ts";
export type {
  HistoryPolicyOptions,
  PresencePolicy,
  TopicMatcher,
  TopicPolicy,
} from "./pubsub/topic_policy.ts";
export type {
  Appended,
  AppendOptions,
  HistoryEntry,
  HistoryPolicy,
  HistoryRead,
} from "./pubsub/history.ts";
export type { LibraryPushes } from "./protocol/envelope.ts";
export {
  PRESENCE_DIFF,
  PRESENCE_STATE,
  type PresenceDiff,
  type PresenceMembers,
  type PresenceState,
} from "./protocol/presence.ts";
export type {
  InferInput,
  InferOutput,
  StandardSchemaIssue,
  StandardSchemaProps,
  StandardSchemaResult,
  StandardSchemaV1,
} from "./standard_schema.ts";
