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
 * | `p:{N}:n`    | set     | the topics where node `N` counts members          | 6 × TTL, refreshed     |
 * | `p:nodes`    | zset    | node → last heartbeat (Redis clock, ms)           | pruned after 10 × TTL  |
 *
 * On a cluster every script runs on `{T}`'s shard (docs/SCALING.md).
 * @module
 */

import {
  type Appended,
  type AppendOptions,
  type Backplane,
  type BackplaneEvents,
  type BackplaneHealth,
  type BackplaneSink,
  type HistoryEntry,
  type HistoryRead,
  type Presence,
  type PresenceDelta,
  type PresenceEntry,
} from "@duplex-ws/duplex/engine";
import {
  type Commands,
  createRedisClients,
  quit,
  type Subscriber,
} from "./redis_connect.ts";
import { FrameCodec } from "./redis_frames.ts";
import { RedisReplies } from "./redis_replies.ts";
import { controlTopic, Inbox } from "./redis_inbox.ts";
import {
  appendPublish,
  type HistoryContext,
  readHistory,
  readLatest,
} from "./redis_history.ts";
import { RedisPresence } from "./redis_presence.ts";
import {
  type RedisBackplaneOptions,
  resolveRedisOptions,
} from "./redis_options.ts";

export { isRedisUrl, type RedisBackplaneOptions } from "./redis_options.ts";

/** Publishes and presence across processes and machines through Redis. */
export class RedisBackplane implements Backplane {
  /** `redis`, or `redis-cluster` with `clusterUrls`. */
  readonly kind: "redis" | "redis-cluster";
  readonly #options: ReturnType<typeof resolveRedisOptions>;
  /** Whether this is a cluster: sharded pub/sub, no cross-slot commands. */
  readonly #cluster: boolean;
  /** Every channel subscribed, to subscribe again after a failover. */
  readonly #channels = new Set<string>();
  readonly #node = crypto.randomUUID();
  readonly #frames: FrameCodec;
  readonly #presence: RedisPresence;
  #pub: Commands | undefined;
  #sub: Subscriber | undefined;
  #events: BackplaneEvents | undefined;
  #timers: ReturnType<typeof setInterval>[] = [];
  #wasDown = false;
  /** Whether publishes may have been missed (an outage since the last catch-up). */
  #missed = false;
  readonly #inbox: Inbox;
  /** Replies to keyed requests, for every node. */
  readonly replies: RedisReplies;

  /**
   * Creates the engine; nothing connects before `start`.
   * @throws {TypeError} when the URL (or a cluster URL) is not a `redis:`
   * or `rediss:` URL, or when not exactly one of `url` and `clusterUrls`
   * is given.
   */
  constructor(options: RedisBackplaneOptions) {
    this.#options = resolveRedisOptions(options);
    this.#cluster = options.clusterUrls !== undefined;
    this.kind = this.#cluster ? "redis-cluster" : "redis";
    this.#frames = new FrameCodec(options.secret, this.#options.maxFrameSize);
    this.#inbox = new Inbox({
      prefix: this.#options.prefix,
      node: this.#node,
      frames: this.#frames,
      logger: this.#options.logger,
      heard: (node) => this.#presence.heard(node),
    });
    this.#presence = new RedisPresence({
      node: this.#node,
      presenceTtl: this.#options.presenceTtl,
      cluster: this.#cluster,
      key: (topic, kind) => this.#key(topic, kind),
      nodesKey: `${this.#options.prefix}:nodes`,
      publishCommand: this.#cluster ? "SPUBLISH" : "PUBLISH",
      frame: (topic, body) => this.#frames.encode(topic, this.#node, body),
      commands: () => this.#pub,
      events: () => this.#events,
    });
    const [pub, { prefix }] = [() => this.#pub, this.#options];
    this.replies = new RedisReplies(pub, this.#frames, this.#node, prefix);
  }

  /** This node's id in Redis. */
  get node(): string {
    return this.#node;
  }

  /** Connects; resolves once listening for control messages, or at once if Redis is down. */
  async start(sink: BackplaneSink, events?: BackplaneEvents): Promise<void> {
    this.#events = events;
    this.#inbox.start(sink, events);
    await this.#frames.ready();
    const { pub, sub, connect } = await createRedisClients(this.#options, {
      message: (channel, frame) => this.#inbox.receive(channel, frame),
      down: () => void (this.#wasDown = this.#missed = true),
      ready: () => this.#caughtUp(),
      commandsReady: () => this.#available(),
    });
    [this.#pub, this.#sub] = [pub, sub];
    await connect();
    await Promise.all(
      ["*", this.#node].map((to) =>
        this.#listen(this.#key(controlTopic(to), "c"))
      ),
    );
    void this.#presence.beat(); // counted from the start, not a beat later
    this.#every(this.#options.heartbeatInterval, () => this.#presence.beat());
    // Keys expire after 6 TTLs unless refreshed: crashed nodes' go by themselves.
    this.#every(this.#options.presenceTtl * 2, () => this.#presence.refresh());
    if (this.#cluster) {
      // A shard's failover leaves the cluster "ready": notice the recovery.
      this.#every(1_000, () => {
        if (this.#wasDown && pub.status === "ready") this.#available();
        this.#caughtUp();
      });
    }
  }

  /** Subscribes to the topic's channel (again after outages); settles once Redis confirmed it. */
  subscribe(topic: string): Promise<unknown> | undefined {
    return this.#listen(this.#key(topic, "t"));
  }

  /** Unsubscribes from the topic's channel. */
  unsubscribe(topic: string): void {
    this.#listen(this.#key(topic, "t"), false);
  }

  /** Publishes to the topic's channel; `false` during an outage or for a frame over the size cap. */
  publish(topic: string, text: string): Promise<boolean> {
    return this.#send(topic, "t", text);
  }

  /** Sends a control message to node `to`, or to every other node (`"*"`). */
  async control(to: string, message: string): Promise<void> {
    if (!await this.#send(controlTopic(to), "c", message)) {
      throw new Error("Redis is unavailable, or the message is too large");
    }
  }

  /** Records this node's count of the topic in Redis (and again after an outage). */
  setLocalCount(topic: string, count: number): void {
    this.#presence.setLocalCount(topic, count);
  }

  /** The sum over live nodes; during an outage, this node's own count. */
  presence(topic: string, localCount: number): Promise<Presence> {
    return this.#presence.presence(topic, localCount);
  }

  /** The nodes alive now (a heartbeat read; this one included). */
  liveNodes(): Promise<ReadonlySet<string>> {
    return this.#presence.beat();
  }

  /** The other nodes' members of `topic` as last read. */
  remoteCount(topic: string): number {
    return this.#presence.remoteCount(topic);
  }

  /** The topics where a node that is gone counted members (for occupancy). */
  topicsOf(node: string): Promise<string[]> {
    return this.#presence.topicsOf(node);
  }

  /**
   * Numbers, stores and publishes a push in one script (see `APPEND`);
   * rejects during an outage or for a frame over the size cap: then it was
   * not published.
   */
  append(
    topic: string,
    head: string,
    options: AppendOptions,
  ): Promise<Appended> {
    if (head.length > this.#options.maxFrameSize) {
      return Promise.reject(new RangeError("Publish over the frame size cap"));
    }
    return appendPublish(this.#history(), topic, head, options);
  }

  /** Reads a topic's history from its stream (see `HISTORY`). */
  readHistory(
    topic: string,
    since: number | undefined,
    limit: number,
    ttl: number,
  ): Promise<HistoryRead> {
    return readHistory(this.#history(), topic, since, limit, ttl);
  }

  /** A `latest` topic's values, from its hash. */
  readLatest(topic: string): Promise<HistoryEntry[]> {
    return readLatest(this.#history(), topic);
  }

  /** Stores this node's presence changes to a topic and sends them, in one script. */
  sharePresence(topic: string, delta: PresenceDelta): Promise<void> {
    return this.#presence.share(topic, delta);
  }

  /** The other live nodes' presence entries of a topic, by node. */
  loadPresence(
    topic: string,
  ): Promise<Map<string, Record<string, PresenceEntry>>> {
    return this.#presence.load(topic);
  }

  /** Subscribes to the topic's presence channel. */
  watchPresence(topic: string): void {
    this.#listen(this.#key(topic, "pr"));
  }

  /** Unsubscribes from it. */
  unwatchPresence(topic: string): void {
    this.#listen(this.#key(topic, "pr"), false);
  }

  /** `degraded` while either client is not connected; the frames dropped so far. */
  health(): BackplaneHealth {
    const states = [this.#pub?.status, this.#sub?.status];
    const dropped = this.#inbox.dropped;
    const ok = states.every((state) => state === "ready");
    if (ok) return { state: "ok", dropped };
    return { state: "degraded", detail: `redis ${states.join("/")}`, dropped };
  }

  /** Removes this node's counts and presence entries, then disconnects. */
  async close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers = [];
    const [pub, sub] = [this.#pub, this.#sub];
    this.#pub = this.#sub = undefined;
    if (pub?.status === "ready") await this.#presence.remove(pub);
    await Promise.allSettled([pub, sub].map((client) => quit(client)));
  }

  /** Sends a signed (with a secret) frame on a channel of `topic`. */
  async #send(topic: string, kind: string, body: string): Promise<boolean> {
    const pub = this.#pub;
    if (pub?.status !== "ready") return false;
    const frame = this.#frames.encode(topic, this.#node, body);
    if (frame.length > this.#options.maxFrameSize) return false;
    const send = this.#cluster ? pub.spublish : pub.publish;
    return await send.call(pub, this.#key(topic, kind), frame)
      .then(() => true, () => false);
  }

  /** What the history scripts need: the ready client, keys, frames. */
  #history(): HistoryContext {
    const pub = this.#pub;
    return {
      pub: pub?.status === "ready" ? pub : undefined,
      key: (topic, kind) => this.#key(topic, kind),
      frames: this.#frames,
      node: this.#node,
      publishCommand: this.#cluster ? "SPUBLISH" : "PUBLISH",
    };
  }

  #every(ms: number, run: () => void): void {
    this.#timers.push(setInterval(run, ms));
    Deno.unrefTimer(this.#timers.at(-1)!);
  }

  /** Redis is back for commands: say so once, resync presence, rewrite this node's keys. */
  #available(): void {
    if (this.#wasDown) {
      this.#options.logger.info("redis available again");
      this.#wasDown = false;
      this.#events?.resync();
    }
    this.#presence.refresh();
  }

  #listen(channel: string, on = true): Promise<unknown> | undefined {
    if (on) this.#channels.add(channel);
    else this.#channels.delete(channel);
    const sub = this.#sub;
    if (!sub) return;
    const command = this.#cluster
      ? (on ? sub.ssubscribe : sub.sunsubscribe)
      : (on ? sub.subscribe : sub.unsubscribe);
    return command.call(sub, channel).catch(() => {});
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

  #key(topic: string, kind: string): string {
    return `${this.#options.prefix}:{${topic}}:${kind}`;
  }
}
