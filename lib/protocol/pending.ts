/**
 * Requests awaiting replies, by id: the one table both sides keep (the typed
 * client for its requests, the server for `ctx.request`). Ids are numbers
 * counted per connection; a request is settled by its reply, by its timeout
 * (`TIMEOUT`) or when the connection goes (`CONNECTION_LOST`, or whatever
 * the owner says); a reply to an id that is not pending is ignored.
 *
 * @module
 */

import { NoReplyCode } from "./error_code.ts";

/** One request awaiting its reply. */
export interface Pending<Meta> {
  /** Its id. */
  readonly id: number;
  /** Its event, for messages. */
  readonly event: string;
  /** What the owner keeps with it (the client: its text; the server: the reply's schema). */
  readonly meta: Meta;
  /** Settles it with a reply. */
  resolve(value: unknown): void;
  /** Settles it with an error. */
  reject(error: Error): void;
}

interface Entry<Meta> extends Pending<Meta> {
  timer: ReturnType<typeof setTimeout>;
}

/**
 * A connection's requests awaiting replies.
 *
 * @example
 * ```ts
 * import { PendingTable } from "./pending.ts";
 * const table = new PendingTable<undefined>((code, message) => new Error(`${code}: ${message}`));
 * const id = table.nextId();
 * const reply = table.wait(id, "echo", 1000, undefined);
 * table.settle(id)?.resolve("hi");
 * console.assert(await reply === "hi" && table.size === 0);
 * ```
 */
export class PendingTable<Meta> {
  readonly #pending = new Map<number, Entry<Meta>>();
  readonly #error: (code: string, message: string) => Error;
  #next = 1;

  /**
   * Makes an empty table.
   * @param error Makes the error a request is rejected with (the side's own class).
   */
  constructor(error: (code: string, message: string) => Error) {
    this.#error = error;
  }

  /** How many requests await replies. */
  get size(): number {
    return this.#pending.size;
  }

  /** The id of the next request. */
  nextId(): number {
    return this.#next++;
  }

  /**
   * Waits for the reply to request `id`: settles with what
   * {@linkcode settle}'s caller gives it, or rejects with `TIMEOUT` after
   * `timeout` milliseconds.
   */
  wait<T>(id: number, event: string, timeout: number, meta: Meta): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(
          this.#error(
            NoReplyCode.TIMEOUT,
            `No reply to "${event}" within ${timeout} ms`,
          ),
        );
      }, timeout);
      this.#pending.set(id, {
        id,
        event,
        meta,
        resolve: resolve as (value: unknown) => void,
        reject,
        timer,
      });
    });
  }

  /** The request `id`, if it is pending (it stays pending). */
  get(id: number): Pending<Meta> | undefined {
    return this.#pending.get(id);
  }

  /** Every pending request, oldest first. */
  values(): IterableIterator<Pending<Meta>> {
    return this.#pending.values();
  }

  /**
   * Takes the request `id` out of the table, its timer stopped, for the
   * caller to settle; `undefined` when it is not pending (late, or made up).
   */
  settle(id: number): Pending<Meta> | undefined {
    const entry = this.#pending.get(id);
    if (entry === undefined) return undefined;
    this.#pending.delete(id);
    clearTimeout(entry.timer);
    return entry;
  }

  /**
   * Rejects and removes every request `which` selects (default: all) with
   * `code` and the message `why` gives it.
   */
  rejectAll(
    code: string,
    why: (request: Pending<Meta>) => string,
    which: (request: Pending<Meta>) => boolean = () => true,
  ): void {
    for (const entry of [...this.#pending.values()]) {
      if (!which(entry)) continue;
      this.settle(entry.id);
      entry.reject(this.#error(code, why(entry)));
    }
  }
}
