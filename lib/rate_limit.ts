/**
 * Per-connection rate limits: two token buckets, one for messages and one
 * for bytes, refilled continuously.
 *
 * @module
 */

/** Options of the per-connection rate limit. */
export interface RateLimitOptions {
  /**
   * Messages per second, sustained; `0` disables the message limit.
   * @default {1000}
   */
  messagesPerSecond?: number;
  /**
   * Bytes per second, sustained; `0` disables the byte limit.
   * @default {4194304}
   */
  bytesPerSecond?: number;
  /**
   * Seconds of traffic a bucket holds: the burst allowed above the rate.
   * @default {2}
   */
  burstSeconds?: number;
  /**
   * Refused messages in a row after which the connection is closed with 1008.
   * @default {1000}
   */
  closeAfter?: number;
}

/** {@linkcode RateLimitOptions} with every default filled in. */
export type ResolvedRateLimit = Required<RateLimitOptions>;

/** Fills in defaults and checks the numbers. @throws {RangeError} */
export function resolveRateLimit(
  options: RateLimitOptions | false,
): ResolvedRateLimit | false {
  if (options === false) return false;
  const {
    messagesPerSecond = 1000,
    bytesPerSecond = 4_194_304,
    burstSeconds = 2,
    closeAfter = 1000,
  } = options;
  for (
    const [name, value] of Object.entries({
      messagesPerSecond,
      bytesPerSecond,
      burstSeconds,
    })
  ) {
    if (!(Number.isFinite(value) && value >= 0)) {
      throw new RangeError(
        `Cannot create server: rateLimit.${name} must be a number >= 0, got ${value}`,
      );
    }
  }
  if (!Number.isSafeInteger(closeAfter) || closeAfter < 1) {
    throw new RangeError(
      `Cannot create server: rateLimit.closeAfter must be an integer >= 1, got ${closeAfter}`,
    );
  }
  return { messagesPerSecond, bytesPerSecond, burstSeconds, closeAfter };
}

/**
 * A token bucket: `rate` tokens per second, holding at most `capacity`.
 *
 * @example
 * ```ts
 * import { TokenBucket } from "./rate_limit.ts";
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
   * @param rate Tokens added per second.
   * @param capacity The most tokens held (and the start value).
   * @param now A clock in milliseconds.
   */
  constructor(
    rate: number,
    capacity: number,
    now: () => number = performance.now.bind(performance),
  ) {
    this.#rate = rate;
    this.#capacity = capacity;
    this.#tokens = capacity;
    this.#now = now;
    this.#last = now();
  }

  /** Takes `cost` tokens if there are that many; `false` leaves the bucket as it was. */
  take(cost: number): boolean {
    const now = this.#now();
    const elapsed = now - this.#last;
    if (elapsed > 0) {
      this.#tokens = Math.min(
        this.#capacity,
        this.#tokens + (elapsed * this.#rate) / 1000,
      );
      this.#last = now;
    }
    if (this.#tokens < cost) return false;
    this.#tokens -= cost;
    return true;
  }
}

/** The limiter of one connection: both buckets and the refusals in a row. */
export class ConnectionRateLimit {
  readonly #messages: TokenBucket | undefined;
  readonly #bytes: TokenBucket | undefined;
  readonly #closeAfter: number;
  #refusedInARow = 0;

  /** Builds the buckets from resolved options. */
  constructor(options: ResolvedRateLimit) {
    const { messagesPerSecond, bytesPerSecond, burstSeconds, closeAfter } =
      options;
    if (messagesPerSecond > 0) {
      this.#messages = new TokenBucket(
        messagesPerSecond,
        Math.max(1, messagesPerSecond * burstSeconds),
      );
    }
    if (bytesPerSecond > 0) {
      this.#bytes = new TokenBucket(
        bytesPerSecond,
        Math.max(1, bytesPerSecond * burstSeconds),
      );
    }
    this.#closeAfter = closeAfter;
  }

  /**
   * Accounts one message of `bytes` bytes.
   * @returns `ok`, `refuse` (answer RATE_LIMITED) or `close` (sustained abuse: 1008).
   */
  admit(bytes: number): "ok" | "refuse" | "close" {
    const allowed = (this.#messages?.take(1) ?? true) &&
      (this.#bytes?.take(bytes) ?? true);
    if (allowed) {
      this.#refusedInARow = 0;
      return "ok";
    }
    this.#refusedInARow++;
    return this.#refusedInARow >= this.#closeAfter ? "close" : "refuse";
  }
}
