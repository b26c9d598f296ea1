/**
 * The Postgres engine (`@duplex-ws/postgres`): several processes or
 * machines on one Postgres database, Deno Deploy included, with no Redis;
 * and publishes made in the app's own transaction, delivered if and only if
 * it commits.
 *
 * @example
 * ```ts ignore
 * import { createServer } from "@duplex-ws/duplex";
 * import { PostgresBackplane } from "@duplex-ws/postgres";
 *
 * const app = createServer({
 *   router,
 *   backplane: new PostgresBackplane({ url: Deno.env.get("DATABASE_URL")! }),
 *   topics: [{ match: "auction:*", history: true }],
 * });
 * ```
 *
 * @module
 */

export {
  PostgresBackplane,
  type PostgresBackplaneOptions,
} from "./postgres_backplane.ts";
export { isPostgresUrl, POSTGRES_DEFAULTS } from "./postgres_options.ts";
export { PostgresReplies } from "./postgres_replies.ts";
export { channelOf, schemaSql } from "./postgres_schema.ts";
