/**
 * The one place the Postgres driver is named and its version pinned:
 * postgres.js, chosen over `pg` by measuring both on Deno (docs/SCALING.md,
 * "Postgres"). Only the Postgres engine imports this module, with a
 * dynamic `import()` at start, so an app that never uses Postgres never
 * loads it.
 *
 * @module
 */

export { default as postgres } from "npm:postgres@3.4.9";
export type { Sql, TransactionSql } from "npm:postgres@3.4.9";
