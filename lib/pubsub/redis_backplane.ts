/**
 * The Redis engine, for several processes or machines (Deno Deploy
 * included): Redis pub/sub carries publishes, a hash per topic and a sorted
 * set of node heartbeats carry presence. Uses `ioredis`, loaded only when
 * this engine starts.
 *
 * @module
 */

import { type Logger, silentLogger } from "../logger.ts";
import type { Redis as RedisClient, RedisOptions } from "./_ioredis.ts";
import {
  type Backplane,
  type BackplaneHealth,
  type BackplaneSink,
  nowMicros,
  type Presence,
} from "./backplane.ts";

/**
 * Whether `url` is a Redis URL: `redis://` or `rediss://` (TLS) and a host,
 * with optional `user:password@`, port and database number.
 *
 * @example
 * ```ts
 * import { isRedisUrl } from "@duplex-ws/duplex/redis";
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
  /** The Redis URL, such as `redis://127.0.0.1:6379`. */
  url: string;
  /**
   * Prefix of every key and channel; nodes with the same prefix form one cluster.
   * @default {"duplex"}
   */
  prefix?: string;
  /**
   * Milliseconds after its last heartbeat that a node's members stop counting.
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
   * Where to log outages and recoveries.
   * @default {silentLogger}
   */
  logger?: Logger;
}

const HEARTBEAT = `
local t = redis.call('TIME')
redis.call('ZADD', KEYS[1], t[1] * 1000 + math.floor(t[2] / 1000), ARGV[1])
return 1`;

const SET_COUNT = `
if tonumber(ARGV[2]) == 0 then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1`;

// Sums the counts of live nodes and forgets the dead ones; returns
// {count, microseconds} on the Redis clock.
const PRESENCE = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local fields = redis.call('HGETALL', KEYS[1])
local sum = 0
for i = 1, #fields, 2 do
  local seen = redis.call('ZSCORE', KEYS[2], fields[i])
  if seen and tonumber(seen) >= now - tonumber(ARGV[1]) then
    sum = sum + tonumber(fields[i + 1])
  else
    redis.call('HDEL', KEYS[1], fields[i])
  end
end
return {sum, t[1] * 1000000 + t[2]}`;

type Scripted = RedisClient & {
  duplexHeartbeat(key: string, node: string): Promise<number>;
  duplexSetCount(key: string, node: string, count: number): Promise<number>;
  duplexPresence(
    hash: string,
    nodes: string,
    ttl: number,
  ): Promise<[number, number]>;
};

/** Publishes and presence across processes and machines through Redis. */
export class RedisBackplane implements Backplane {
  /** `redis`. */
  readonly kind = "redis";
  readonly #options:
    & Required<Omit<RedisBackplaneOptions, "heartbeatInterval">>
    & {
      heartbeatInterval: number;
    };
  readonly #node = crypto.randomUUID();
  #pub: Scripted | undefined;
  #sub: RedisClient | undefined;
  #local = new Map<string, number>();
  /** Recently read remote member counts, least recently read first (bounded). */
  #remoteCounts = new Map<string, { count: number; at: number }>();
  #subscribed = new Set<string>();
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #wasDown = false;

  /**
   * Creates the engine; nothing connects before `start`.
   * @throws {TypeError} when the URL is not a `redis:` or `rediss:` URL.
   */
  constructor(options: RedisBackplaneOptions) {
    const {
      url,
      prefix = "duplex",
      presenceTtl = 15_000,
      maxRetryDelay = 5_000,
    } = options;
    if (!isRedisUrl(url)) {
      throw new TypeError(
        `Cannot create Redis backplane: "${url}" is not a redis:// URL`,
      );
    }
    this.#options = {
      url,
      prefix,
      presenceTtl,
      heartbeatInterval: options.heartbeatInterval ??
        Math.floor(presenceTtl / 3),
      maxRetryDelay,
      logger: options.logger ?? silentLogger,
    };
  }

  /** This node's id in Redis. */
  get node(): string {
    return this.#node;
  }

  /** Connects both clients; resolves once connected, or at once if Redis is down (it keeps retrying). */
  async start(sink: BackplaneSink): Promise<void> {
    const { Redis } = await import("./_ioredis.ts");
    const { url, maxRetryDelay, logger } = this.#options;
    const common: RedisOptions = {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      retryStrategy: (times) =>
        Math.min(100 * 2 ** Math.min(times, 10), maxRetryDelay) *
        (0.5 + Math.random() / 2),
    };
    const pub = new Redis(url, {
      ...common,
      enableOfflineQueue: false,
    }) as Scripted;
    pub.defineCommand("duplexHeartbeat", { numberOfKeys: 1, lua: HEARTBEAT });
    pub.defineCommand("duplexSetCount", { numberOfKeys: 1, lua: SET_COUNT });
    pub.defineCommand("duplexPresence", { numberOfKeys: 2, lua: PRESENCE });
    const sub = new Redis(url, { ...common, autoResubscribe: true });
    this.#pub = pub;
    this.#sub = sub;
    const channelPrefix = `${this.#options.prefix}:t:`;
    sub.on("message", (channel: string, message: string) => {
      const cut = message.indexOf("\n");
      if (cut < 0 || message.slice(0, cut) === this.#node) return;
      sink(channel.slice(channelPrefix.length), message.slice(cut + 1));
    });
    for (const client of [pub, sub]) {
      client.on("error", (error: Error) => {
        if (!this.#wasDown) {
          logger.warn("redis unavailable", { error: error.message });
        }
        this.#wasDown = true;
      });
    }
    pub.on("ready", () => {
      if (this.#wasDown) logger.info("redis available again");
      this.#wasDown = false;
      this.#resync();
    });
    await Promise.allSettled([pub.connect(), sub.connect()]);
    this.#heartbeat = setInterval(
      () => this.#beat(),
      this.#options.heartbeatInterval,
    );
    Deno.unrefTimer(this.#heartbeat);
  }

  /** Subscribes to the topic's channel (re-subscribed by itself after an outage). */
  subscribe(topic: string): void {
    this.#subscribed.add(topic);
    this.#sub?.subscribe(this.#channel(topic)).catch(() => {});
  }

  /** Unsubscribes from the topic's channel. */
  unsubscribe(topic: string): void {
    this.#subscribed.delete(topic);
    this.#sub?.unsubscribe(this.#channel(topic)).catch(() => {});
  }

  /** Publishes to the topic's channel; `false` during an outage. */
  async publish(topic: string, text: string): Promise<boolean> {
    const pub = this.#pub;
    if (pub?.status !== "ready") return false;
    try {
      await pub.publish(this.#channel(topic), `${this.#node}\n${text}`);
      return true;
    } catch {
      return false;
    }
  }

  /** Records this node's count of the topic in Redis (and again after an outage). */
  setLocalCount(topic: string, count: number): void {
    if (count === 0) this.#local.delete(topic);
    else this.#local.set(topic, count);
    if (this.#pub?.status !== "ready") return;
    this.#pub.duplexSetCount(this.#presenceKey(topic), this.#node, count).catch(
      () => {},
    );
  }

  /** The sum over live nodes; during an outage, this node's own count. */
  async presence(topic: string, localCount: number): Promise<Presence> {
    if (this.#pub?.status === "ready") {
      try {
        const [count, version] = await this.#pub.duplexPresence(
          this.#presenceKey(topic),
          this.#nodesKey(),
          this.#options.presenceTtl,
        );
        this.#remember(topic, Math.max(0, Number(count) - localCount));
        return { count: Number(count), version: Number(version) };
      } catch {
        // fall through to the local view
      }
    }
    return { count: localCount, version: nowMicros() };
  }

  /**
   * The other nodes' members of `topic` as last read (at most a second
   * old: an older figure is refreshed in the background).
   */
  remoteCount(topic: string): number {
    const known = this.#remoteCounts.get(topic);
    if (known === undefined || performance.now() - known.at > 1_000) {
      // Marked fresh at once: one refresh at a time per topic.
      this.#remember(topic, known?.count ?? 0);
      this.presence(topic, this.#local.get(topic) ?? 0).catch(() => {});
    }
    return known?.count ?? 0;
  }

  #remember(topic: string, count: number): void {
    this.#remoteCounts.delete(topic);
    if (this.#remoteCounts.size >= 1_000) {
      this.#remoteCounts.delete(this.#remoteCounts.keys().next().value!);
    }
    this.#remoteCounts.set(topic, { count, at: performance.now() });
  }

  /** `degraded` while either client is not connected. */
  health(): BackplaneHealth {
    const states = [this.#pub?.status, this.#sub?.status];
    if (states.every((state) => state === "ready")) return { state: "ok" };
    return { state: "degraded", detail: `redis ${states.join("/")}` };
  }

  /** Removes this node's presence, then disconnects. */
  async close(): Promise<void> {
    clearInterval(this.#heartbeat);
    const pub = this.#pub;
    const sub = this.#sub;
    this.#pub = this.#sub = undefined;
    if (pub?.status === "ready") {
      const batch = pub.multi();
      for (const topic of this.#local.keys()) {
        batch.hdel(this.#presenceKey(topic), this.#node);
      }
      batch.zrem(this.#nodesKey(), this.#node);
      await batch.exec().catch(() => {});
    }
    await Promise.allSettled([pub?.quit(), sub?.quit()]);
    pub?.disconnect();
    sub?.disconnect();
  }

  #beat(): void {
    if (this.#pub?.status !== "ready") return;
    this.#pub.duplexHeartbeat(this.#nodesKey(), this.#node).catch(() => {});
  }

  #resync(): void {
    this.#beat();
    for (const [topic, count] of this.#local) {
      this.#pub?.duplexSetCount(this.#presenceKey(topic), this.#node, count)
        .catch(() => {});
    }
  }

  #channel(topic: string): string {
    return `${this.#options.prefix}:t:${topic}`;
  }

  #presenceKey(topic: string): string {
    return `${this.#options.prefix}:p:${topic}`;
  }

  #nodesKey(): string {
    return `${this.#options.prefix}:nodes`;
  }
}
