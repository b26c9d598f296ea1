/**
 * How often one address may try to log in: a fixed window per address
 * (10 tries a minute), over at most 10,000 addresses (the oldest forgotten
 * first), so guessing passwords is slow and the table cannot grow without
 * bound.
 *
 * @module
 */

/** Tries per address per window. */
export const LOGIN_TRIES = 10;
/** The window, in milliseconds. */
export const LOGIN_WINDOW = 60_000;
const MAX_ADDRESSES = 10_000;

/** Per-address login tries. */
export class LoginLimit {
  /** Address → the window's start and the tries in it, oldest first. */
  readonly #tries = new Map<string, { start: number; count: number }>();

  /**
   * Counts a try from `address`: `0` when allowed, else the seconds until
   * the next one is.
   */
  take(address: string, now = Date.now()): number {
    let entry = this.#tries.get(address);
    if (!entry || now - entry.start >= LOGIN_WINDOW) {
      this.#tries.delete(address);
      if (this.#tries.size >= MAX_ADDRESSES) {
        this.#tries.delete(this.#tries.keys().next().value!);
      }
      entry = { start: now, count: 0 };
      this.#tries.set(address, entry);
    }
    if (entry.count >= LOGIN_TRIES) {
      return Math.ceil((entry.start + LOGIN_WINDOW - now) / 1000);
    }
    entry.count++;
    return 0;
  }
}
