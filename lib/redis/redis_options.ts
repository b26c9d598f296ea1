/**
 * The Redis engine's options, their defaults, and the checks that make a
 * bad URL fail when the engine is made, not when it starts.
 *
 * @module
 */

import { type Logger, silentLogger } from "@duplex-ws/duplex";

/**
 * Whether `url` is a Redis URL: `redis://` or `rediss://` (TLS) and a host,
 * with optional `user:password@`, port and database number.
 *
 * @example
 * ```ts
 * import { isRedisUrl } from "@duplex-ws/redis";
 * console.assert(isRedisUrl("rediss://app:secret@redis.example.com:6380/0"));
 * console.assert(!isRedisUrl("http://redis.example.com"));
 * ```
 */
export function isRedisUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return (parsed.protocol === "redis:" || parsed.protocol === "rediss:") &&
      parsed.hostname !== "";
  } catch {
    return false;
  }
}

/** Options of {@linkcode RedisBackplane}. */
export interface RedisBackplaneOptions {
  /**
   * The Redis URL, such as `redis://127.0.0.1:6379` or, with TLS and ACL
   * credentials, `rediss://user:password@redis.example.com:6380/0`.
   * Exactly one of `url` and `clusterUrls`.
   */
  url?: string;
  /**
   * A Redis Cluster's seed nodes (`redis://host:port`, any of its masters;
   * the rest are discovered). Credentials and TLS come from the first URL.
   * Publishes then use sharded pub/sub (Redis 7+).
   */
  clusterUrls?: readonly string[];
  /**
   * Prefix of every key and channel; nodes with the same prefix form one cluster.
   * @default {"duplex"}
   */
  prefix?: string;
  /**
   * Milliseconds after its last heartbeat that a node is dead: its members
   * stop counting and its presence entries go.
   * @default {15000}
   */
  presenceTtl?: number;
  /**
   * Milliseconds between heartbeats.
   * @default {presenceTtl / 3}
   */
  heartbeatInterval?: number;
  /**
   * Most milliseconds between reconnection attempts (exponential backoff with jitter from 100 ms).
   * @default {5000}
   */
  maxRetryDelay?: number;
  /**
   * A secret every node of the cluster shares: frames are signed with
   * HMAC-SHA256 and unsigned or wrongly signed ones dropped, so a client of
   * Redis that does not know it cannot reach this cluster's clients.
   * @default {undefined: frames are unsigned, checked for size and shape only}
   */
  secret?: string;
  /**
   * The largest frame accepted from Redis, and published to it (UTF-16 code
   * units); a larger publish is not sent (`remote: "failed"`).
   * @default {1114112}
   */
  maxFrameSize?: number;
  /**
   * Where to log outages, recoveries and dropped frames.
   * @default {silentLogger}
   */
  logger?: Logger;
}

/** The options with their defaults, checked. */
export function resolveRedisOptions(options: RedisBackplaneOptions) {
  const {
    url,
    clusterUrls,
    prefix = "duplex",
    presenceTtl = 15_000,
    maxRetryDelay = 5_000,
    maxFrameSize = 1_114_112,
  } = options;
  if ((url === undefined) === (clusterUrls === undefined)) {
    throw new TypeError(
      "Cannot create Redis backplane: give exactly one of url and clusterUrls",
    );
  }
  for (const each of clusterUrls ?? [url!]) {
    if (!isRedisUrl(each)) {
      throw new TypeError(
        `Cannot create Redis backplane: "${each}" is not a redis:// URL`,
      );
    }
  }
  if (clusterUrls?.length === 0) {
    throw new TypeError("Cannot create Redis backplane: no cluster URLs");
  }
  return {
    url: url ?? clusterUrls![0],
    clusterUrls: clusterUrls ? [...clusterUrls] : undefined,
    prefix,
    presenceTtl,
    heartbeatInterval: options.heartbeatInterval ??
      Math.floor(presenceTtl / 3),
    maxRetryDelay,
    maxFrameSize,
    logger: options.logger ?? silentLogger,
  };
}
