/**
 * Configuration from environment variables (the `./env` entry): reads only
 * what the environment sets and returns options that fit `createServer` and
 * `listen` as they are; every default stays where the option is defined.
 * A bad value stops the server at start with a {@linkcode ConfigError} that
 * names the variable.
 *
 * @example
 * ```ts
 * import { readEnv } from "@duplex-ws/env";
 * const env = readEnv((name) => ({ PORT: "9000", MAX_CONNECTIONS: "50" })[name]);
 * console.assert(env.listen.port === 9000 && env.server.maxConnections === 50);
 * ```
 *
 * @module
 */

import {
  createLogger,
  type ListenOptions,
  type ServerOptions,
} from "@duplex-ws/duplex";
import {
  descriptorBudget,
  type FanoutLimitOptions,
  INTEGER_OPTIONS,
  type IntegerOption,
  LOG_LEVELS,
  type LogLevel,
  normalizeOrigin,
  type RateLimitOptions,
} from "@duplex-ws/duplex/options";
import { type EngineConfig, readEngine } from "./engine_config.ts";
import {
  boolean,
  ConfigError,
  type EnvGetter,
  integer,
  oneOf,
  text,
} from "./readers.ts";

export { ConfigError, type EnvGetter } from "./readers.ts";
export {
  type BackplaneKind,
  BACKPLANES,
  type EngineConfig,
  type RedisSettings,
} from "./engine_config.ts";

/** The server options the environment can set (every one optional). */
export type EnvServerOptions = Omit<
  Partial<ServerOptions<never, never>>,
  "router" | "http" | "authenticate" | "backplane"
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
  /**
   * The engine `BACKPLANE` (or `REDIS_URL`, `REDIS_CLUSTER_URLS`) chose,
   * with its settings: build it with `loadEngine` (from
   * `@duplex-ws/env/engine`) and pass it as `backplane`.
   */
  engine: EngineConfig;
  /**
   * `API_KEY`: the server API's key, when it is on; mount the API with it
   * (`serverApi({ key })` from `@duplex-ws/api`).
   */
  apiKey?: string;
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
  KEYED_REQUESTS_PER_SECOND: "keyedRequestsPerSecond",
  ADDRESS_BUDGET: "addressBudget",
  PRESENCE_INTERVAL: "presenceInterval",
  PRESENCE_GRACE: "presenceGrace",
  MAX_REPLAY: "maxReplay",
  STREAM_WINDOW: "streamWindow",
  MAX_STREAM_CHUNKS: "maxStreamChunks",
  MAX_STREAMS_PER_CONNECTION: "maxStreamsPerConnection",
  PUBLISH_KEY_TTL: "publishKeyTtl",
};

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

/** `API_KEY`: at least 16 characters, or the server API stays off. */
function apiKey(get: EnvGetter): string | undefined {
  const key = text(get, "API_KEY");
  if (key !== undefined && key.length < 16) {
    throw new ConfigError("API_KEY", "must be at least 16 characters");
  }
  return key;
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
  const engine = readEngine(get);
  const server: EnvServerOptions = {
    allowedOrigins: origins(get, "ALLOWED_ORIGINS"),
    trustedProxies: text(get, "TRUSTED_PROXIES")?.split(",")
      .map((proxy) => proxy.trim()).filter(Boolean),
    requireOrigin: boolean(get, "REQUIRE_ORIGIN"),
    rateLimit: rateLimit(get),
    logger,
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
    engine,
    apiKey: apiKey(get),
  };
}
