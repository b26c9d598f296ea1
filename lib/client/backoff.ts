/**
 * Reconnect timing: exponential backoff with jitter between half and all
 * of each step, reset once a connection opens (Phoenix's `timer.js`).
 *
 * @module
 */

/** The delays between attempts of one kind (reconnects, a rejoin's retries). */
export class Backoff {
  readonly #first: number;
  readonly #most: number;
  #attempt = 0;

  /**
   * @param first The first delay in milliseconds; each failure doubles it.
   * @param most The longest delay in milliseconds.
   */
  constructor(first: number, most: number) {
    this.#first = first;
    this.#most = most;
  }

  /** The next delay, counting an attempt. */
  next(): number {
    const step = Math.min(
      this.#most,
      this.#first * 2 ** Math.min(this.#attempt++, 30),
    );
    return step / 2 + Math.random() * (step / 2);
  }

  /** Starts again from the first delay (a connection opened). */
  reset(): void {
    this.#attempt = 0;
  }
}
