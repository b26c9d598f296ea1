/**
 * What a connection makes the server do for others, as budgets: its
 * fan-out (deliveries and bytes its publishes, replays and presence changes
 * cause) and its topic changes (each a presence change every member hears
 * about). Each connection has one; each client address has one too, a few
 * connections' worth, shared by all its connections, so that opening more
 * connections (or reconnecting for fresh buckets) does not multiply what one
 * client may make the server send.
 *
 * @module
 */

import { bucket, TokenBucket } from "./token_bucket.ts";

/**
 * Options of the per-connection fan-out budget: what a connection's
 * publishes make the server send, charged as deliveries (members reached)
 * and bytes (message size × members reached).
 */
export interface FanoutLimitOptions {
  /**
   * Deliveries per second, sustained; `0` disables this bucket.
   * @default {20000}
   */
  deliveriesPerSecond?: number;
  /**
   * Bytes delivered per second, sustained; `0` disables this bucket.
   * @default {16777216}
   */
  bytesPerSecond?: number;
  /**
   * Seconds of fan-out a bucket holds above the rate.
   * @default {2}
   */
  burstSeconds?: number;
}

/** {@linkcode FanoutLimitOptions} with every default filled in. */
export type ResolvedFanoutLimit = Required<FanoutLimitOptions>;

/** The limits a budget is made from (resolved options). */
export interface BudgetLimits {
  /** The fan-out budget, or `false`. */
  readonly fanoutLimit: ResolvedFanoutLimit | false;
  /** Joins and leaves per second; 0: no limit. */
  readonly topicChangesPerSecond: number;
  /** Topics one connection may be in: the joins the topic bucket holds. */
  readonly maxTopicsPerConnection: number;
  /** Requests with a key per second (their replies are kept); 0: no limit. */
  readonly keyedRequestsPerSecond: number;
}

/** One fan-out budget and one topic-change rate; buckets made on first use. */
export class Budget {
  readonly #limits: BudgetLimits;
  readonly #factor: number;
  #deliveries: TokenBucket | undefined;
  #bytes: TokenBucket | undefined;
  #topics: TokenBucket | undefined;
  #keyed: TokenBucket | undefined;

  /**
   * @param limits One connection's limits.
   * @param factor How many connections' worth (an address's budget).
   */
  constructor(limits: BudgetLimits, factor = 1) {
    this.#limits = limits;
    this.#factor = factor;
  }

  /** Whether a fan-out of `members` × `bytes` fits now (a cost past a whole bucket counts as the bucket). */
  fits(members: number, bytes: number): boolean {
    this.#fanout();
    const fits = (b: TokenBucket | undefined, cost: number) =>
      b === undefined || b.has(Math.min(cost, b.capacity));
    return fits(this.#deliveries, members) &&
      fits(this.#bytes, members * bytes);
  }

  /** Takes a fan-out that {@linkcode fits}. */
  take(members: number, bytes: number): void {
    const take = (b: TokenBucket | undefined, cost: number) =>
      b?.take(Math.min(cost, b.capacity));
    take(this.#deliveries, members);
    take(this.#bytes, members * bytes);
  }

  /** Whether the fan-out budget is spent (a replay must wait). */
  spent(): boolean {
    const empty = (b: TokenBucket | undefined) => b !== undefined && !b.has(1);
    return empty(this.#deliveries) || empty(this.#bytes);
  }

  /** Charges a fan-out that happened, into debt if need be. */
  charge(count: number, bytes: number): void {
    this.#fanout();
    this.#deliveries?.charge(count);
    this.#bytes?.charge(bytes);
  }

  /** Takes one topic change; `false` when the rate is spent. */
  topicChange(): boolean {
    const rate = this.#limits.topicChangesPerSecond * this.#factor;
    if (rate === 0) return true;
    this.#topics ??= new TokenBucket(
      rate,
      Math.max(rate * 2, this.#limits.maxTopicsPerConnection * this.#factor),
    );
    return this.#topics.take(1);
  }

  /** Takes one keyed request; `false` when the rate is spent. */
  keyedRequest(): boolean {
    const rate = this.#limits.keyedRequestsPerSecond * this.#factor;
    if (rate === 0) return true;
    // Five seconds' worth: a client's whole outbox (100) resent at once.
    this.#keyed ??= new TokenBucket(rate, rate * 5);
    return this.#keyed.take(1);
  }

  #fanout(): void {
    const limit = this.#limits.fanoutLimit;
    if (!limit || this.#deliveries || this.#bytes) return;
    const { deliveriesPerSecond, bytesPerSecond, burstSeconds } = limit;
    this.#deliveries = bucket(deliveriesPerSecond * this.#factor, burstSeconds);
    this.#bytes = bucket(bytesPerSecond * this.#factor, burstSeconds);
  }
}

/** Addresses whose budget is remembered at most (least recently used forgotten first). */
const MAX_ADDRESSES = 10_000;

/** The budgets of client addresses, each shared by its connections. */
export class AddressBudgets {
  readonly #limits: BudgetLimits;
  readonly #factor: number;
  readonly #budgets = new Map<string, Budget>();

  /**
   * @param limits One connection's limits.
   * @param factor How many connections' worth an address has; 0: none.
   */
  constructor(limits: BudgetLimits, factor: number) {
    this.#limits = limits;
    this.#factor = factor;
  }

  /** The budget of `address` (none without an address, or with factor 0). */
  of(address: string | undefined): Budget | undefined {
    if (address === undefined || this.#factor === 0) return undefined;
    let budget = this.#budgets.get(address);
    if (budget === undefined) {
      budget = new Budget(this.#limits, this.#factor);
      if (this.#budgets.size >= MAX_ADDRESSES) {
        this.#budgets.delete(this.#budgets.keys().next().value!);
      }
    } else this.#budgets.delete(address);
    this.#budgets.set(address, budget);
    return budget;
  }
}
