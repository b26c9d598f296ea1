/**
 * Where the replies of keyed requests are kept, so that a request sent
 * again with the same key (a client retrying after a cut) gets the reply of
 * its first run, on whichever node it lands: an engine keeps them for every
 * node (`Backplane.replies`); {@linkcode MemoryReplies} keeps them for one
 * process (the local engine's).
 *
 * @module
 */

/** An engine's store of keyed replies. */
export interface ReplyStore {
  /**
   * Claims `key` for a first run, atomically: `undefined` when this call
   * claimed it (run, then {@linkcode settle}); `null` while another run
   * holds it; else the reply stored. A claim lapses after `ttl` ms.
   */
  claim(key: string, ttl: number): Promise<string | null | undefined>;
  /** Stores the reply of the run that claimed `key`, kept `ttl` ms. */
  settle(key: string, reply: string, ttl: number): Promise<void>;
}

/** Replies kept at most by {@linkcode MemoryReplies} (the oldest go first). */
export const MAX_MEMORY_REPLIES = 10_000;

/** Keyed replies in this process's memory, bounded in count and time. */
export class MemoryReplies implements ReplyStore {
  /** Key → the reply (`null` while running) and until when it is kept. */
  readonly #entries = new Map<
    string,
    { reply: string | null; until: number }
  >();
  readonly #now: () => number;

  /**
   * An empty store.
   *
   * @param now A clock in milliseconds.
   */
  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Entries kept now, running ones included. */
  get size(): number {
    return this.#entries.size;
  }

  /** See {@linkcode ReplyStore.claim}. */
  claim(key: string, ttl: number): Promise<string | null | undefined> {
    const now = this.#now();
    const seen = this.#entries.get(key);
    if (seen && seen.until > now) return Promise.resolve(seen.reply);
    this.#set(key, null, now + ttl);
    return Promise.resolve(undefined);
  }

  /** See {@linkcode ReplyStore.settle}. */
  settle(key: string, reply: string, ttl: number): Promise<void> {
    this.#set(key, reply, this.#now() + ttl);
    return Promise.resolve();
  }

  #set(key: string, reply: string | null, until: number): void {
    this.#entries.delete(key);
    if (this.#entries.size >= MAX_MEMORY_REPLIES) {
      this.#entries.delete(this.#entries.keys().next().value!);
    }
    this.#entries.set(key, { reply, until });
  }
}
