/**
 * Topic history for one process (the local engine's): a numbered stream per
 * topic whose policy asks for history, bounded per topic by size and age,
 * and as a whole by topics and bytes (whole topics go, least recently
 * published first; a topic that went starts a new epoch), plus the
 * idempotency keys of recent publishes. What every engine with history
 * answers is typed here too.
 *
 * @module
 */

import { withPosition } from "@duplex-ws/protocol";

/** How long and how much of a topic's stream is kept. */
export interface HistoryPolicy {
  /** Publishes kept at most. */
  readonly size: number;
  /** Milliseconds a publish is kept (and replayed) at most. */
  readonly ttl: number;
}

/** What an append asks besides the publish. */
export interface AppendOptions extends HistoryPolicy {
  /** A client-chosen key: the same key within `keyTtl` gets the first publish's position back, not a new publish. */
  readonly key?: string;
  /** Milliseconds a key is remembered. */
  readonly keyTtl: number;
}

/** A publish numbered and stored. */
export interface Appended {
  /** Its position. */
  readonly offset: number;
  /** Its stream's epoch. */
  readonly epoch: string;
  /** The push with its position, as members get it. */
  readonly text: string;
  /** `true` when its key was seen already: nothing was published again. */
  readonly duplicate: boolean;
}

/** One stored publish. */
export interface HistoryEntry {
  /** Its position. */
  readonly offset: number;
  /** The push, with its position. */
  readonly text: string;
}

/** What a history read finds. */
export interface HistoryRead {
  /** The stream's epoch (a new one when the topic has no stream yet). */
  readonly epoch: string;
  /** The last offset published (0 when none). */
  readonly top: number;
  /** The entries asked for, oldest first. */
  readonly entries: readonly HistoryEntry[];
  /** The oldest offset still kept (and young enough), if any. */
  readonly first: number | undefined;
}

/** A fresh epoch: 8 random base-36 characters. */
export function newEpoch(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return [...bytes].map((b) => (b % 36).toString(36)).join("");
}

interface Stored extends HistoryEntry {
  readonly at: number;
  readonly bytes: number;
}

/**
 * One topic's stream. `entries` from `start` on are kept, oldest first, with
 * contiguous offsets; dropping the oldest moves `start` (the array is
 * compacted once most of it is dropped), so an append costs the same
 * whatever the history's size.
 */
interface Stream {
  epoch: string;
  top: number;
  entries: Stored[];
  start: number;
  bytes: number;
}

/** What a dropped slot holds until the array is compacted. */
const DROPPED: Stored = { offset: 0, text: "", at: 0, bytes: 0 };

function emptyStream(): Stream {
  return { epoch: newEpoch(), top: 0, entries: [], start: 0, bytes: 0 };
}

/** Options of {@linkcode MemoryHistory}. */
export interface MemoryHistoryOptions {
  /** Topics with a stream at most; past it the least recently published goes. */
  maxTopics: number;
  /** Bytes (UTF-16 code units) of history kept at most; past it topics go the same way. */
  maxBytes: number;
  /** A clock in milliseconds. */
  now?: () => number;
}

/** Idempotency keys remembered at most (oldest forgotten first). */
const MAX_KEYS = 100_000;

/**
 * In-memory history for every topic of one process.
 *
 * @example
 * ```ts
 * import { MemoryHistory } from "./history.ts";
 * import { positionedHead } from "@duplex-ws/protocol";
 * const history = new MemoryHistory({ maxTopics: 10, maxBytes: 1 << 20 });
 * const policy = { size: 100, ttl: 60_000, keyTtl: 60_000 };
 * const head = positionedHead("note", "t", { n: 1 });
 * const first = history.append("t", head, policy);
 * console.assert(first.offset === 1 && history.read("t", 0, 10, 60_000).entries.length === 1);
 * ```
 */
export class MemoryHistory {
  readonly #options: MemoryHistoryOptions;
  readonly #now: () => number;
  /** Topic → stream; least recently published first. */
  readonly #streams = new Map<string, Stream>();
  readonly #keys = new Map<
    string,
    { offset: number; epoch: string; until: number }
  >();
  #bytes = 0;

  /** @param options The caps and the clock. */
  constructor(options: MemoryHistoryOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /** Bytes held now, all topics together. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Topics with a stream now. */
  get topics(): number {
    return this.#streams.size;
  }

  /** Numbers a publish and stores it (or returns the position its key already got). */
  append(topic: string, head: string, options: AppendOptions): Appended {
    const now = this.#now();
    const keyed = options.key === undefined
      ? undefined
      : `${topic}\u0000${options.key}`;
    if (keyed !== undefined) {
      const seen = this.#keys.get(keyed);
      if (seen && seen.until > now) {
        const text = withPosition(head, seen.offset, seen.epoch);
        return {
          offset: seen.offset,
          epoch: seen.epoch,
          text,
          duplicate: true,
        };
      }
    }
    let stream = this.#streams.get(topic);
    if (stream) this.#streams.delete(topic);
    else stream = emptyStream();
    this.#streams.set(topic, stream);
    const offset = ++stream.top;
    const text = withPosition(head, offset, stream.epoch);
    stream.entries.push({ offset, text, at: now, bytes: text.length });
    stream.bytes += text.length;
    this.#bytes += text.length;
    this.#trim(stream, options, now);
    if (keyed !== undefined) {
      this.#remember(keyed, offset, stream.epoch, now + options.keyTtl);
    }
    this.#evict(topic);
    return { offset, epoch: stream.epoch, text, duplicate: false };
  }

  /**
   * Reads a topic's stream: the first `limit` entries after `since`, or,
   * without `since`, the last `limit` ones; entries older than `ttl` are
   * not returned.
   */
  read(
    topic: string,
    since: number | undefined,
    limit: number,
    ttl: number,
  ): HistoryRead {
    let stream = this.#streams.get(topic);
    if (!stream) {
      // A topic never published to: an empty stream with its epoch, so the
      // first publish continues it.
      stream = emptyStream();
      this.#streams.set(topic, stream);
      this.#evict(topic);
    }
    const { entries: all, epoch, top } = stream;
    const young = this.#now() - ttl;
    let first = stream.start;
    while (first < all.length && all[first].at < young) first++;
    if (first === all.length) {
      return { epoch, top, entries: [], first: undefined };
    }
    // Offsets are contiguous: the entry after `since` is found by index.
    const from = since === undefined
      ? Math.max(first, all.length - limit)
      : first + Math.max(0, since + 1 - all[first].offset);
    const to = Math.min(all.length, from + limit);
    const entries = all.slice(from, Math.max(from, to))
      .map(({ offset, text }) => ({ offset, text }));
    return { epoch, top, entries, first: all[first].offset };
  }

  #trim(stream: Stream, policy: HistoryPolicy, now: number): void {
    const all = stream.entries;
    while (
      stream.start < all.length &&
      (all.length - stream.start > policy.size ||
        all[stream.start].at < now - policy.ttl)
    ) {
      stream.bytes -= all[stream.start].bytes;
      this.#bytes -= all[stream.start].bytes;
      all[stream.start++] = DROPPED;
    }
    if (stream.start >= 64 && stream.start * 2 >= all.length) {
      stream.entries = all.slice(stream.start);
      stream.start = 0;
    }
  }

  /** Least recently published topics go while over a cap (never `keep`). */
  #evict(keep: string): void {
    const { maxTopics, maxBytes } = this.#options;
    for (const [topic, stream] of this.#streams) {
      if (this.#streams.size <= maxTopics && this.#bytes <= maxBytes) return;
      if (topic === keep) continue;
      this.#bytes -= stream.bytes;
      this.#streams.delete(topic);
    }
  }

  #remember(key: string, offset: number, epoch: string, until: number): void {
    this.#keys.delete(key);
    if (this.#keys.size >= MAX_KEYS) {
      this.#keys.delete(this.#keys.keys().next().value!);
    }
    this.#keys.set(key, { offset, epoch, until });
  }
}
