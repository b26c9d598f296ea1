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

/** Applies this node's presence `delta` of `topic` to what it keeps of its own entries. */
export function keepOwnEntries(
  entries: Map<string, Map<string, PresenceEntry>>,
  topic: string,
  delta: PresenceDelta,
): void {
  let mine = entries.get(topic);
  if (!mine) entries.set(topic, mine = new Map());
  for (const [key, entry] of Object.entries(delta)) {
    if (entry === null) mine.delete(key);
    else mine.set(key, entry);
  }
  if (mine.size === 0) entries.delete(topic);
}
