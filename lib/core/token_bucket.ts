/**
 * The token bucket every rate in duplex is measured with: messages and
 * bytes per connection, fan-out, topic changes, handshakes per address and
 * per subject.
 *
 * @module
 */

/**
 * A token bucket: `rate` tokens per second, holding at most `capacity`.
 *
 * @example
 * ```ts
 * import { TokenBucket } from "./token_bucket.ts";
 * const bucket = new TokenBucket(10, 2, () => 0);
 * console.assert(bucket.take(1) && bucket.take(1) && !bucket.take(1));
 * ```
 */
export class TokenBucket {
  #tokens: number;
  #last: number;
  readonly #rate: number;
  readonly #capacity: number;
  readonly #now: () => number;

  /**
   * Makes a full bucket.
   * @param rate Tokens added per second.
   * @param capacity The most tokens held (and the start value).
   * @param now A clock in milliseconds (default `Date.now`: a V8 builtin,
   *   cheaper per message than `performance.now`, which is a runtime call;
   *   a clock that goes back restarts the refill instead of stalling it).
   */
  constructor(
    rate: number,
    capacity: number,
    now: () => number = Date.now,
  ) {
    this.#rate = rate;
    this.#capacity = capacity;
    this.#tokens = capacity;
    this.#now = now;
    this.#last = now();
  }

  /** The most tokens the bucket holds. */
  get capacity(): number {
    return this.#capacity;
  }

  /**
   * Whether `cost` tokens are there now (refilling first); takes none.
   * @param now The clock's reading, when the caller has one already.
   */
  has(cost: number, now: number = this.#now()): boolean {
    this.#refill(now);
    return this.#tokens >= cost;
  }

  /**
   * Takes `cost` tokens whatever is there, into debt down to minus the
   * capacity: for a cost known only afterwards. Nothing passes until the
   * debt is refilled.
   */
  charge(cost: number): void {
    this.#refill(this.#now());
    this.#tokens = Math.max(-this.#capacity, this.#tokens - cost);
  }

  /**
   * Takes `cost` tokens if there are that many; `false` leaves the bucket
   * as it was.
   * @param now The clock's reading, when the caller has one already.
   */
  take(cost: number, now: number = this.#now()): boolean {
    if (!this.has(cost, now)) return false;
    this.#tokens -= cost;
    return true;
  }

  #refill(now: number): void {
    const elapsed = now - this.#last;
    if (elapsed > 0) {
      this.#tokens = Math.min(
        this.#capacity,
        this.#tokens + (elapsed * this.#rate) / 1000,
      );
      this.#last = now;
    } else if (elapsed < 0) {
      // The wall clock went back: start again from now, never stall.
      this.#last = now;
    }
  }
}

/**
 * A bucket of `rate` tokens per second holding `burstSeconds` of them (at
 * least one); `undefined` for a rate of 0 (no limit).
 */
export function bucket(
  rate: number,
  burstSeconds: number,
): TokenBucket | undefined {
  return rate > 0
    ? new TokenBucket(rate, Math.max(1, rate * burstSeconds))
    : undefined;
}

/**
 * A bucket per key (a client address, a subject) of `perSecond` tokens a
 * second holding twice as many, at most `max` keys remembered: the least
 * recently used is forgotten first (and starts full when it comes back).
 *
 * @example
 * ```ts
 * import { KeyedBuckets } from "./token_bucket.ts";
 * const buckets = new KeyedBuckets(1, 2);
 * console.assert(buckets.get("a").take(2) && !buckets.get("a").take(1));
 * console.assert(buckets.get("b").take(1));
 * ```
 */
export class KeyedBuckets {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #perSecond: number;
  readonly #max: number;

  /**
   * Makes an empty set of buckets.
   * @param perSecond Tokens a second for each key.
   * @param max Keys remembered at most.
   */
  constructor(perSecond: number, max = 10_000) {
    this.#perSecond = perSecond;
    this.#max = max;
  }

  /** The bucket of `key`, made full when it has none. */
  get(key: string): TokenBucket {
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      bucket = new TokenBucket(this.#perSecond, this.#perSecond * 2);
      if (this.#buckets.size >= this.#max) {
        this.#buckets.delete(this.#buckets.keys().next().value!);
      }
    } else this.#buckets.delete(key);
    // Re-inserted on every use: the map's order is least recently used first.
    this.#buckets.set(key, bucket);
    return bucket;
  }
}
