/**
 * The one place the Redis client is named and its version pinned. Only the
 * Redis engine imports this module, and only with a dynamic `import()` at
 * start, so an app that never uses Redis never loads it.
 *
 * @module
 */

export { Cluster, Redis } from "npm:ioredis@5.9.2";
