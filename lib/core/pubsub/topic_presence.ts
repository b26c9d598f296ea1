/**
 * The presence of one topic as one node sees it: its own entries (one per
 * presence key, however many local connections hold it), the other nodes'
 * entries, who holds each key, the keys in their grace period, and what
 * changed since the last diff. `PresenceTracker` keeps one per topic.
 *
 * @module
 */

import type {
  PresenceDiff,
  PresenceMembers,
  PresenceState,
} from "@duplex-ws/protocol";
import type { Member } from "./hub.ts";

/** One node's entry for a presence key: the member's metadata and when it was set. */
export interface PresenceEntry {
  /** App-chosen metadata (JSON). */
  meta: unknown;
  /** Milliseconds since the epoch; the newest entry of a key wins. */
  at: number;
}

/** One node's changes to its entries of a topic: key → entry, or `null` when gone. */
export type PresenceDelta = Record<string, PresenceEntry | null>;

/** A record without a prototype: app-chosen keys such as `__proto__` stay plain keys. */
export function record<T>(): Record<string, T> {
  return Object.create(null);
}

/** The presence of one topic as this node sees it. */
export class TopicPresence {
  /** This node's entries: key → entry and how many local connections hold it. */
  readonly mine = new Map<string, { entry: PresenceEntry; refs: number }>();
  /** The other nodes' entries. */
  readonly others = new Map<string, Map<string, PresenceEntry>>();
  /** How many sources (this node, other nodes) hold each key: its size is the count. */
  readonly holders = new Map<string, number>();
  /** Keys whose last local connection left, waiting out the grace period. */
  readonly graces = new Map<string, ReturnType<typeof setTimeout>>();
  /** Keys changed since the last diff: key → its metadata as members were last told. */
  readonly told = new Map<string, string | undefined>();
  /** This node's changes not yet shared. */
  unshared: PresenceDelta = record();
  /** Other nodes' changes (`null`: the node is gone) that arrived while a load is under way, applied after it. */
  buffered: [string, PresenceDelta | null][] | undefined = [];
  /** Connections waiting for their snapshot until the first load finished. */
  waiting: { member: Member; maxMembers: number }[] = [];
  /** Local connections in the topic. */
  connections = 0;
  /** Whether a load finished (or failed) once. */
  loaded = false;
  /** Loads started: only the last one's result counts. */
  loads = 0;
  /** The last load failed: it is tried again. */
  stale = false;

  /**
   * @param topic The topic.
   * @param maxMembers Members a snapshot or a diff lists at most.
   */
  constructor(readonly topic: string, readonly maxMembers: number) {}

  /** The entry members see for a key: the newest of any source. */
  view(key: string): PresenceEntry | undefined {
    let best = this.mine.get(key)?.entry;
    for (const entries of this.others.values()) {
      const entry = entries.get(key);
      if (entry && (best === undefined || entry.at > best.at)) best = entry;
    }
    return best;
  }

  /** Records a key's told value before it changes (once per interval). */
  touch(key: string): void {
    if (this.told.has(key)) return;
    const entry = this.view(key);
    this.told.set(key, entry ? JSON.stringify(entry.meta) : undefined);
  }

  hold(key: string, by: number): void {
    const left = (this.holders.get(key) ?? 0) + by;
    if (left > 0) this.holders.set(key, left);
    else this.holders.delete(key);
  }

  /** Applies another node's changes. */
  apply(node: string, delta: PresenceDelta): void {
    let entries = this.others.get(node);
    for (const [key, entry] of Object.entries(delta)) {
      this.touch(key);
      const had = entries?.has(key) ?? false;
      if (entry === null) {
        if (had) {
          entries!.delete(key);
          this.hold(key, -1);
        }
        continue;
      }
      if (!entries) this.others.set(node, entries = new Map());
      entries.set(key, entry);
      if (!had) this.hold(key, 1);
    }
    if (entries?.size === 0) this.others.delete(node);
  }

  /** Takes the other nodes' entries as loaded, in place of those it had. */
  reload(loaded: Map<string, Record<string, PresenceEntry>>): void {
    for (const node of [...this.others.keys()]) this.drop(node);
    for (const [node, entries] of loaded) this.apply(node, entries);
  }

  /** Drops a node's entries (it left or died). */
  drop(node: string): void {
    const entries = this.others.get(node);
    if (!entries) return;
    this.apply(
      node,
      Object.fromEntries([...entries.keys()].map((key) => [key, null])),
    );
  }

  /** The snapshot a joining connection gets. */
  state(maxMembers: number): PresenceState {
    const members: PresenceMembers = record();
    let listed = 0;
    for (const key of this.holders.keys()) {
      if (listed++ >= maxMembers) break;
      members[key] = this.view(key)!.meta;
    }
    return { topic: this.topic, members, count: this.holders.size };
  }

  /**
   * What changed since the last diff (at most `limit` members, with
   * `truncated` when more changed), or `undefined`; forgets it.
   */
  diff(limit: number): PresenceDiff | undefined {
    const joins: PresenceMembers = record();
    const leaves: PresenceMembers = record();
    let changed = 0;
    for (const [key, before] of this.told) {
      const entry = this.view(key);
      const now = entry ? JSON.stringify(entry.meta) : undefined;
      if (now === before) continue;
      // A diff lists `limit` members at most, whatever changed.
      if (++changed > limit) continue;
      if (entry) joins[key] = entry.meta;
      else leaves[key] = JSON.parse(before!);
    }
    this.told.clear();
    if (changed === 0) return undefined;
    const diff = { topic: this.topic, joins, leaves, count: this.holders.size };
    return changed > limit ? { ...diff, truncated: true } : diff;
  }
}
