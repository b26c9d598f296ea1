/**
 * Where the replies of keyed requests are kept, so that a request sent
 * again with the same key (a client retrying after a cut) gets the reply of
 * its first run, on whichever node it lands: an engine keeps them for every
 * node (`Backplane.replies`); {@linkcode MemoryReplies} keeps them for one
 * process (the local engine's).
 *
 * @module
 */

import { memoryOf } from "./history.ts";

/** An engine's store of keyed replies. */
export interface ReplyStore {
  /**
   * Claims `key` for a first run, atomically: `undefined` when this call
   * claimed it (run, then {@linkcode settle}); `null` while another run
   * holds it; else the reply stored. A claim lapses after `ttl` ms.
   */
  claim(key: string, ttl: number): Promise<string | null | undefined>;
  /**
   * Extends a running claim of `key` to `ttl` ms from now, and does nothing
   * once it holds a reply: the claiming node holds it while its run goes
   * on, so the claim of a node that died lapses soon. Without it a claim
   * is made for the reply's whole time to live.
   */
  hold?(key: string, ttl: number): Promise<void>;
  /** Stores the reply of the run that claimed `key`, kept `ttl` ms. */
  settle(key: string, reply: string, ttl: number): Promise<void>;
}

/** Replies kept at most by {@linkcode MemoryReplies} (the oldest go first). */
export const MAX_MEMORY_REPLIES = 10_000;

/**
 * Memory {@linkcode MemoryReplies} holds at most (keys and replies, as
 * history counts it); past it the oldest go first. A handler's reply has no
 * size bound of its own, so the count alone would not bound the memory.
 */
export const MAX_MEMORY_REPLY_BYTES = 33_554_432;

/** Keyed replies in this process's memory, bounded in count, memory and time. */
export class MemoryReplies implements ReplyStore {
  /** Key → the reply (`null` while running), until when it is kept, its memory. */
  readonly #entries = new Map<
    string,
    { reply: string | null; until: number; bytes: number }
  >();
  readonly #now: () => number;
  #bytes = 0;

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

  /** The memory they hold. */
  get bytes(): number {
    return this.#bytes;
  }

  /** See {@linkcode ReplyStore.claim}. */
  claim(key: string, ttl: number): Promise<string | null | undefined> {
    const now = this.#now();
    const seen = this.#entries.get(key);
    if (seen && seen.until > now) return Promise.resolve(seen.reply);
    this.#set(key, null, now + ttl);
    return Promise.resolve(undefined);
  }

  /** See {@linkcode ReplyStore.hold}. */
  hold(key: string, ttl: number): Promise<void> {
    const seen = this.#entries.get(key);
    if (seen?.reply === null) seen.until = this.#now() + ttl;
    return Promise.resolve();
  }

  /** See {@linkcode ReplyStore.settle}. */
  settle(key: string, reply: string, ttl: number): Promise<void> {
    this.#set(key, reply, this.#now() + ttl);
    return Promise.resolve();
  }

  #set(key: string, reply: string | null, until: number): void {
    this.#drop(key);
    // The key at two bytes a character, without copying the reply to count it.
    const bytes = key.length * 2 + memoryOf(reply ?? "");
    while (
      this.#entries.size > 0 &&
      (this.#entries.size >= MAX_MEMORY_REPLIES ||
        this.#bytes + bytes > MAX_MEMORY_REPLY_BYTES)
    ) this.#drop(this.#entries.keys().next().value!);
    this.#entries.set(key, { reply, until, bytes });
    this.#bytes += bytes;
  }

  #drop(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry) return;
    this.#entries.delete(key);
    this.#bytes -= entry.bytes;
  }
}
