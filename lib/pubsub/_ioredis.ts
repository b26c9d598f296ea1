/**
 * The one place the Redis client is named and its version pinned. Only the
 * Redis engines import this module, and only with a dynamic `import()` at
 * start, so an app that never uses Redis never loads it.
 *
 * @module
 */

export { Redis } from "npm:ioredis@5.9.2";
export type { RedisOptions } from "npm:ioredis@5.9.2";
