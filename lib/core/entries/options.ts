/**
 * The option tables and the types of nested options, for configuration
 * readers (the `@duplex-ws/env` package reads environment variables with
 * them) and for apps that name an option's type: the integer options with
 * their least values, the one integer check, the descriptor budget, origins,
 * log levels, and the defaults of `listen`.
 *
 * @module
 */

export {
  assertInteger,
  INTEGER_OPTIONS,
  type IntegerOption,
} from "../server_defaults.ts";
export type { FanoutLimitOptions, RateLimitOptions } from "../limits.ts";
export type { ShutdownOptions } from "../server_types.ts";
export { descriptorBudget } from "../admission.ts";
export { normalizeOrigin } from "../origin_policy.ts";
export {
  LOG_LEVELS,
  type LogFields,
  type LoggerOptions,
  type LogLevel,
} from "../logger.ts";
export {
  LISTEN_DEFAULTS,
  ListenerLostError,
  type ShutdownOnSignalsOptions,
} from "../listen.ts";
export type { AnyServer } from "../endpoints.ts";
export type {
  ConflatePolicy,
  HistoryPolicyOptions,
  LatestPolicy,
  PresencePolicy,
  TopicMatcher,
} from "../pubsub/topic_policy.ts";
export type { LocalBackplaneOptions } from "../pubsub/backplane.ts";
export type { BroadcastChannelBackplaneOptions } from "../pubsub/broadcast_channel_backplane.ts";
export type { HandleOptions } from "../http_router.ts";
export type { HistoryItem, HistoryOptions } from "../pubsub/history_view.ts";
export type {
  ClusterApi,
  ClusterMember,
  DisconnectOptions,
  NodeInfo,
  TopicCount,
  TopicPage,
} from "../cluster_api.ts";
export type { OccupancyOptions } from "../occupancy.ts";
