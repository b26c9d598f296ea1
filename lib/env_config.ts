/**
 * Configuration from environment variables, checked at start so that a bad
 * value stops the server with a clear message instead of failing later.
 *
 * @module
 */

import { type Backplane, LocalBackplane } from "./backplane.ts";
import { BroadcastChannelBackplane } from "./broadcast_channel_backplane.ts";
import { LOG_LEVELS, type Logger, type LogLevel } from "./logger.ts";
import { normaliseOrigin } from "./origin_policy.ts";
import { RedisBackplane } from "./redis_backplane.ts";

/** The backplane engines `BACKPLANE` names. */
export const BACKPLANES = ["local", "broadcast-channel", "redis"] as const;

/** One of {@linkcode BACKPLANES}. */
export type BackplaneKind = typeof BACKPLANES[number];

/** The configuration `main.ts` reads from the environment. */
export interface EnvConfig {
  /** `PORT`: the TCP port (default 8000). */
  port: number;
  /** `HOSTNAME`: the address to listen on (default `0.0.0.0`). */
  hostname: string;
  /** `ALLOWED_ORIGINS`: comma-separated browser origins allowed besides the own host. */
  allowedOrigins: string[];
  /** `REQUIRE_ORIGIN`: refuse handshakes without `Origin` (default false). */
  requireOrigin: boolean;
  /** `MAX_CONNECTIONS` (default 10000). */
  maxConnections: number;
  /** `MAX_MESSAGE_SIZE` in bytes (default 1048576). */
  maxMessageSize: number;
  /** `IDLE_TIMEOUT` in seconds, 0 disables (default 30). */
  idleTimeout: number;
  /** `CLOSE_TIMEOUT` in milliseconds (default 5000). */
  closeTimeout: number;
  /** `DRAIN_TIMEOUT` in milliseconds (default 3000). */
  drainTimeout: number;
  /** `LOG_LEVEL`: debug, info, warn, error or silent (default info). */
  logLevel: LogLevel;
  /** `MAX_TOPICS`: topics per connection (default 100). */
  maxTopicsPerConnection: number;
  /** `BACKPLANE`: local, broadcast-channel or redis (default redis when `REDIS_URL` is set, else local). */
  backplane: BackplaneKind;
  /** `REDIS_URL`, such as `redis://127.0.0.1:6379`. */
  redisUrl?: string;
  /** `REDIS_PREFIX`: prefix of keys and channels (default `duplex`). */
  redisPrefix: string;
  /** `PRESENCE_TTL` in milliseconds: a silent node's members stop counting after it (default 15000). */
  presenceTtl: number;
  /** `MAX_BUFFERED_AMOUNT` in bytes; 0 disables the slow-consumer cap (default 1048576). */
  maxBufferedAmount: number;
  /** `MAX_IN_FLIGHT`: handlers running at once per connection (default 64). */
  maxInFlight: number;
  /** `MAX_PENDING_HANDSHAKES`: handshakes waiting in authenticate (default 1000). */
  maxPendingHandshakes: number;
  /**
   * `RATE_LIMIT_MESSAGES` and `RATE_LIMIT_BYTES` per second per connection
   * (defaults 1000 and 4194304; both 0 disables the limit).
   */
  rateLimit: { messagesPerSecond: number; bytesPerSecond: number } | false;
}

/** Reads one environment variable. */
export type EnvGetter = (name: string) => string | undefined;

/** A configuration value that cannot be used. */
export class ConfigError extends Error {
  /** The variable at fault. */
  readonly variable: string;

  /** @param variable The variable. @param message What is wrong with it. */
  constructor(variable: string, message: string) {
    super(`Invalid configuration: ${variable} ${message}`);
    this.name = "ConfigError";
    this.variable = variable;
  }
}

function integer(
  get: EnvGetter,
  name: string,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const raw = get(name)?.trim();
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    throw new ConfigError(
      name,
      `must be an integer from ${min} to ${max}, got "${raw}"`,
    );
  }
  return value;
}

function boolean(get: EnvGetter, name: string, fallback: boolean): boolean {
  const raw = get(name)?.trim().toLowerCase();
  if (raw === undefined || raw === "") return fallback;
  if (["1", "true", "yes"].includes(raw)) return true;
  if (["0", "false", "no"].includes(raw)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

function origins(get: EnvGetter, name: string): string[] {
  const raw = get(name)?.trim();
  if (!raw) return [];
  return raw.split(",").map((origin) => origin.trim()).filter(Boolean).map(
    (origin) => {
      try {
        return normaliseOrigin(origin);
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
 * Reads and checks the configuration.
 *
 * @throws {ConfigError} naming the first variable that is wrong.
 *
 * @example
 * ```ts
 * import { readEnvConfig } from "./env_config.ts";
 * const config = readEnvConfig((name) => ({ PORT: "9000" })[name]);
 * console.assert(config.port === 9000 && config.maxConnections === 10000);
 * ```
 */
export function readEnvConfig(get: EnvGetter): EnvConfig {
  const logLevel = (get("LOG_LEVEL")?.trim() || "info") as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError(
      "LOG_LEVEL",
      `must be one of ${LOG_LEVELS.join(", ")}, got "${logLevel}"`,
    );
  }
  const redisUrl = get("REDIS_URL")?.trim() || undefined;
  if (redisUrl !== undefined && !/^rediss?:\/\/./.test(redisUrl)) {
    throw new ConfigError(
      "REDIS_URL",
      `must be a redis:// or rediss:// URL, got "${redisUrl}"`,
    );
  }
  const backplane = (get("BACKPLANE")?.trim() ||
    (redisUrl ? "redis" : "local")) as BackplaneKind;
  if (!BACKPLANES.includes(backplane)) {
    throw new ConfigError(
      "BACKPLANE",
      `must be one of ${BACKPLANES.join(", ")}, got "${backplane}"`,
    );
  }
  if (backplane === "redis" && redisUrl === undefined) {
    throw new ConfigError("REDIS_URL", "is required when BACKPLANE is redis");
  }
  return {
    port: integer(get, "PORT", 8000, 0, 65535),
    hostname: get("HOSTNAME")?.trim() || "0.0.0.0",
    allowedOrigins: origins(get, "ALLOWED_ORIGINS"),
    requireOrigin: boolean(get, "REQUIRE_ORIGIN", false),
    maxConnections: integer(get, "MAX_CONNECTIONS", 10_000, 1),
    maxMessageSize: integer(get, "MAX_MESSAGE_SIZE", 1_048_576, 1),
    idleTimeout: integer(get, "IDLE_TIMEOUT", 30, 0),
    closeTimeout: integer(get, "CLOSE_TIMEOUT", 5_000, 1),
    drainTimeout: integer(get, "DRAIN_TIMEOUT", 3_000, 0),
    logLevel,
    maxTopicsPerConnection: integer(get, "MAX_TOPICS", 100, 1),
    backplane,
    redisUrl,
    redisPrefix: get("REDIS_PREFIX")?.trim() || "duplex",
    presenceTtl: integer(get, "PRESENCE_TTL", 15_000, 100),
    maxBufferedAmount: integer(get, "MAX_BUFFERED_AMOUNT", 1_048_576, 0),
    maxInFlight: integer(get, "MAX_IN_FLIGHT", 64, 1),
    maxPendingHandshakes: integer(get, "MAX_PENDING_HANDSHAKES", 1000, 1),
    rateLimit: rateLimit(get),
  };
}

function rateLimit(get: EnvGetter): EnvConfig["rateLimit"] {
  const messagesPerSecond = integer(get, "RATE_LIMIT_MESSAGES", 1000, 0);
  const bytesPerSecond = integer(get, "RATE_LIMIT_BYTES", 4_194_304, 0);
  if (messagesPerSecond === 0 && bytesPerSecond === 0) return false;
  return { messagesPerSecond, bytesPerSecond };
}

/** Creates the backplane the configuration names. */
export function createBackplane(config: EnvConfig, logger: Logger): Backplane {
  switch (config.backplane) {
    case "redis":
      return new RedisBackplane({
        url: config.redisUrl!,
        prefix: config.redisPrefix,
        presenceTtl: config.presenceTtl,
        logger,
      });
    case "broadcast-channel":
      return new BroadcastChannelBackplane({ channel: config.redisPrefix });
    default:
      return new LocalBackplane();
  }
}
