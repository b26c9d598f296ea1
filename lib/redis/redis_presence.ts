/**
 * The Redis engine's presence: each node's member count per topic (a hash,
 * summed over live nodes), each node's presence entries per topic (a hash,
 * shared and sent in one script), and the heartbeats that tell which nodes
 * are alive (a sorted set on Redis's clock). Kept in this node's memory too,
 * so it can be written again after an outage and when its keys' expiry is
 * refreshed.
 *
 * @module
 */

import {
  type BackplaneEvents,
  forgetWrittenLeaves,
  keepOwnEntries,
  nowMicros,
  type OwnEntries,
  parsePresenceDelta,
  type Presence,
  type PresenceDelta,
  type PresenceEntry,
  RemoteCounts,
} from "@duplex-ws/duplex/engine";
import type { Commands } from "./redis_connect.ts";
import { MAX_NODE_COUNT } from "./redis_scripts.ts";

/** What presence needs of its engine. */
export interface PresenceContext {
  /** This node's id. */
  readonly node: string;
  /** Milliseconds after its last heartbeat that a node is dead. */
  readonly presenceTtl: number;
  /** Whether this is a cluster (no cross-slot scripts). */
  readonly cluster: boolean;
  /** A topic's key or channel of a kind (`c` counts, `pm` members, `pr` presence channel). */
  key(topic: string, kind: string): string;
  /** The heartbeats' key. */
  readonly nodesKey: string;
  /** `PUBLISH`, or `SPUBLISH` on a cluster. */
  readonly publishCommand: string;
  /** A signed frame of `body` for `topic`. */
  frame(topic: string, body: string): string;
  /** The command client, when connected. */
  commands(): Commands | undefined;
  /** Where node deaths go. */
  events(): BackplaneEvents | undefined;
}

/** One node's presence in Redis. */
export class RedisPresence {
  readonly #context: PresenceContext;
  /** This node's counts; a zero stays until written (after an outage, by `refresh`). */
  #local = new Map<string, number>();
  /** Recently read remote member counts, least recently read first (bounded). */
  readonly #remoteCounts = new RemoteCounts();
  /** This node's presence entries, by topic: shared again after an outage and on refresh. */
  #entries: OwnEntries = new Map();
  #live = new Set<string>();
  /** Nodes whose presence changes were taken in since the last heartbeat. */
  #heard = new Set<string>();
  /** When the last heartbeat was answered (0: never, or not since an outage). */
  #beaten = 0;

  /** @param context The engine's keys, clients and events. */
  constructor(context: PresenceContext) {
    this.#context = context;
  }

  /** Records this node's count of the topic in Redis (and again after an outage). */
  setLocalCount(topic: string, count: number): void {
    const was = this.#local.get(topic) ?? 0;
    this.#local.set(topic, count);
    const pub = this.#ready();
    if (!pub) return;
    if ((was > 0) !== (count > 0)) this.#topics(count > 0 ? "+" : "-", [topic]);
    const { node, presenceTtl } = this.#context;
    pub.duplexSetCount(
      this.#context.key(topic, "c"),
      node,
      count,
      presenceTtl * 6,
    ).then(() => this.#local.get(topic) === 0 && this.#local.delete(topic))
      .catch(() => {});
  }

  /** The sum over live nodes; during an outage, this node's own count. */
  async presence(topic: string, localCount: number): Promise<Presence> {
    const pub = this.#ready();
    if (pub) {
      try {
        const [count, version] = this.#context.cluster
          ? [await this.#countOnCluster(topic), nowMicros()]
          : await pub.duplexCount(
            this.#context.key(topic, "c"),
            this.#context.nodesKey,
            this.#context.presenceTtl,
          );
        this.#remoteCounts.set(topic, Math.max(0, Number(count) - localCount));
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
    return this.#remoteCounts.get(topic, () => {
      this.presence(topic, this.#local.get(topic) ?? 0).catch(() => {});
    });
  }

  /** Stores this node's presence changes to a topic and sends them, in one script. */
  async share(topic: string, delta: PresenceDelta): Promise<void> {
    keepOwnEntries(this.#entries, topic, delta);
    await this.#share(topic, delta);
  }

  /** The other live nodes' presence entries of a topic, by node; rejects during an outage. */
  async load(
    topic: string,
  ): Promise<Map<string, Record<string, PresenceEntry>>> {
    const loaded = new Map<string, Record<string, PresenceEntry>>();
    const pub = this.#ready();
    // Not an empty load: that would drop every other node's members.
    if (!pub) throw new Error("Redis is unavailable");
    // Liveness read now, not from the last heartbeat: a node that started
    // since must not look dead.
    const live = await this.beat();
    const key = this.#context.key(topic, "pm");
    const fields = await pub.hgetall(key);
    const dead: string[] = [];
    for (const [field, json] of Object.entries(fields)) {
      const node = field.slice(0, 36);
      const member = field.slice(37);
      if (node === this.#context.node) continue;
      if (!live.has(node)) {
        dead.push(field);
        continue;
      }
      const delta = parsePresenceDelta(`{${JSON.stringify(member)}:${json}}`);
      if (!delta || delta[member] === null) continue;
      let entries = loaded.get(node);
      if (!entries) loaded.set(node, entries = Object.create(null));
      entries![member] = delta[member]!;
    }
    if (dead.length > 0) pub.hdel(key, ...dead).catch(() => {});
    return loaded;
  }

  /** The topics where `node` counted members (kept 6 TTLs after it is gone). */
  topicsOf(node: string): Promise<string[]> {
    const pub = this.#ready();
    if (!pub) return Promise.reject(new Error("Redis is unavailable"));
    return pub.smembers(this.#context.key(node, "n"));
  }

  /** A node whose presence changes were just taken in (dropped again if it is not beating). */
  heard(node: string): void {
    this.#heard.add(node);
  }

  /**
   * Heartbeat: the live nodes now; those that fell silent since the last
   * beat are gone. During an outage, the last known ones.
   */
  async beat(): Promise<Set<string>> {
    const pub = this.#ready();
    // An outage, not a stall: the node resyncs once Redis is back, and its
    // next beat counts as a first one (no lapse; it names the dead).
    if (!pub) this.#beaten = 0;
    if (!pub) return this.#live;
    try {
      const { nodesKey, node, presenceTtl } = this.#context;
      const now = new Set(
        await pub.duplexHeartbeat(nodesKey, node, presenceTtl),
      );
      // A first beat (at start, after an outage) names the nodes that died.
      const dead = this.#beaten ? [] : await pub.zrange(nodesKey, 0, -1);
      for (const node of new Set([...this.#live, ...this.#heard, ...dead])) {
        if (!now.has(node)) this.#context.events()?.nodeGone(node);
      }
      this.#heard.clear();
      this.#live = now;
      // Silent past the TTL (its event loop stalled, or Redis did): the
      // others took it for gone and dropped its counts and presence.
      const [last, at] = [this.#beaten, this.#beaten = Date.now()];
      if (last > 0 && at - last > presenceTtl) {
        this.#context.events()?.resync();
        this.refresh();
      }
    } catch {
      // a refusal, or the connection lost mid-beat: the next beat tells
    }
    return this.#live;
  }

  /** Writes this node's counts and presence entries again (expiry refreshed). */
  refresh(): void {
    void this.beat();
    for (const [topic, count] of this.#local) this.setLocalCount(topic, count);
    const topics = [...this.#local].filter(([, n]) => n > 0).map(([t]) => t);
    // A script's arguments are unpacked on Lua's stack: a thousand at most.
    for (let i = 0; i === 0 || i < topics.length; i += 1_000) {
      this.#topics(i === 0 ? "=" : "+", topics.slice(i, i + 1_000));
    }
    for (const [topic, entries] of this.#entries) {
      this.#share(topic, Object.fromEntries(entries)).catch(() => {});
    }
  }

  /**
   * Removes this node's counts and entries, and dates its heartbeat a TTL
   * back (the engine is closing): named for the next node to start.
   */
  async remove(pub: Commands): Promise<void> {
    const { key, node, nodesKey, presenceTtl } = this.#context;
    // One command per key: a cluster refuses a batch across slots.
    const removals: Promise<unknown>[] = [];
    for (const topic of this.#local.keys()) {
      removals.push(pub.hdel(key(topic, "c"), node));
    }
    for (const [topic, entries] of this.#entries) {
      const fields = [...entries.keys()].map((member) => `${node}:${member}`);
      if (fields.length > 0) {
        removals.push(pub.hdel(key(topic, "pm"), ...fields));
      }
    }
    removals.push(pub.duplexHeartbeat(nodesKey, node, presenceTtl, "gone"));
    await Promise.allSettled(removals);
  }

  /** Changes (`+`, `-`) or replaces (`=`) this node's set of topics with members. */
  #topics(change: string, topics: string[]): void {
    const { key, node, presenceTtl } = this.#context;
    const expiry = String(presenceTtl * 6);
    this.#ready()?.duplexNodeTopics(key(node, "n"), expiry, change, ...topics)
      .catch(() => {});
  }

  #ready(): Commands | undefined {
    const pub = this.#context.commands();
    return pub?.status === "ready" ? pub : undefined;
  }

  #share(topic: string, delta: PresenceDelta): Promise<void> {
    const pub = this.#ready();
    if (!pub) return Promise.resolve();
    const pairs: string[] = [];
    for (const [key, entry] of Object.entries(delta)) {
      pairs.push(key, entry === null ? "" : JSON.stringify(entry));
    }
    const { key, node, presenceTtl, publishCommand } = this.#context;
    return pub.duplexSharePresence(
      key(topic, "pm"),
      node,
      presenceTtl * 6,
      key(topic, "pr"),
      this.#context.frame(topic, JSON.stringify(delta)),
      publishCommand,
      ...pairs,
    ).then(() => forgetWrittenLeaves(this.#entries, topic, delta));
  }

  /**
   * The sum of live nodes' counts on a cluster, where the counts (the
   * topic's slot) and the heartbeats (their own slot) cannot meet in one
   * script: the live nodes are read first, then the counts; dead nodes'
   * counts are deleted as `COUNT` does.
   */
  async #countOnCluster(topic: string): Promise<number> {
    const pub = this.#ready()!;
    const live = await this.beat();
    const key = this.#context.key(topic, "c");
    const fields = await pub.hgetall(key);
    let sum = 0;
    const dead: string[] = [];
    for (const [node, value] of Object.entries(fields)) {
      const n = Number(value);
      if (live.has(node) || node === this.#context.node) {
        if (Number.isFinite(n)) sum += Math.max(0, Math.min(n, MAX_NODE_COUNT));
      } else dead.push(node);
    }
    if (dead.length > 0) pub.hdel(key, ...dead).catch(() => {});
    return sum;
  }
}
