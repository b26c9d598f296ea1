/**
 * Replies to keyed requests in Redis, for every node: a claim is one
 * `SET … NX PX` (so two nodes cannot both run the first), a reply replaces
 * it for the key's time to live. With a secret each stored reply carries
 * its node's signature, and one that does not check (written by anyone
 * else) is never answered: the retry is told to try again.
 *
 * @module
 */

import type { ReplyStore } from "@duplex-ws/duplex/engine";
import type { Commands } from "./redis_connect.ts";
import type { FrameCodec } from "./redis_frames.ts";

/** What a claim holds while the first run goes on. */
const RUNNING = "\u0000running";

/** The Redis commands a reply store needs. */
export interface ReplyCommands {
  set(
    key: string,
    value: string,
    px: "PX",
    ttl: number,
    nx?: "NX",
  ): Promise<string | null>;
  get(key: string): Promise<string | null>;
}

/** Keyed replies in Redis (see the module docs). */
export class RedisReplies implements ReplyStore {
  readonly #commands: () => Commands | undefined;
  readonly #frames: FrameCodec;
  readonly #node: string;
  readonly #prefix: string;

  /**
   * A store over the engine's connection (the engine makes it).
   *
   * @param commands The command client, when connected.
   * @param frames Signs and checks what is stored.
   * @param node This node's id.
   * @param prefix The engine's key prefix.
   */
  constructor(
    commands: () => Commands | undefined,
    frames: FrameCodec,
    node: string,
    prefix: string,
  ) {
    this.#commands = commands;
    this.#frames = frames;
    this.#node = node;
    this.#prefix = prefix;
  }

  /** See `ReplyStore.claim`. */
  async claim(key: string, ttl: number): Promise<string | null | undefined> {
    const redis = this.#ready();
    const name = this.#key(key);
    if (await redis.set(name, RUNNING, "PX", ttl, "NX") === "OK") {
      return undefined;
    }
    const stored = await redis.get(name);
    if (stored === null) return this.claim(key, ttl); // it just expired
    if (stored === RUNNING) return null;
    const reply = this.#frames.decode(`reply:${key}`, stored);
    if (reply === undefined) throw new Error("a stored reply failed its check");
    return reply.body;
  }

  /** See `ReplyStore.hold`. */
  async hold(key: string, ttl: number): Promise<void> {
    await this.#ready().duplexHold(this.#key(key), RUNNING, ttl);
  }

  /** See `ReplyStore.settle`. */
  async settle(key: string, reply: string, ttl: number): Promise<void> {
    const frame = this.#frames.encode(`reply:${key}`, this.#node, reply);
    await this.#ready().set(this.#key(key), frame, "PX", ttl);
  }

  #key(key: string): string {
    // Its own hash tag: on a cluster each key lives on its own slot.
    return `${this.#prefix}:r:{${key}}`;
  }

  #ready(): Commands & ReplyCommands {
    const redis = this.#commands() as (Commands & ReplyCommands) | undefined;
    if (!redis || redis.status !== "ready") {
      throw new Error("Redis is unavailable");
    }
    return redis;
  }
}
