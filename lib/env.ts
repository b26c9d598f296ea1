/**
 * Configuration from environment variables (the `./env` entry): reads only
 * what the environment sets and returns options that fit `createServer` and
 * `listen` as they are; every default stays where the option is defined.
 * A bad value stops the server at start with a {@linkcode ConfigError} that
 * names the variable.
 *
 * @example
 * ```ts
 * import { readEnv } from "@duplex-ws/duplex/env";
 * const env = readEnv((name) => ({ PORT: "9000", MAX_CONNECTIONS: "50" })[name]);
 * console.assert(env.listen.port === 9000 && env.server.maxConnections === 50);
 * ```
 *
 * @module
 */

import { descriptorBudget } from "./admission.ts";
import type { ListenOptions } from "./listen.ts";
import {
  createLogger,
  LOG_LEVELS,
  type Logger,
  type LogLevel,
} from "./logger.ts";
import { normalizeOrigin } from "./origin_policy.ts";
import { type Backplane, LocalBackplane } from "./pubsub/backplane.ts";
import { BroadcastChannelBackplane } from "./pubsub/broadcast_channel_backplane.ts";
import { isRedisUrl, RedisBackplane } from "./pubsub/redis_backplane.ts";
import {
  assertInteger,
  type FanoutLimitOptions,
  INTEGER_OPTIONS,
  type IntegerOption,
  type RateLimitOptions,
  type ServerOptions,
} from "./server_options.ts";

/** The backplane engines `BACKPLANE` names. */
export const BACKPLANES = [
  "local",
  "broadcast-channel",
  "redis",
  "redis-cluster",
] as const;

/** One of {@linkcode BACKPLANES}. */
export type BackplaneKind = typeof BACKPLANES[number];

/** The server options the environment can set (every one optional). */
export type EnvServerOptions = Omit<
  Partial<ServerOptions<never, never>>,
  "router" | "http" | "authenticate"
>;

/** The transports `TRANSPORT` names. */
export const TRANSPORTS = ["deno", "node"] as const;

/** One of {@linkcode TRANSPORTS}: `Deno.serve` (`listen`) or `node:http` + `ws` (`listenNode`). */
export type Transport = typeof TRANSPORTS[number];

/** What {@linkcode readEnv} returns. */
export interface EnvConfig {
  /** Spread into `createServer({...env.server, router})`. */
  server: EnvServerOptions;
  /**
   * Pass to `listen(app, env.listen)` (or `listenNode`): `PORT`,
   * `HOSTNAME`, `LISTEN_RECOVER_FOR`, `HEADER_TIMEOUT`.
   */
  listen: Pick<ListenOptions, "port" | "hostname" | "recoverFor"> & {
    headerTimeout?: number;
  };
  /** `TRANSPORT`: which of `listen` and `listenNode` serves. */
  transport: Transport;
  /** The engine `BACKPLANE` (or `REDIS_URL`) chose; also in `server.backplane`. */
  backplaneKind: BackplaneKind;
}

/** Reads one environment variable. */
export type EnvGetter = (name: string) => string | undefined;

/** A configuration value that cannot be used. */
export class ConfigError extends Error {
  /** The variable at fault. */
  readonly variable: string;

  /**
   * Makes the error; its message names the variable.
   * @param variable The variable.
   * @param message What is wrong with it.
   */
  constructor(variable: string, message: string) {
    super(`Invalid configuration: ${variable} ${message}`);
    this.name = "ConfigError";
    this.variable = variable;
  }
}

/** Environment variable → the integer option it sets. */
const INTEGER_VARIABLES: Record<string, IntegerOption> = {
  MAX_CONNECTIONS: "maxConnections",
  MAX_CONNECTIONS_PER_IP: "maxConnectionsPerIp",
  HANDSHAKES_PER_IP: "handshakesPerIpPerSecond",
  MAX_CONNECTIONS_PER_SUBJECT: "maxConnectionsPerSubject",
  HANDSHAKES_PER_SUBJECT: "handshakesPerSubjectPerSecond",
  REFRESH_GRACE: "refreshGrace",
  REQUEST_TIMEOUT: "requestTimeout",
  MAX_PENDING_REQUESTS: "maxPendingRequests",
  TRUST_PROXY: "trustProxy",
  MAX_MESSAGE_SIZE: "maxMessageSize",
  IDLE_TIMEOUT: "idleTimeout",
  CLOSE_TIMEOUT: "closeTimeout",
  DRAIN_TIMEOUT: "drainTimeout",
  MAX_TOPICS: "maxTopicsPerConnection",
  MAX_BUFFERED_AMOUNT: "maxBufferedAmount",
  MAX_IN_FLIGHT: "maxInFlight",
  MAX_PENDING_HANDSHAKES: "maxPendingHandshakes",
  TOPIC_CHANGES_PER_SECOND: "topicChangesPerSecond",
  PRESENCE_INTERVAL: "presenceInterval",
  PRESENCE_GRACE: "presenceGrace",
  MAX_REPLAY: "maxReplay",
  PUBLISH_KEY_TTL: "publishKeyTtl",
};

function text(get: EnvGetter, name: string): string | undefined {
  return get(name)?.trim() || undefined;
}

function integer(
  get: EnvGetter,
  name: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  const raw = text(get, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  try {
    if (!/^\d+$/.test(raw) || value > max) throw new RangeError();
    assertInteger(name, value, min);
  } catch {
    throw new ConfigError(
      name,
      `must be an integer from ${min} to ${max}, got "${raw}"`,
    );
  }
  return value;
}

function boolean(get: EnvGetter, name: string): boolean | undefined {
  const raw = text(get, name)?.toLowerCase();
  if (raw === undefined) return undefined;
  if (["1", "true", "yes"].includes(raw)) return true;
  if (["0", "false", "no"].includes(raw)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

function oneOf<T extends string>(
  get: EnvGetter,
  name: string,
  allowed: readonly T[],
): T | undefined {
  const raw = text(get, name);
  if (raw === undefined || allowed.includes(raw as T)) return raw as T;
  throw new ConfigError(
    name,
    `must be one of ${allowed.join(", ")}, got "${raw}"`,
  );
}

function origins(get: EnvGetter, name: string): string[] | undefined {
  const raw = text(get, name);
  if (raw === undefined) return undefined;
  return raw.split(",").map((origin) => origin.trim()).filter(Boolean).map(
    (origin) => {
      try {
        return normalizeOrigin(origin);
      } catch {
        throw new ConfigError(
          name,
          `must list origins such as https://app.example.com, got "${origin}"`,
        );
      }
    },
  );
}

/**
 * `MAX_SOCKETS` as set; else the budget for `DESCRIPTOR_LIMIT` (the soft
 * descriptor limit, which `deno task start` passes from `ulimit -Sn`).
 */
function maxSockets(get: EnvGetter): number | "auto" | undefined {
  if (text(get, "MAX_SOCKETS") === "auto") return "auto";
  const explicit = integer(get, "MAX_SOCKETS", 1);
  if (explicit !== undefined) return explicit;
  if (text(get, "DESCRIPTOR_LIMIT") === "unlimited") return undefined;
  const limit = integer(get, "DESCRIPTOR_LIMIT", 1);
  return limit === undefined ? undefined : descriptorBudget(limit);
}

function fanoutLimit(get: EnvGetter): FanoutLimitOptions | false | undefined {
  const deliveriesPerSecond = integer(get, "FANOUT_DELIVERIES", 0);
  const bytesPerSecond = integer(get, "FANOUT_BYTES", 0);
  if (deliveriesPerSecond === 0 && bytesPerSecond === 0) return false;
  if (deliveriesPerSecond === undefined && bytesPerSecond === undefined) {
    return undefined;
  }
  return { deliveriesPerSecond, bytesPerSecond };
}

function rateLimit(get: EnvGetter): RateLimitOptions | false | undefined {
  const messagesPerSecond = integer(get, "RATE_LIMIT_MESSAGES", 0);
  const bytesPerSecond = integer(get, "RATE_LIMIT_BYTES", 0);
  if (messagesPerSecond === 0 && bytesPerSecond === 0) return false;
  if (messagesPerSecond === undefined && bytesPerSecond === undefined) {
    return undefined;
  }
  return { messagesPerSecond, bytesPerSecond };
}

function backplane(
  get: EnvGetter,
  logger: Logger,
): [BackplaneKind, Backplane] {
  const url = text(get, "REDIS_URL");
  if (url !== undefined && !isRedisUrl(url)) {
    throw new ConfigError(
      "REDIS_URL",
      "must be a redis:// or rediss:// URL such as rediss://user:password@host:6380",
    );
  }
  const clusterUrls = text(get, "REDIS_CLUSTER_URLS")?.split(",")
    .map((each) => each.trim()).filter(Boolean);
  for (const each of clusterUrls ?? []) {
    if (!isRedisUrl(each)) {
      throw new ConfigError(
        "REDIS_CLUSTER_URLS",
        `must be redis:// URLs separated by commas, got "${each}"`,
      );
    }
  }
  if (url && clusterUrls) {
    throw new ConfigError(
      "REDIS_CLUSTER_URLS",
      "cannot be set with REDIS_URL: one Redis or one cluster",
    );
  }
  const kind = oneOf(get, "BACKPLANE", BACKPLANES) ??
    (url ? "redis" : clusterUrls ? "redis-cluster" : "local");
  const presenceTtl = integer(get, "PRESENCE_TTL", 100);
  switch (kind) {
    case "redis-cluster":
      if (!clusterUrls?.length) {
        throw new ConfigError(
          "REDIS_CLUSTER_URLS",
          "is required when BACKPLANE is redis-cluster",
        );
      }
      return [
        kind,
        new RedisBackplane({
          clusterUrls,
          prefix: text(get, "REDIS_PREFIX"),
          presenceTtl,
          secret: text(get, "BACKPLANE_SECRET"),
          logger,
        }),
      ];
    case "redis":
      if (url === undefined) {
        throw new ConfigError(
          "REDIS_URL",
          "is required when BACKPLANE is redis",
        );
      }
      return [
        kind,
        new RedisBackplane({
          url,
          prefix: text(get, "REDIS_PREFIX"),
          presenceTtl,
          secret: text(get, "BACKPLANE_SECRET"),
          logger,
        }),
      ];
    case "broadcast-channel":
      return [
        kind,
        new BroadcastChannelBackplane({
          channel: text(get, "BROADCAST_CHANNEL"),
        }),
      ];
    default:
      return [
        kind,
        new LocalBackplane({
          maxHistoryTopics: integer(get, "HISTORY_MAX_TOPICS", 1),
          maxHistoryBytes: integer(get, "HISTORY_MAX_BYTES", 1),
        }),
      ];
  }
}

/**
 * Reads and checks the configuration. Unset variables are left out, so the
 * options' own defaults apply.
 *
 * @throws {ConfigError} naming the first variable that is wrong.
 */
export function readEnv(get: EnvGetter): EnvConfig {
  const level = oneOf(get, "LOG_LEVEL", LOG_LEVELS) ?? "info";
  const logger = createLogger({ level: level as LogLevel });
  const [backplaneKind, engine] = backplane(get, logger);
  const server: EnvServerOptions = {
    allowedOrigins: origins(get, "ALLOWED_ORIGINS"),
    requireOrigin: boolean(get, "REQUIRE_ORIGIN"),
    rateLimit: rateLimit(get),
    logger,
    backplane: engine,
  };
  server.fanoutLimit = fanoutLimit(get);
  for (const [name, option] of Object.entries(INTEGER_VARIABLES)) {
    server[option] = integer(get, name, INTEGER_OPTIONS[option]);
  }
  server.maxSockets = maxSockets(get);
  return {
    server,
    listen: {
      port: integer(get, "PORT", 0, 65_535),
      hostname: text(get, "HOSTNAME"),
      recoverFor: integer(get, "LISTEN_RECOVER_FOR", 0),
      headerTimeout: integer(get, "HEADER_TIMEOUT", 1),
    },
    transport: oneOf(get, "TRANSPORT", TRANSPORTS) ?? "deno",
    backplaneKind,
  };
}
