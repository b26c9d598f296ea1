/**
 * The backplane: how one node hands publishes and presence to the others.
 * One interface, three engines: `LocalBackplane` (this file, one process),
 * `BroadcastChannelBackplane` (isolates of `deno serve --parallel`) and
 * `RedisBackplane` (processes and machines).
 *
 * @module
 */

import type { ReplyStore } from "./reply_store.ts";
import type { StreamPosition } from "@duplex-ws/protocol";
import {
  type Appended,
  type AppendOptions,
  type HistoryEntry,
  type HistoryRead,
  MemoryHistory,
} from "./history.ts";
import type {
  PresenceDelta,
  PresenceEngine,
  PresenceEntry,
} from "./presence.ts";

/**
 * What a backplane calls with messages published on other nodes; a publish
 * to a topic with history comes with its position.
 */
export type BackplaneSink = (
  topic: string,
  text: string,
  position?: StreamPosition,
) => void;

/** What an engine that carries presence with members tells the node besides messages. */
export interface BackplaneEvents {
  /** Another node changed its presence entries of a topic this node watches. */
  presence(topic: string, node: string, delta: PresenceDelta): void;
  /** A node left or died: its presence entries are gone. */
  nodeGone(node: string): void;
  /** The engine reached the other nodes again after an outage: share and reload. */
  resync(): void;
  /**
   * The engine's subscriptions are back after an outage (and confirmed):
   * publishes made meanwhile never reached this node; history has them.
   */
  resubscribed?(): void;
  /** A control message sent to this node, or to every node (see `Backplane.control`). */
  control?(message: string): void;
}

/** A backplane's health, as `/healthz` and the metrics report it. */
export interface BackplaneHealth {
  /** `ok`, or `degraded` while the engine cannot reach the other nodes. */
  state: "ok" | "degraded";
  /** What is wrong, when degraded. */
  detail?: string;
  /** Frames from other nodes dropped as too large, malformed or unsigned (engines that check). */
  dropped?: number;
  /** History held in this process (engines that keep it in memory): topics and bytes. */
  history?: { topics: number; bytes: number };
}

/** A total member count of a topic across every node. */
export interface Presence {
  /** Members on every live node (in a topic with presence: distinct presence keys). */
  count: number;
  /**
   * In a topic with presence: presence key → metadata, up to the topic's
   * `maxMembers`.
   */
  members?: Record<string, unknown>;
  /**
   * When it was read, in microseconds on the backplane's clock: of two
   * presence reports for one topic, the later `version` is the newer.
   */
  version: number;
}

/** Carries publishes and presence between nodes. */
export interface Backplane {
  /** The engine: `local`, `broadcast-channel` or `redis`. */
  readonly kind: string;
  /**
   * Starts the engine; messages from other nodes go to `sink`, presence
   * changes and node deaths to `events` (engines with presence).
   */
  start(sink: BackplaneSink, events?: BackplaneEvents): Promise<void>;
  /**
   * This node has local members in `topic` now (called on the first one).
   * An engine whose subscription takes effect later returns a promise that
   * settles once it has (every publish after it reaches this node): a
   * recovery waits for it, so that no publish falls between its history
   * read and the subscription.
   */
  subscribe(topic: string): void | Promise<unknown>;
  /** This node has no local members in `topic` any more. */
  unsubscribe(topic: string): void;
  /**
   * Forwards an encoded message to the other nodes' members of `topic`.
   * @returns `true` when handed to the transport, `false` when it could not
   * be (an outage): then no remote node will deliver it.
   */
  publish(topic: string, text: string): Promise<boolean>;
  /** Reports this node's member count of `topic` (0 when it has none). */
  setLocalCount(topic: string, count: number): void;
  /** The member count of `topic` across every live node. */
  presence(topic: string, localCount: number): Promise<Presence>;
  /**
   * The members `topic` has on other nodes, as last known, without waiting
   * (for charging a publish to its sender); engines that cannot tell
   * leave it out.
   */
  remoteCount?(topic: string): number;
  /**
   * Stores and sends this node's presence changes to a topic; engines that
   * leave the four presence methods out keep presence with members to each
   * node.
   */
  sharePresence?(topic: string, delta: PresenceDelta): Promise<void>;
  /**
   * Every other live node's presence entries of a topic, by node. Rejects
   * when they cannot be read (an empty answer would drop every other node's
   * members); the node tries again.
   */
  loadPresence?(
    topic: string,
  ): Promise<Map<string, Record<string, PresenceEntry>>>;
  /**
   * The topics where a node that is gone last counted members, so that
   * occupancy can decide them again (its last member may have been there);
   * engines that cannot tell leave it out. Rejects when it cannot be read
   * now (asked again later).
   */
  topicsOf?(node: string): Promise<string[]>;
  /** Starts telling `events.presence` about a topic. */
  watchPresence?(topic: string): void;
  /** Stops it. */
  unwatchPresence?(topic: string): void;
  /**
   * For topics with history: numbers a publish, stores it and hands it to
   * every other node in one atomic step (so the order members get is the
   * order history replays), or returns the position its idempotency key
   * already got. Rejects when it cannot store it: then it was not published.
   * Engines without it cannot serve topics with history.
   */
  append?(
    topic: string,
    head: string,
    options: AppendOptions,
  ): Promise<Appended>;
  /** Reads a topic's history (see {@linkcode HistoryRead}). */
  readHistory?(
    topic: string,
    since: number | undefined,
    limit: number,
    ttl: number,
  ): Promise<HistoryRead>;
  /**
   * A `latest` topic's values (what `append` kept with `latest`), oldest
   * first; each entry's text is its push with its position.
   */
  readLatest?(topic: string): Promise<HistoryEntry[]>;
  /** Current health. */
  health(): BackplaneHealth;
  /**
   * Where replies to keyed requests are kept for every node (a retry on
   * another node gets the first reply). Without it, each node keeps its own.
   */
  readonly replies?: ReplyStore;
  /**
   * The ids of the nodes alive now (this one included), read afresh: an
   * ask of every node waits for that many answers, not for its timeout,
   * and an ask of a node not among them is not sent.
   */
  liveNodes?(): Promise<ReadonlySet<string>>;
  /** Whether `append` takes the app's `transaction` (Postgres). */
  readonly transactions?: boolean;
  /** This node's id in the engine, when the engine addresses nodes. */
  readonly node?: string;
  /**
   * Sends a control message to node `to`, or to every other node with
   * `"*"` (a node hears only others' messages, through
   * `BackplaneEvents.control`): how work reaches the node that holds a
   * session, and an action every node. Without it, there is one node.
   */
  control?(to: string, message: string): Promise<void>;
  /** Stops the engine and frees its connections. */
  close(): Promise<void>;
}

/** Microseconds since the epoch, from this process's clock. */
export function nowMicros(): number {
  return Math.floor((performance.timeOrigin + performance.now()) * 1000);
}

/** Options of {@linkcode LocalBackplane}. */
export interface LocalBackplaneOptions {
  /**
   * Topics with history kept at most; past it the least recently published
   * topic's history goes (it starts a new epoch).
   * @default {10000}
   */
  maxHistoryTopics?: number;
  /**
   * Bytes of memory the history may take, all topics together: a stored
   * push counts one byte a character (two when any is past Latin-1, as V8
   * stores it) and 64 for its entry; past it topics go the same way.
   * @default {33554432}
   */
  maxHistoryBytes?: number;
}

/**
 * The default engine: one process, no other nodes. Publishing reaches only
 * local members; presence is the local count; history is kept in memory.
 */
export class LocalBackplane implements Backplane {
  /** `local`. */
  readonly kind = "local";
  readonly #history: MemoryHistory;

  /** Makes the engine; history is bounded by `options`. */
  constructor(options: LocalBackplaneOptions = {}) {
    this.#history = new MemoryHistory({
      maxTopics: options.maxHistoryTopics ?? 10_000,
      maxBytes: options.maxHistoryBytes ?? 33_554_432,
    });
  }

  /** Numbers and stores a publish in memory. */
  append(
    topic: string,
    head: string,
    options: AppendOptions,
  ): Promise<Appended> {
    return Promise.resolve(this.#history.append(topic, head, options));
  }

  /** Reads a topic's history from memory. */
  readHistory(
    topic: string,
    since: number | undefined,
    limit: number,
    ttl: number,
  ): Promise<HistoryRead> {
    return Promise.resolve(this.#history.read(topic, since, limit, ttl));
  }

  /** A `latest` topic's values, from memory. */
  readLatest(topic: string): Promise<HistoryEntry[]> {
    return Promise.resolve(this.#history.latest(topic));
  }
  /** Nothing to start. */
  start(_sink: BackplaneSink): Promise<void> {
    return Promise.resolve();
  }
  /** Nothing to do. */
  subscribe(_topic: string): void {}
  /** Nothing to do. */
  unsubscribe(_topic: string): void {}
  /** There are no other nodes: trivially handed over. */
  publish(_topic: string, _text: string): Promise<boolean> {
    return Promise.resolve(true);
  }
  /** Nothing to do. */
  setLocalCount(_topic: string, _count: number): void {}
  /** The local count. */
  presence(_topic: string, localCount: number): Promise<Presence> {
    return Promise.resolve({ count: localCount, version: nowMicros() });
  }
  /** Always ok; the history it holds. */
  health(): BackplaneHealth {
    const { topics, bytes } = this.#history;
    return { state: "ok", history: { topics, bytes } };
  }
  /** Nothing to close. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The presence side of an engine; one without it keeps presence to this node. */
export function presenceEngine(backplane: Backplane): PresenceEngine {
  return {
    share: (topic, delta) =>
      backplane.sharePresence?.(topic, delta) ?? Promise.resolve(),
    load: (topic) =>
      backplane.loadPresence?.(topic) ?? Promise.resolve(new Map()),
    watch: (topic) => backplane.watchPresence?.(topic),
    unwatch: (topic) => backplane.unwatchPresence?.(topic),
  };
}
