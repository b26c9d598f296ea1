/**
 * Conflation for slow members (a topic policy's `conflate`): a member of
 * such a topic whose unsent bytes pass half its `maxBufferedAmount` is not
 * sent the topic's publishes any more but keeps the latest one per key
 * (the `key` field of the data; one value without a key), and gets them
 * every `interval` once it has room again, as many as its room takes each
 * time, each marked `"conflated":true` when values were skipped. It is not
 * closed as a slow consumer for that topic's traffic, and holds at most
 * `MAX_KEYS` values per topic.
 *
 * @module
 */

import { type Member, sendOfTopic } from "./hub.ts";

/** Values held at most per member and topic; past it the oldest key goes. */
export const MAX_KEYS = 1_000;

/** What a conflated topic does. */
export interface ConflateSettings {
  /** The field of the data whose value is what a publish is the latest of. */
  readonly key?: string;
  /** Milliseconds between two tries to send what is held. */
  readonly interval: number;
}

/** What one member holds of one topic while it is behind. */
interface Held {
  /** Key → the latest text, in the order they were last published. */
  readonly values: Map<string, string>;
  /** Whether a value was replaced (so some were skipped). */
  skipped: boolean;
  /** Milliseconds between tries. */
  readonly interval: number;
  timer: ReturnType<typeof setTimeout>;
}

/** The members that are behind in conflated topics, and what they hold. */
export class Conflation {
  readonly #held = new Map<Member, Map<string, Held>>();

  /** Members behind in some topic (for tests and metrics). */
  get behind(): number {
    return this.#held.size;
  }

  /**
   * What a delivery of `text` to a conflated topic sends: the text to a
   * member with room, nothing to one that is behind (it holds the text).
   */
  outgoing(
    topic: string,
    text: string,
    settings: ConflateSettings,
  ): (member: Member) => string | undefined {
    let key: string | undefined | null = null; // not read yet
    return (member) => {
      // Behind: holding values already, or past half its cap (no room).
      const held = this.#held.get(member)?.get(topic);
      if (!held && (member.room?.() ?? Infinity) > 0) return text;
      key ??= keyOf(text, settings.key);
      this.#hold(member, topic, key, text, settings.interval);
      return undefined;
    };
  }

  /** A member left a topic (or closed): what it held is dropped. */
  forget(member: Member, topic: string): void {
    const topics = this.#held.get(member);
    const held = topics?.get(topic);
    if (!topics || !held) return;
    clearTimeout(held.timer);
    topics.delete(topic);
    if (topics.size === 0) this.#held.delete(member);
  }

  /** Stops every timer. */
  close(): void {
    for (const topics of this.#held.values()) {
      for (const held of topics.values()) clearTimeout(held.timer);
    }
    this.#held.clear();
  }

  #hold(
    member: Member,
    topic: string,
    key: string,
    text: string,
    interval: number,
  ): void {
    let topics = this.#held.get(member);
    if (!topics) this.#held.set(member, topics = new Map());
    let held = topics.get(topic);
    if (!held) {
      const timer = setTimeout(() => this.#flush(member, topic), interval);
      held = { values: new Map(), skipped: false, interval, timer };
      topics.set(topic, held);
    }
    if (held.values.delete(key)) held.skipped = true;
    held.values.set(key, text);
    if (held.values.size > MAX_KEYS) {
      held.values.delete(held.values.keys().next().value!);
      held.skipped = true;
    }
  }

  /**
   * Sends what is held a part at a time: oldest first, while the member has
   * room (at least one value once it has any, so a value larger than its
   * room still goes); the rest waits for the next interval.
   */
  #flush(member: Member, topic: string): void {
    const held = this.#held.get(member)?.get(topic);
    if (!held) return;
    let room = member.room?.() ?? Infinity;
    for (const [key, text] of held.values) {
      if (room <= 0) break;
      held.values.delete(key);
      const out = held.skipped ? `{"conflated":true,${text.slice(1)}` : text;
      if (!sendOfTopic(member, out, topic)) break; // it is gone
      room -= out.length;
    }
    if (held.values.size === 0) return this.forget(member, topic);
    held.timer = setTimeout(() => this.#flush(member, topic), held.interval);
  }
}

/** The key a publish is the latest value of: its data's field, as text. */
function keyOf(text: string, field: string | undefined): string {
  if (field === undefined) return "";
  try {
    const value = (JSON.parse(text) as { data?: Record<string, unknown> })
      .data?.[field];
    return typeof value === "string" || typeof value === "number"
      ? String(value)
      : "";
  } catch {
    return "";
  }
}
