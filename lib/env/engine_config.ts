/**
 * Which engine the environment asks for, and its settings, read and checked
 * at start (a bad URL is a `ConfigError` then, not a failure at the first
 * publish). Building it is `loadEngine`'s (`./engine.ts`), so that reading
 * the configuration loads no engine's driver.
 *
 * @module
 */

import {
  ConfigError,
  type EnvGetter,
  integer,
  oneOf,
  text,
} from "./readers.ts";

/** The backplane engines `BACKPLANE` names. */
export const BACKPLANES = [
  "local",
  "broadcast-channel",
  "redis",
  "redis-cluster",
  "postgres",
] as const;

/** One of {@linkcode BACKPLANES}. */
export type BackplaneKind = typeof BACKPLANES[number];

/** Settings every Redis engine takes from the environment. */
export interface RedisSettings {
  /** `REDIS_PREFIX`. */
  prefix?: string;
  /** `PRESENCE_TTL`, milliseconds. */
  presenceTtl?: number;
  /** `BACKPLANE_SECRET`. */
  secret?: string;
}

/** The engine the environment chose, with its settings (unset ones left out). */
export type EngineConfig =
  | {
    kind: "local";
    /** `HISTORY_MAX_TOPICS`. */
    maxHistoryTopics?: number;
    /** `HISTORY_MAX_BYTES`. */
    maxHistoryBytes?: number;
  }
  | {
    kind: "broadcast-channel";
    /** `BROADCAST_CHANNEL`. */
    channel?: string;
  }
  | RedisSettings & {
    kind: "redis";
    /** `REDIS_URL`. */
    url: string;
  }
  | RedisSettings & {
    kind: "redis-cluster";
    /** `REDIS_CLUSTER_URLS`, comma-separated. */
    clusterUrls: string[];
  }
  | {
    kind: "postgres";
    /** `DATABASE_URL`. */
    url: string;
    /** `POSTGRES_SCHEMA`. */
    schema?: string;
    /** `PRESENCE_TTL`, milliseconds. */
    presenceTtl?: number;
  };

/** Whether `url` is a URL with one of `schemes` and a host. */
function hasScheme(url: string, schemes: readonly string[]): boolean {
  try {
    const parsed = new URL(url);
    return schemes.includes(parsed.protocol) && parsed.hostname !== "";
  } catch {
    return false;
  }
}

const REDIS_SCHEMES = ["redis:", "rediss:"];

function redisUrls(get: EnvGetter): {
  url: string | undefined;
  clusterUrls: string[] | undefined;
} {
  const url = text(get, "REDIS_URL");
  if (url !== undefined && !hasScheme(url, REDIS_SCHEMES)) {
    throw new ConfigError(
      "REDIS_URL",
      "must be a redis:// or rediss:// URL such as rediss://user:password@host:6380",
    );
  }
  const clusterUrls = text(get, "REDIS_CLUSTER_URLS")?.split(",")
    .map((each) => each.trim()).filter(Boolean);
  for (const each of clusterUrls ?? []) {
    if (!hasScheme(each, REDIS_SCHEMES)) {
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
  return { url, clusterUrls };
}

/** `DATABASE_URL`, checked to be a Postgres URL. */
function databaseUrl(get: EnvGetter): string | undefined {
  const url = text(get, "DATABASE_URL");
  if (url !== undefined && !hasScheme(url, ["postgres:", "postgresql:"])) {
    throw new ConfigError(
      "DATABASE_URL",
      "must be a postgres:// URL such as postgres://user:password@host:5432/app",
    );
  }
  return url;
}

/**
 * Reads `BACKPLANE` and the chosen engine's variables. Without `BACKPLANE`,
 * `REDIS_URL` means `redis`, `REDIS_CLUSTER_URLS` `redis-cluster`, else
 * `DATABASE_URL` `postgres`, and nothing `local`.
 *
 * @throws {ConfigError} naming the first variable that is wrong.
 */
export function readEngine(get: EnvGetter): EngineConfig {
  const { url, clusterUrls } = redisUrls(get);
  const database = databaseUrl(get);
  const kind = oneOf(get, "BACKPLANE", BACKPLANES) ??
    (url
      ? "redis"
      : clusterUrls
      ? "redis-cluster"
      : database
      ? "postgres"
      : "local");
  const redis: RedisSettings = {
    prefix: text(get, "REDIS_PREFIX"),
    presenceTtl: integer(get, "PRESENCE_TTL", 100),
    secret: text(get, "BACKPLANE_SECRET"),
  };
  switch (kind) {
    case "redis-cluster":
      if (!clusterUrls?.length) {
        throw new ConfigError(
          "REDIS_CLUSTER_URLS",
          "is required when BACKPLANE is redis-cluster",
        );
      }
      return { kind, clusterUrls, ...redis };
    case "redis":
      if (url === undefined) {
        throw new ConfigError(
          "REDIS_URL",
          "is required when BACKPLANE is redis",
        );
      }
      return { kind, url, ...redis };
    case "postgres":
      if (database === undefined) {
        throw new ConfigError(
          "DATABASE_URL",
          "is required when BACKPLANE is postgres",
        );
      }
      return {
        kind,
        url: database,
        schema: text(get, "POSTGRES_SCHEMA"),
        presenceTtl: redis.presenceTtl,
      };
    case "broadcast-channel":
      return { kind, channel: text(get, "BROADCAST_CHANNEL") };
    default:
      return {
        kind: "local",
        maxHistoryTopics: integer(get, "HISTORY_MAX_TOPICS", 1),
        maxHistoryBytes: integer(get, "HISTORY_MAX_BYTES", 1),
      };
  }
}
