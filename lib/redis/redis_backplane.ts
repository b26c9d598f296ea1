/**
 * The Redis engine, for several processes or machines (Deno Deploy
 * included), on one Redis or a Redis Cluster (`clusterUrls`): pub/sub
 * carries publishes and presence changes (sharded pub/sub on a cluster:
 * SPUBLISH to, and SSUBSCRIBE on, the shard that owns the topic), a hash
 * per topic carries member counts and presence entries, a sorted set of
 * heartbeats tells which nodes are alive. Everything read back is checked
 * (`redis_frames.ts`) before any client sees it. Uses `ioredis`, loaded only
 * when this engine starts.
 *
 * Keys and channels, for a prefix `p` and a topic `T` (the `{T}` hash tag
 * keeps one topic on one Redis Cluster slot):
 *
 * | Name         | Type    | What                                              | Expiry                 |
 * | ------------ | ------- | ------------------------------------------------- | ---------------------- |
 * | `p:{T}:t`    | channel | pushes, framed `<node>\n<hmac>\n<envelope>`       | –                      |
 * | `p:{T}:pr`   | channel | presence changes, framed the same way             | –                      |
 * | `p:{T}:c`    | hash    | node → its member count                           | 6 × TTL, refreshed     |
 * | `p:{T}:pm`   | hash    | `node:key` → presence entry JSON                  | 6 × TTL, refreshed     |
 * | `p:nodes`    | zset    | node → last heartbeat (Redis clock, ms)           | pruned after 10 × TTL  |
 *
 * On a cluster every key and channel of topic `T` hashes to `{T}`'s slot,
 * so every script (append and publish, share presence) runs on one shard
 * and publishes there with SPUBLISH; each node SSUBSCRIBEs only to the
 * channels of topics it has members in, on their shards.
 *
 * @module
 */

import { type Logger, silentLogger } from "@duplex-ws/duplex";
import type {
  ClusterOptions,
  Redis as RedisClient,
  RedisOptions,
} from "./_ioredis.ts";
import {
  type Backplane,
  type BackplaneEvents,
  type BackplaneHealth,
  type BackplaneSink,
  nowMicros,
  type Presence,
  type PresenceDelta,
  type PresenceEntry,
} from "@duplex-ws/duplex/engine";
import { isValidTopic, withPosition } from "@duplex-ws/protocol";
import { FrameCodec, isPushBody, parsePresenceDelta } from "./redis_frames.ts";
import {
  APPEND,
  COUNT,
  HEARTBEAT,
  HISTORY,
  MAX_NODE_COUNT,
  SET_COUNT,
  SHARE_PRESENCE,
} from "./redis_scripts.ts";
import {
  type Appended,
  type AppendOptions,
  type HistoryRead,
  newEpoch,
} from "@duplex-ws/duplex/engine";

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

type Scripted = RedisClient & {
  duplexHeartbeat(nodes: string, node: string, ttl: number): Promise<string[]>;
  duplexSetCount(
    counts: string,
    node: string,
    count: number,
    expiry: number,
  ): Promise<number>;
  duplexCount(
    counts: string,
    nodes: string,
    ttl: number,
  ): Promise<[number, number]>;
  duplexSharePresence(
    members: string,
    node: string,
    expiry: number,
    channel: string,
    frame: string,
    command: string,
    ...pairs: string[]
  ): Promise<number>;
  duplexAppend(
    keys: number,
    ...args: (string | number)[]
  ): Promise<[number, number, string]>;
  duplexHistory(
    meta: string,
    stream: string,
    since: string,
    limit: number,
    ttl: number,
    epoch: string,
  ): Promise<(string | number)[]>;
};

/**
 * Ends a client: QUIT, and wait for its connection to end (ioredis's own
 * disconnect would leave a timer behind); a client that cannot quit is
 * disconnected.
 */
async function quit(client: RedisClient | undefined): Promise<void> {
  if (client === undefined || client.status === "end") return;
  const ended = new Promise<void>((resolve) => client.once("end", resolve));
  try {
    await client.quit();
    await ended;
  } catch {
    client.disconnect();
  }
}

/** What the engine needs of a subscriber client, one Redis or a cluster. */
interface Subscriber {
  readonly status: string;
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
  ssubscribe(...channels: string[]): Promise<unknown>;
  sunsubscribe(...channels: string[]): Promise<unknown>;
  ping(): Promise<unknown>;
  on(event: string, listener: (...args: never[]) => void): unknown;
  once(event: string, listener: () => void): unknown;
  quit(): Promise<unknown>;
  disconnect(): void;
}

/** `host:port` seeds from `redis://` URLs, and the client options of the first. */
function clusterSeeds(urls: readonly string[]): {
  seeds: { host: string; port: number }[];
  redisOptions: ClusterOptions["redisOptions"];
} {
  const seeds = urls.map((url) => {
    const parsed = new URL(url);
    return { host: parsed.hostname, port: Number(parsed.port || 6379) };
  });
  const first = new URL(urls[0]);
  const redisOptions: NonNullable<ClusterOptions["redisOptions"]> = {};
  if (first.username) {
    redisOptions.username = decodeURIComponent(first.username);
  }
  if (first.password) {
    redisOptions.password = decodeURIComponent(first.password);
  }
  if (first.protocol === "rediss:") redisOptions.tls = {};
  return { seeds, redisOptions };
}

/** Dropped frames are logged at most this often (milliseconds). */
const DROP_LOG_EVERY = 10_000;

/** Publishes and presence across processes and machines through Redis. */
export class RedisBackplane implements Backplane {
  /** `redis`, or `redis-cluster` with `clusterUrls`. */
  readonly kind: "redis" | "redis-cluster";
  readonly #options:
    & Required<
      Omit<
        RedisBackplaneOptions,
        "heartbeatInterval" | "secret" | "url" | "clusterUrls"
      >
    >
    & { heartbeatInterval: number; url: string; clusterUrls?: string[] };
  /** Whether this is a cluster: sharded pub/sub, no cross-slot commands. */
  readonly #cluster: boolean;
  /** Every channel subscribed, to subscribe again after a failover. */
  readonly #channels = new Set<string>();
  readonly #node = crypto.randomUUID();
  readonly #frames: FrameCodec;
  #pub: Scripted | undefined;
  #sub: Subscriber | undefined;
  #events: BackplaneEvents | undefined;
  #local = new Map<string, number>();
  /** Recently read remote member counts, least recently read first (bounded). */
  #remoteCounts = new Map<string, { count: number; at: number }>();
  /** This node's presence entries, by topic: shared again after an outage and on refresh. */
  #entries = new Map<string, Map<string, PresenceEntry>>();
  #live = new Set<string>();
  /** Nodes whose presence changes were taken in since the last heartbeat. */
  #heard = new Set<string>();
  #timers: ReturnType<typeof setInterval>[] = [];
  #wasDown = false;
  /** Whether publishes may have been missed (an outage since the last catch-up). */
  #missed = false;
  #dropped = 0;
  #lastDropLog = 0;

  /**
   * Creates the engine; nothing connects before `start`.
   * @throws {TypeError} when the URL (or a cluster URL) is not a `redis:`
   * or `rediss:` URL, or when not exactly one of `url` and `clusterUrls`
   * is given.
   */
  constructor(options: RedisBackplaneOptions) {
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
    this.#cluster = clusterUrls !== undefined;
    this.kind = this.#cluster ? "redis-cluster" : "redis";
    this.#options = {
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
    this.#frames = new FrameCodec(options.secret, maxFrameSize);
  }

  /** This node's id in Redis. */
  get node(): string {
    return this.#node;
  }

  /** Frames from Redis dropped since start (too large, malformed, unsigned). */
  get dropped(): number {
    return this.#dropped;
  }

  /** Connects both clients; resolves once connected, or at once if Redis is down (it keeps retrying). */
  async start(sink: BackplaneSink, events?: BackplaneEvents): Promise<void> {
    this.#events = events;
    const [{ Cluster, Redis }] = await Promise.all([
      import("./_ioredis.ts"),
      this.#frames.ready(),
    ]);
    const { url, clusterUrls, maxRetryDelay, logger } = this.#options;
    const backoff = (times: number) =>
      Math.min(100 * 2 ** Math.min(times, 10), maxRetryDelay) *
      (0.5 + Math.random() / 2);
    const common: RedisOptions = {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      retryStrategy: backoff,
    };
    let pub: Scripted;
    let sub: Subscriber;
    if (clusterUrls) {
      const { seeds, redisOptions } = clusterSeeds(clusterUrls);
      const cluster: ClusterOptions = {
        lazyConnect: true,
        clusterRetryStrategy: backoff,
        redisOptions: { ...redisOptions, maxRetriesPerRequest: 1 },
        // A failover moves slots: follow within a second.
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 200,
        slotsRefreshInterval: 1_000,
      };
      pub = new Cluster(seeds, {
        ...cluster,
        enableOfflineQueue: false,
      }) as unknown as Scripted;
      sub = new Cluster(seeds, {
        ...cluster,
        shardedSubscribers: true,
      }) as unknown as Subscriber;
    } else {
      pub = new Redis(url, {
        ...common,
        enableOfflineQueue: false,
      }) as Scripted;
      sub = new Redis(url, {
        ...common,
        autoResubscribe: true,
      }) as unknown as Subscriber;
    }
    pub.defineCommand("duplexHeartbeat", { numberOfKeys: 1, lua: HEARTBEAT });
    pub.defineCommand("duplexSetCount", { numberOfKeys: 1, lua: SET_COUNT });
    pub.defineCommand("duplexCount", { numberOfKeys: 2, lua: COUNT });
    pub.defineCommand("duplexSharePresence", {
      numberOfKeys: 1,
      lua: SHARE_PRESENCE,
    });
    // Two or three keys (the idempotency key is optional): given per call.
    pub.defineCommand("duplexAppend", { lua: APPEND });
    pub.defineCommand("duplexHistory", { numberOfKeys: 2, lua: HISTORY });
    this.#pub = pub;
    this.#sub = sub;
    sub.on(
      this.#cluster ? "smessage" : "message",
      (channel: string, frame: string) => this.#receive(channel, frame, sink),
    );
    for (const client of [pub, sub] as Subscriber[]) {
      // A cluster reports a shard's loss per node, and may stay "ready".
      if (this.#cluster) {
        client.on("node error", () => {
          this.#wasDown = true;
          this.#missed = true;
        });
      }
      client.on("error", (error: Error) => {
        if (!this.#wasDown) {
          logger.warn("redis unavailable", { error: error.message });
        }
        this.#wasDown = true;
        this.#missed = true;
      });
      // Redis killed or restarted may end the connection without an error.
      client.on("close", () => {
        this.#wasDown = true;
        this.#missed = true;
      });
      client.on("ready", () => this.#caughtUp());
    }
    pub.on("ready", () => {
      if (this.#wasDown) {
        logger.info("redis available again");
        this.#wasDown = false;
        this.#events?.resync();
      }
      this.#refresh();
    });
    await Promise.allSettled(
      [pub, sub].map((client) =>
        (client as unknown as { connect(): Promise<void> }).connect()
      ),
    );
    const every = (ms: number, run: () => void) => {
      const timer = setInterval(run, ms);
      Deno.unrefTimer(timer);
      this.#timers.push(timer);
    };
    every(this.#options.heartbeatInterval, () => void this.#beat());
    // Counts and entries expire after 6 TTLs unless refreshed: crashed
    // nodes' keys go by themselves, live ones are written again well before.
    every(this.#options.presenceTtl * 2, () => this.#refresh());
    if (this.#cluster) {
      // A shard's failover leaves the cluster "ready": notice the recovery.
      every(1_000, () => {
        if (this.#wasDown && pub.status === "ready") {
          this.#wasDown = false;
          logger.info("redis available again");
          this.#events?.resync();
          this.#refresh();
        }
        this.#caughtUp();
      });
    }
  }

  #listen(channel: string): void {
    this.#channels.add(channel);
    const sub = this.#sub;
    if (!sub) return;
    (this.#cluster ? sub.ssubscribe(channel) : sub.subscribe(channel))
      .catch(() => {});
  }

  #unlisten(channel: string): void {
    this.#channels.delete(channel);
    const sub = this.#sub;
    if (!sub) return;
    (this.#cluster ? sub.sunsubscribe(channel) : sub.unsubscribe(channel))
      .catch(() => {});
  }

  /** `PUBLISH`, or `SPUBLISH` on a cluster. */
  get #publishCommand(): string {
    return this.#cluster ? "SPUBLISH" : "PUBLISH";
  }

  /** Subscribes to the topic's channel (re-subscribed by itself after an outage). */
  subscribe(topic: string): void {
    this.#listen(this.#key(topic, "t"));
  }

  /** Unsubscribes from the topic's channel. */
  unsubscribe(topic: string): void {
    this.#unlisten(this.#key(topic, "t"));
  }

  /** Publishes to the topic's channel; `false` during an outage or for a frame over the size cap. */
  async publish(topic: string, text: string): Promise<boolean> {
    const pub = this.#pub;
    if (pub?.status !== "ready") return false;
    const frame = this.#frames.encode(topic, this.#node, text);
    if (frame.length > this.#options.maxFrameSize) return false;
    try {
      const channel = this.#key(topic, "t");
      await (this.#cluster
        ? (pub as unknown as Subscriber & {
          spublish(channel: string, frame: string): Promise<number>;
        }).spublish(channel, frame)
        : pub.publish(channel, frame));
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
    this.#pub.duplexSetCount(
      this.#key(topic, "c"),
      this.#node,
      count,
      this.#options.presenceTtl * 6,
    ).catch(() => {});
  }

  /** The sum over live nodes; during an outage, this node's own count. */
  async presence(topic: string, localCount: number): Promise<Presence> {
    if (this.#pub?.status === "ready" && this.#cluster) {
      try {
        const count = await this.#countOnCluster(topic);
        this.#remember(topic, Math.max(0, count - localCount));
        return { count, version: nowMicros() };
      } catch {
        // fall through to the local view
      }
    } else if (this.#pub?.status === "ready") {
      try {
        const [count, version] = await this.#pub.duplexCount(
          this.#key(topic, "c"),
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

  /**
   * Numbers, stores and publishes a push in one script (see `APPEND`);
   * rejects during an outage or for a frame over the size cap: then it was
   * not published.
   */
  async append(
    topic: string,
    head: string,
    options: AppendOptions,
  ): Promise<Appended> {
    const pub = this.#pub;
    if (pub?.status !== "ready") throw new Error("Redis is unavailable");
    if (head.length > this.#options.maxFrameSize) {
      throw new RangeError("Publish over the frame size cap");
    }
    const keys = [this.#key(topic, "h"), this.#key(topic, "s")];
    if (options.key !== undefined) {
      keys.push(this.#key(topic, `k:${options.key}`));
    }
    const [duplicate, offset, epoch] = await pub.duplexAppend(
      keys.length,
      ...keys,
      head,
      options.size,
      options.ttl,
      options.keyTtl,
      newEpoch(),
      this.#key(topic, "t"),
      this.#frames.prefix(topic, this.#node, head),
      this.#publishCommand,
    );
    return {
      offset: Number(offset),
      epoch: String(epoch),
      text: withPosition(head, Number(offset), String(epoch)),
      duplicate: Number(duplicate) === 1,
    };
  }

  /** Reads a topic's history from its stream (see `HISTORY`). */
  async readHistory(
    topic: string,
    since: number | undefined,
    limit: number,
    ttl: number,
  ): Promise<HistoryRead> {
    const pub = this.#pub;
    if (pub?.status !== "ready") throw new Error("Redis is unavailable");
    const out = await pub.duplexHistory(
      this.#key(topic, "h"),
      this.#key(topic, "s"),
      since === undefined ? "" : String(since),
      limit,
      ttl,
      newEpoch(),
    );
    const epoch = String(out[0]);
    const entries = [];
    for (let i = 3; i + 1 < out.length; i += 2) {
      const offset = Number(out[i]);
      entries.push({
        offset,
        text: withPosition(String(out[i + 1]), offset, epoch),
      });
    }
    const first = Number(out[2]);
    return {
      epoch,
      top: Number(out[1]),
      entries,
      first: first < 0 ? undefined : first,
    };
  }

  /** Stores this node's presence changes to a topic and sends them, in one script. */
  async sharePresence(topic: string, delta: PresenceDelta): Promise<void> {
    let entries = this.#entries.get(topic);
    if (!entries) this.#entries.set(topic, entries = new Map());
    for (const [key, entry] of Object.entries(delta)) {
      if (entry === null) entries.delete(key);
      else entries.set(key, entry);
    }
    if (entries.size === 0) this.#entries.delete(topic);
    await this.#share(topic, delta);
  }

  /** The other live nodes' presence entries of a topic, by node. */
  async loadPresence(
    topic: string,
  ): Promise<Map<string, Record<string, PresenceEntry>>> {
    const loaded = new Map<string, Record<string, PresenceEntry>>();
    const pub = this.#pub;
    if (pub?.status !== "ready") return loaded;
    // Liveness read now, not from the last heartbeat: a node that started
    // since must not look dead.
    const live = await this.#beat();
    const fields = await pub.hgetall(this.#key(topic, "pm"));
    const dead: string[] = [];
    for (const [field, json] of Object.entries(fields)) {
      const node = field.slice(0, 36);
      const key = field.slice(37);
      if (node === this.#node) continue;
      if (!live.has(node)) {
        dead.push(field);
        continue;
      }
      const delta = parsePresenceDelta(`{${JSON.stringify(key)}:${json}}`);
      if (!delta || delta[key] === null) continue;
      let entries = loaded.get(node);
      if (!entries) loaded.set(node, entries = Object.create(null));
      entries![key] = delta[key]!;
    }
    if (dead.length > 0) {
      pub.hdel(this.#key(topic, "pm"), ...dead).catch(() => {});
    }
    return loaded;
  }

  /** Subscribes to the topic's presence channel. */
  watchPresence(topic: string): void {
    this.#listen(this.#key(topic, "pr"));
  }

  /** Unsubscribes from it. */
  unwatchPresence(topic: string): void {
    this.#unlisten(this.#key(topic, "pr"));
  }

  /**
   * After an outage, once both clients are back: a PING on the subscriber
   * answers after its resubscriptions (Redis answers in order), so from
   * then on every publish arrives; the node reads what it missed before.
   */
  #caughtUp(): void {
    const [pub, sub] = [this.#pub, this.#sub];
    if (!this.#missed || pub?.status !== "ready" || sub?.status !== "ready") {
      return;
    }
    this.#missed = false;
    // On a cluster, subscribing again answers once the shard that owns each
    // channel (after a failover, the promoted replica) has the subscription.
    const subscribed = this.#cluster
      ? Promise.all([...this.#channels].map((c) => sub.ssubscribe(c)))
      : sub.ping();
    subscribed.then(
      () => this.#events?.resubscribed?.(),
      () => this.#missed = true,
    );
  }

  /** `degraded` while either client is not connected; the frames dropped so far. */
  health(): BackplaneHealth {
    const states = [this.#pub?.status, this.#sub?.status];
    const dropped = this.#dropped;
    if (states.every((state) => state === "ready")) {
      return { state: "ok", dropped };
    }
    return { state: "degraded", detail: `redis ${states.join("/")}`, dropped };
  }

  /** Removes this node's counts and presence entries, then disconnects. */
  async close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    const pub = this.#pub;
    const sub = this.#sub;
    this.#pub = this.#sub = undefined;
    if (pub?.status === "ready") {
      // One command per key: a cluster refuses a batch across slots.
      const removals: Promise<unknown>[] = [];
      for (const topic of this.#local.keys()) {
        removals.push(pub.hdel(this.#key(topic, "c"), this.#node));
      }
      for (const [topic, entries] of this.#entries) {
        const fields = [...entries.keys()].map((key) => `${this.#node}:${key}`);
        if (fields.length > 0) {
          removals.push(pub.hdel(this.#key(topic, "pm"), ...fields));
        }
      }
      removals.push(pub.zrem(this.#nodesKey(), this.#node));
      await Promise.allSettled(removals);
    }
    await Promise.allSettled(
      [pub, sub].map((client) => quit(client as RedisClient | undefined)),
    );
  }

  /** A message from Redis: checked, then handed on, or dropped and counted. */
  #receive(channel: string, frame: string, sink: BackplaneSink): void {
    const prefix = `${this.#options.prefix}:{`;
    const close = channel.lastIndexOf("}:");
    const topic = channel.slice(prefix.length, close);
    const kind = channel.slice(close + 2);
    const decoded = isValidTopic(topic)
      ? this.#frames.decode(topic, frame)
      : undefined;
    if (decoded === undefined) return this.#drop(channel, "bad frame");
    if (decoded.node === this.#node) return;
    if (kind === "t") {
      const { position } = decoded;
      if (position) {
        // A numbered publish: its head, and the position the engine gave it.
        if (!isPushBody(`${decoded.body}}}`)) {
          return this.#drop(channel, "not a push");
        }
        const text = withPosition(
          decoded.body,
          position.offset,
          position.epoch,
        );
        return sink(topic, text, position);
      }
      if (!isPushBody(decoded.body)) return this.#drop(channel, "not a push");
      return sink(topic, decoded.body);
    }
    if (kind === "pr") {
      const delta = parsePresenceDelta(decoded.body);
      if (!delta) return this.#drop(channel, "bad presence");
      // A node that is not beating is dropped again at the next heartbeat.
      this.#heard.add(decoded.node);
      return this.#events?.presence(topic, decoded.node, delta);
    }
    this.#drop(channel, "unknown channel");
  }

  #drop(channel: string, why: string): void {
    this.#dropped++;
    const now = performance.now();
    if (now - this.#lastDropLog < DROP_LOG_EVERY) return;
    this.#lastDropLog = now;
    this.#options.logger.warn("redis frame dropped", {
      channel: channel.slice(0, 200),
      why,
      dropped: this.#dropped,
    });
  }

  #share(topic: string, delta: PresenceDelta): Promise<void> {
    const pub = this.#pub;
    if (pub?.status !== "ready") return Promise.resolve();
    const pairs: string[] = [];
    for (const [key, entry] of Object.entries(delta)) {
      pairs.push(key, entry === null ? "" : JSON.stringify(entry));
    }
    return pub.duplexSharePresence(
      this.#key(topic, "pm"),
      this.#node,
      this.#options.presenceTtl * 6,
      this.#key(topic, "pr"),
      this.#frames.encode(topic, this.#node, JSON.stringify(delta)),
      this.#publishCommand,
      ...pairs,
    ).then(() => {});
  }

  /**
   * The sum of live nodes' counts on a cluster, where the counts (the
   * topic's slot) and the heartbeats (their own slot) cannot meet in one
   * script: the live nodes are read first, then the counts; dead nodes'
   * counts are deleted as `COUNT` does.
   */
  async #countOnCluster(topic: string): Promise<number> {
    const pub = this.#pub!;
    const live = await this.#beat();
    const key = this.#key(topic, "c");
    const fields = await pub.hgetall(key);
    let sum = 0;
    const dead: string[] = [];
    for (const [node, value] of Object.entries(fields)) {
      const n = Number(value);
      if (live.has(node) || node === this.#node) {
        if (Number.isFinite(n)) sum += Math.max(0, Math.min(n, MAX_NODE_COUNT));
      } else dead.push(node);
    }
    if (dead.length > 0) pub.hdel(key, ...dead).catch(() => {});
    return sum;
  }

  #remember(topic: string, count: number): void {
    this.#remoteCounts.delete(topic);
    if (this.#remoteCounts.size >= 1_000) {
      this.#remoteCounts.delete(this.#remoteCounts.keys().next().value!);
    }
    this.#remoteCounts.set(topic, { count, at: performance.now() });
  }

  /**
   * Heartbeat: the live nodes now; those that fell silent since the last
   * beat are gone. During an outage, the last known ones.
   */
  async #beat(): Promise<Set<string>> {
    if (this.#pub?.status !== "ready") return this.#live;
    try {
      const now = new Set(
        await this.#pub.duplexHeartbeat(
          this.#nodesKey(),
          this.#node,
          this.#options.presenceTtl,
        ),
      );
      for (const node of new Set([...this.#live, ...this.#heard])) {
        if (!now.has(node)) this.#events?.nodeGone(node);
      }
      this.#heard.clear();
      this.#live = now;
    } catch {
      // an outage: the next beat tells
    }
    return this.#live;
  }

  /** Writes this node's counts and presence entries again (expiry refreshed). */
  #refresh(): void {
    void this.#beat();
    for (const [topic, count] of this.#local) {
      this.setLocalCount(topic, count);
    }
    for (const [topic, entries] of this.#entries) {
      this.#share(topic, Object.fromEntries(entries)).catch(() => {});
    }
  }

  #key(topic: string, kind: string): string {
    return `${this.#options.prefix}:{${topic}}:${kind}`;
  }

  #nodesKey(): string {
    return `${this.#options.prefix}:nodes`;
  }
}
