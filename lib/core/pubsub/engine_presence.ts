/**
 * What every engine with presence across nodes keeps on its own node: the
 * other nodes' member counts as last read (bounded, refreshed in the
 * background when older than a second), and this node's own presence
 * entries per topic (to write again after an outage).
 *
 * @module
 */

import type { PresenceDelta, PresenceEntry } from "./topic_presence.ts";

/** Topics whose remote count is remembered at most (least recently read go first). */
const MAX_REMEMBERED = 1_000;

/** The other nodes' member counts of topics, as last read. */
export class RemoteCounts {
  readonly #counts = new Map<string, { count: number; at: number }>();

  /**
   * The count last read (0 before any); when it is older than a second,
   * `refresh` is called once (it reads the count again and `set`s it).
   */
  get(topic: string, refresh: () => void): number {
    const known = this.#counts.get(topic);
    if (known === undefined || performance.now() - known.at > 1_000) {
      // Marked fresh at once: one refresh at a time per topic.
      this.set(topic, known?.count ?? 0);
      refresh();
    }
    return known?.count ?? 0;
  }

  /** Remembers a count just read. */
  set(topic: string, count: number): void {
    this.#counts.delete(topic);
    if (this.#counts.size >= MAX_REMEMBERED) {
      this.#counts.delete(this.#counts.keys().next().value!);
    }
    this.#counts.set(topic, { count, at: performance.now() });
  }
}

/**
 * This node's own presence entries per topic, as an engine keeps them to
 * write again: a leave (`null`) stays until it is written.
 */
export type OwnEntries = Map<string, Map<string, PresenceEntry | null>>;

/**
 * Applies this node's presence `delta` of `topic` to what it keeps of its
 * own entries; its leaves stay, as `null`, until
 * {@linkcode forgetWrittenLeaves} says they were written (an outage would
 * otherwise leave the entries standing in the engine).
 */
export function keepOwnEntries(
  entries: OwnEntries,
  topic: string,
  delta: PresenceDelta,
): void {
  let mine = entries.get(topic);
  if (!mine) entries.set(topic, mine = new Map());
  for (const [key, entry] of Object.entries(delta)) mine.set(key, entry);
}

/** `delta` was written: its leaves are not kept any more. */
export function forgetWrittenLeaves(
  entries: OwnEntries,
  topic: string,
  delta: PresenceDelta,
): void {
  const mine = entries.get(topic);
  for (const [key, entry] of Object.entries(delta)) {
    if (entry === null && mine?.get(key) === null) mine.delete(key);
  }
  if (mine?.size === 0) entries.delete(topic);
}
