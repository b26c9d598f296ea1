/**
 * The Redis engine, for several processes or machines (Deno Deploy
 * included): the only entry that loads the Redis client (`npm:ioredis`), and
 * only when the engine starts.
 *
 * @example
 * ```ts ignore
 * import { createServer } from "@duplex-ws/duplex";
 * import { RedisBackplane } from "@duplex-ws/redis";
 *
 * const app = createServer({
 *   router,
 *   backplane: new RedisBackplane({ url: "rediss://app:secret@redis.example.com:6380" }),
 * });
 * ```
 *
 * @module
 */

export {
  isRedisUrl,
  RedisBackplane,
  type RedisBackplaneOptions,
} from "./redis_backplane.ts";
export { RedisReplies } from "./redis_replies.ts";
