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
import { PublishKeys } from "./publish_keys.ts";

/** A character past Latin-1. */
const WIDE = /[\u0100-\uffff]/;

/** What one stored entry costs besides its text (the entry object, its slot). */
const ENTRY_OVERHEAD = 64;

/**
 * The memory a stored push takes: its characters at one byte each, or two
 * when any is past Latin-1 (V8 then stores every character in two), plus
 * the entry. Testing the text also flattens it, so it keeps no parent
 * string alive.
 */
export function memoryOf(text: string): number {
  return text.length * (WIDE.test(text) ? 2 : 1) + ENTRY_OVERHEAD;
}

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
  /**
   * Store it only if the topic's latest publish is still this one (`null`:
   * only if the topic has none yet); otherwise store nothing and answer the
   * current position with `conflict: true`. Checked in the same atomic step
   * as the append.
   */
  readonly ifPosition?:
    | { readonly offset: number; readonly epoch: string }
    | null;
  /**
   * Keep it as the topic's latest value for `key` (`""` in a topic that
   * keeps one), at most `maxKeys` of them; a new key past that is refused
   * (`full: true`, nothing stored).
   */
  readonly latest?: { readonly key: string; readonly maxKeys: number };
  /**
   * The app's open transaction to store it in (engines with
   * `Backplane.transactions`): it is then delivered by the engine, on every
   * node this one included, once the transaction commits.
   */
  readonly transaction?: unknown;
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
  /**
   * `true` when `ifPosition` no longer held: nothing was stored, and
   * `offset`/`epoch` are the topic's current position (0 and the epoch, or
   * an empty epoch, when it has no publish).
   */
  readonly conflict?: boolean;
  /** `true` when `latest` was refused: the topic keeps `maxKeys` values already. */
  readonly full?: boolean;
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
  /** Key → its latest publish (`latest` topics). */
  latest?: Map<string, Stored>;
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
  /** Bytes of memory history may take at most (see `memoryOf`); past it topics go the same way. */
  maxBytes: number;
  /** A clock in milliseconds. */
  now?: () => number;
}

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
  readonly #keys = new PublishKeys();
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
    const { key } = options;
    if (key !== undefined) {
      const seen = this.#keys.get(topic, key, now);
      if (seen) {
        const text = withPosition(head, seen.offset, seen.epoch);
        return {
          offset: seen.offset,
          epoch: seen.epoch,
          text,
          duplicate: true,
        };
      }
    }
    const conflict = this.#conflict(topic, options.ifPosition) ??
      this.#full(topic, options.latest);
    if (conflict) return conflict;
    let stream = this.#streams.get(topic);
    if (stream) this.#streams.delete(topic);
    else stream = emptyStream();
    this.#streams.set(topic, stream);
    const offset = ++stream.top;
    const text = withPosition(head, offset, stream.epoch);
    const bytes = memoryOf(text);
    const stored = { offset, text, at: now, bytes };
    stream.entries.push(stored);
    stream.bytes += bytes;
    this.#bytes += bytes;
    if (options.latest) this.#keep(stream, options.latest.key, stored);
    this.#trim(stream, options, now);
    if (key !== undefined) {
      const { epoch } = stream;
      this.#keys.set(topic, key, {
        offset,
        epoch,
        until: now + options.keyTtl,
      });
    }
    this.#evict(topic);
    return { offset, epoch: stream.epoch, text, duplicate: false };
  }

  /** A topic's latest values, oldest first. */
  latest(topic: string): HistoryEntry[] {
    const kept = this.#streams.get(topic)?.latest;
    if (!kept) return [];
    return [...kept.values()].sort((a, b) => a.offset - b.offset)
      .map(({ offset, text }) => ({ offset, text }));
  }

  #keep(stream: Stream, key: string, stored: Stored): void {
    stream.latest ??= new Map();
    const before = stream.latest.get(key);
    if (before) {
      stream.bytes -= before.bytes;
      this.#bytes -= before.bytes;
    }
    stream.latest.set(key, stored);
    stream.bytes += stored.bytes;
    this.#bytes += stored.bytes;
  }

  /** `full: true` when `latest` asks for a new key past `maxKeys`. */
  #full(topic: string, latest: AppendOptions["latest"]): Appended | undefined {
    const kept = latest && this.#streams.get(topic)?.latest;
    if (!kept || kept.has(latest.key) || kept.size < latest.maxKeys) {
      return undefined;
    }
    const { top: offset, epoch } = this.#streams.get(topic)!;
    return { offset, epoch, text: "", duplicate: false, full: true };
  }

  /** The current position when `ifPosition` no longer holds, else `undefined`. */
  #conflict(
    topic: string,
    ifPosition: AppendOptions["ifPosition"],
  ): Appended | undefined {
    if (ifPosition === undefined) return undefined;
    const stream = this.#streams.get(topic);
    const top = stream?.top ?? 0;
    const epoch = stream?.epoch ?? "";
    const holds = ifPosition === null
      ? top === 0
      : top > 0 && top === ifPosition.offset && epoch === ifPosition.epoch;
    if (holds) return undefined;
    return { offset: top, epoch, text: "", duplicate: false, conflict: true };
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
      this.#keys.drop(topic);
    }
  }
}
