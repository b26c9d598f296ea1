/**
 * Work under way, counted per key (a session, a client address) with a cap
 * per key and a cap in all: what bounds the HTTP transport's `POST`s that
 * a server is reading or forwarding at once.
 *
 * @module
 */

/** Places taken now, per key and in all, against two caps. */
export class InFlight {
  readonly #byKey = new Map<string, number>();
  readonly #perKey: number;
  readonly #total: number;
  #taken = 0;

  /** @param perKey Places one key may hold. @param total Places in all. */
  constructor(perKey: number, total = Infinity) {
    this.#perKey = perKey;
    this.#total = total;
  }

  /**
   * Takes a place for `key`: `null` when taken (give it back with
   * {@linkcode release}), else which cap is reached.
   *
   * @example
   * ```ts
   * import { InFlight } from "./in_flight.ts";
   * const posts = new InFlight(1, 2);
   * console.assert(posts.take("a") === null && posts.take("a") === "key");
   * console.assert(posts.take("b") === null && posts.take("c") === "total");
   * ```
   */
  take(key: string): "key" | "total" | null {
    const held = this.#byKey.get(key) ?? 0;
    if (held >= this.#perKey) return "key";
    if (this.#taken >= this.#total) return "total";
    this.#byKey.set(key, held + 1);
    this.#taken++;
    return null;
  }

  /** Gives back a place `key` took. */
  release(key: string): void {
    const held = (this.#byKey.get(key) ?? 1) - 1;
    if (held > 0) this.#byKey.set(key, held);
    else this.#byKey.delete(key);
    this.#taken--;
  }
}
