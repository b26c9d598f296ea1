/**
 * Bytes forwarded to other nodes per client address: a `POST` for a
 * session elsewhere crosses the engine before anyone can charge it to a
 * session (the owner may answer 404), so its address pays for it here, at
 * the rate one connection may send.
 *
 * @module
 */

import { TokenBucket } from "@duplex-ws/duplex/transport";

/** Addresses remembered at most (least recently used forgotten first). */
const MAX_ADDRESSES = 10_000;

/** A token bucket of bytes per address. */
export class ForwardRate {
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #perSecond: number;

  /** @param perSecond Bytes per second one address may forward (a burst of twice as many). */
  constructor(perSecond: number) {
    this.#perSecond = perSecond;
  }

  /** Whether `address` may forward now (it is not in debt). */
  allows(address: string): boolean {
    return this.#bucket(address).has(1);
  }

  /** Charges `address` for `bytes` forwarded, into debt if need be. */
  charge(address: string, bytes: number): void {
    this.#bucket(address).charge(bytes);
  }

  #bucket(address: string): TokenBucket {
    let bucket = this.#buckets.get(address);
    if (bucket === undefined) {
      bucket = new TokenBucket(this.#perSecond, this.#perSecond * 2);
      if (this.#buckets.size >= MAX_ADDRESSES) {
        this.#buckets.delete(this.#buckets.keys().next().value!);
      }
    } else this.#buckets.delete(address);
    // Re-inserted on every use: the map's order is least recently used first.
    this.#buckets.set(address, bucket);
    return bucket;
  }
}
