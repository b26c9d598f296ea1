/**
 * The protections of one connection, as verdicts: message size, the rate
 * limit (token buckets for messages and bytes), the in-flight cap, the
 * slow-consumer cap on what the runtime holds unsent, and what the
 * connection makes the server do for others: its fan-out (deliveries and
 * bytes its publishes cause) and its topic changes (each one a presence
 * change every member hears about). The connection acts on
 * a verdict; the router answers a refusal. Nothing here sends or logs.
 *
 * @module
 */

import {
  type ErrorCode,
  type LibraryCloseKind,
  utf8Length,
  type WireError,
} from "@duplex-ws/protocol";
import { Budget, type ResolvedFanoutLimit } from "./budget.ts";
import { bucket, type TokenBucket } from "./token_bucket.ts";

export type { FanoutLimitOptions, ResolvedFanoutLimit } from "./budget.ts";
/** Options of the per-connection rate limit (two token buckets). */
export interface RateLimitOptions {
  /**
   * Messages per second, sustained; `0` disables the message bucket.
   * @default {1000}
   */
  messagesPerSecond?: number;
  /**
   * Bytes per second, sustained; `0` disables the byte bucket.
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

/** The limits every connection of one server shares (resolved options). */
export interface ConnectionLimits {
  /** The largest message accepted, in bytes. */
  readonly maxMessageSize: number;
  /** Bytes the runtime may hold unsent before the peer is closed; 0: no cap. */
  readonly maxBufferedAmount: number;
  /** Handlers that may be running at once. */
  readonly maxInFlight: number;
  /** The rate limit, or `false`. */
  readonly rateLimit: ResolvedRateLimit | false;
  /** The fan-out budget of `ctx.publish`, or `false`. */
  readonly fanoutLimit: ResolvedFanoutLimit | false;
  /** Joins and leaves per second; 0: no limit. */
  readonly topicChangesPerSecond: number;
  /** Topics one connection may be in: the joins the topic bucket holds. */
  readonly maxTopicsPerConnection: number;
  /** Requests with a key per second; 0: no limit. */
  readonly keyedRequestsPerSecond: number;
}

/**
 * What to do with a message: `undefined` to route it, a refusal to answer
 * with an error envelope (the message is dropped), or a close.
 */
export type Verdict =
  | undefined
  | { readonly refuse: ErrorCode; readonly message: string }
  | { readonly close: LibraryCloseKind };

/** Bytes sent between two checks of `bufferedAmount` (a sync op each). */
export const BUFFER_CHECK_EVERY = 16_384;

const RATE_LIMITED: Verdict = {
  refuse: "RATE_LIMITED",
  message: "Too many messages: slow down",
};
const BUSY: Verdict = {
  refuse: "BUSY",
  message: "Too many requests in progress: wait for replies",
};
const FANOUT_LIMITED: Verdict = {
  refuse: "RATE_LIMITED",
  message: "Publishing faster than this connection's fan-out budget: slow down",
};
const TOPIC_CHANGES_LIMITED: Verdict = {
  refuse: "RATE_LIMITED",
  message: "Joining and leaving too fast: slow down",
};
const KEYED_LIMITED: WireError = {
  code: "RATE_LIMITED",
  message: "Too many requests with a key: slow down",
};

/**
 * The limiter of one connection. Made on its first message or send, so an
 * idle connection pays for none of it.
 */
export class ConnectionLimiter {
  readonly #limits: ConnectionLimits;
  readonly #messages: TokenBucket | undefined;
  readonly #bytes: TokenBucket | undefined;
  /** This connection's fan-out and topic-change budget. */
  #own: Budget | undefined;
  /** Its address's, shared by every connection of the address. */
  readonly #shared: Budget | undefined;
  #refusedInARow = 0;
  #inFlight = 0;
  #sentSinceCheck = 0;

  /**
   * Builds the buckets from the server's limits.
   * @param shared The budget of the connection's address, if any.
   */
  constructor(limits: ConnectionLimits, shared?: Budget) {
    this.#limits = limits;
    this.#shared = shared;
    const { rateLimit } = limits;
    if (rateLimit) {
      this.#messages = bucket(
        rateLimit.messagesPerSecond,
        rateLimit.burstSeconds,
      );
      this.#bytes = bucket(rateLimit.bytesPerSecond, rateLimit.burstSeconds);
    }
  }

  /** Judges a text message: size (UTF-8 bytes), then rate, then in-flight. */
  admitText(text: string): Verdict {
    if (tooBig(text, this.#limits.maxMessageSize)) return { close: "TOO_BIG" };
    return this.#admit(text.length);
  }

  /** Judges a binary message of `bytes` bytes. */
  admitBinary(bytes: number): Verdict {
    if (bytes > this.#limits.maxMessageSize) return { close: "TOO_BIG" };
    return this.#admit(bytes);
  }

  /** Counts a running handler until `pending` settles (it never rejects). */
  track(pending: Promise<void>): void {
    this.#inFlight++;
    pending.finally(() => this.#inFlight--);
  }

  /**
   * Accounts `bytes` just handed to the runtime; every
   * {@linkcode BUFFER_CHECK_EVERY} bytes reads the socket's
   * `bufferedAmount` and judges it against the slow-consumer cap.
   */
  sent(bytes: number, socket: { readonly bufferedAmount: number }): Verdict {
    const cap = this.#limits.maxBufferedAmount;
    if (cap === 0) return undefined;
    this.#sentSinceCheck += bytes;
    if (this.#sentSinceCheck < BUFFER_CHECK_EVERY) return undefined;
    this.#sentSinceCheck = 0;
    return socket.bufferedAmount > cap ? { close: "SLOW_CONSUMER" } : undefined;
  }

  /**
   * Charges a fan-out (a publish, a presence change) reaching `members`
   * members with `bytes` bytes each against this connection's budget and
   * its address's; nothing is charged when either refuses.
   */
  publish(members: number, bytes: number): Verdict {
    if (!this.#limits.fanoutLimit || members === 0) return undefined;
    const own = this.#budget();
    if (
      !own.fits(members, bytes) || this.#shared?.fits(members, bytes) === false
    ) {
      return FANOUT_LIMITED;
    }
    own.take(members, bytes);
    this.#shared?.take(members, bytes);
    return undefined;
  }

  /**
   * Whether a join may replay history now: refused while the fan-out budget
   * (its own or its address's) is spent, since a replay costs what a
   * publish to the member costs.
   */
  replay(): Verdict {
    if (!this.#limits.fanoutLimit) return undefined;
    return this.#budget().spent() || this.#shared?.spent()
      ? FANOUT_LIMITED
      : undefined;
  }

  /**
   * Charges a replay that happened (`count` publishes, `bytes` in all),
   * into debt if need be: the next replay or publish waits until the budget
   * has refilled.
   */
  replayed(count: number, bytes: number): void {
    if (!this.#limits.fanoutLimit || count === 0) return;
    this.#budget().charge(count, bytes);
    this.#shared?.charge(count, bytes);
  }

  /** Charges one join or leave against the topic-change rate (its own and its address's). */
  topicChange(): Verdict {
    if (this.#limits.topicChangesPerSecond === 0) return undefined;
    const ok = this.#budget().topicChange() &&
      (this.#shared?.topicChange() ?? true);
    return ok ? undefined : TOPIC_CHANGES_LIMITED;
  }

  /** Charges one keyed request (its own rate and its address's); a refusal past them. */
  keyedRequest(): WireError | undefined {
    if (this.#limits.keyedRequestsPerSecond === 0) return undefined;
    const ok = this.#budget().keyedRequest() &&
      (this.#shared?.keyedRequest() ?? true);
    return ok ? undefined : KEYED_LIMITED;
  }

  #budget(): Budget {
    return this.#own ??= new Budget(this.#limits);
  }

  #admit(bytes: number): Verdict {
    // One clock reading for both buckets.
    const now = Date.now();
    const allowed = (this.#messages?.take(1, now) ?? true) &&
      (this.#bytes?.take(bytes, now) ?? true);
    if (!allowed) {
      this.#refusedInARow++;
      const { rateLimit } = this.#limits;
      return rateLimit && this.#refusedInARow >= rateLimit.closeAfter
        ? { close: "RATE_LIMIT" }
        : RATE_LIMITED;
    }
    this.#refusedInARow = 0;
    return this.#inFlight >= this.#limits.maxInFlight ? BUSY : undefined;
  }
}

/** Whether a text is over `limit` UTF-8 bytes, counting only when it must. */
function tooBig(text: string, limit: number): boolean {
  if (text.length > limit) return true;
  if (text.length * 3 <= limit) return false;
  return utf8Length(text) > limit;
}
