/**
 * The local engine's idempotency keys: a publish with a key seen within its
 * time to live answers the first one's position instead of publishing
 * again. Bounded per topic and in all, and fairly: when the whole is full,
 * the topic holding the most keys gives one up, so one publisher flooding
 * keys into topics of its own cannot push out another topic's recent keys.
 *
 * @module
 */

/** The position a key's publish got, and until when it is remembered. */
export interface KeyedPosition {
  /** The publish's offset. */
  readonly offset: number;
  /** Its stream's epoch. */
  readonly epoch: string;
  /** Milliseconds since the epoch after which the key is forgotten. */
  readonly until: number;
}

/** Keys remembered at most per topic (its oldest forgotten first). */
export const KEYS_PER_TOPIC = 1_000;
/** Keys remembered at most in all. */
export const MAX_KEYS = 100_000;

/** Idempotency keys by topic. */
export class PublishKeys {
  /** Topic → key → position, oldest first. */
  readonly #topics = new Map<string, Map<string, KeyedPosition>>();
  #size = 0;

  /** Keys remembered now. */
  get size(): number {
    return this.#size;
  }

  /** The position `key` got in `topic`, while it is remembered at `now`. */
  get(topic: string, key: string, now: number): KeyedPosition | undefined {
    const seen = this.#topics.get(topic)?.get(key);
    return seen && seen.until > now ? seen : undefined;
  }

  /** Remembers `key`'s position in `topic`. */
  set(topic: string, key: string, position: KeyedPosition): void {
    let keys = this.#topics.get(topic);
    if (!keys) this.#topics.set(topic, keys = new Map());
    if (keys.delete(key)) this.#size--;
    if (keys.size >= KEYS_PER_TOPIC) this.#forgetOldest(topic, keys);
    if (this.#size >= MAX_KEYS) this.#forgetFromLargest();
    keys.set(key, position);
    this.#size++;
  }

  /** A topic's history went: its keys go too. */
  drop(topic: string): void {
    this.#size -= this.#topics.get(topic)?.size ?? 0;
    this.#topics.delete(topic);
  }

  #forgetOldest(topic: string, keys: Map<string, KeyedPosition>): void {
    keys.delete(keys.keys().next().value!);
    this.#size--;
    if (keys.size === 0) this.#topics.delete(topic);
  }

  #forgetFromLargest(): void {
    let largest: [string, Map<string, KeyedPosition>] | undefined;
    for (const entry of this.#topics) {
      if (!largest || entry[1].size > largest[1].size) largest = entry;
    }
    if (largest) this.#forgetOldest(...largest);
  }
}
