/**
 * The Postgres engine's options and their defaults, in one place.
 *
 * @module
 */

import type { Logger } from "@duplex-ws/duplex";

/** Options of `PostgresBackplane`. */
export interface PostgresBackplaneOptions {
  /** Where outages and recoveries are logged. @default {none} */
  logger?: Logger;
  /** The database: `postgres://user:password@host:port/database`. */
  url: string;
  /**
   * The schema the engine's tables and functions live in (created at start
   * if missing): letters, digits and `_`, starting with a letter.
   * @default {"duplex"}
   */
  schema?: string;
  /**
   * Connections in the pool (one more listens).
   * @default {10}
   */
  max?: number;
  /**
   * Milliseconds after its last heartbeat that a node counts as gone (its
   * members stop counting, its presence entries are dropped).
   * @default {15000}
   */
  presenceTtl?: number;
  /**
   * Milliseconds between heartbeats.
   * @default {5000}
   */
  heartbeatInterval?: number;
}

/** The engine's defaults. */
export const POSTGRES_DEFAULTS = {
  schema: "duplex",
  max: 10,
  presenceTtl: 15_000,
  heartbeatInterval: 5_000,
} as const;

/** Whether a URL names a Postgres database. */
export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//.test(url);
}

/**
 * The options with every default filled in.
 * @throws {TypeError} for a URL that is not `postgres://`, a bad schema name or numbers.
 */
export function resolvePostgresOptions(options: PostgresBackplaneOptions) {
  const given = Object.entries(options).filter(([, v]) => v !== undefined);
  const resolved = {
    ...POSTGRES_DEFAULTS,
    ...Object.fromEntries(given) as PostgresBackplaneOptions,
  };
  if (!isPostgresUrl(resolved.url)) {
    throw new TypeError("PostgresBackplane: url must be postgres://…");
  }
  if (!/^[a-z][a-z0-9_]{0,40}$/.test(resolved.schema)) {
    throw new TypeError(
      "PostgresBackplane: schema must be 1-41 lowercase letters, digits or _, starting with a letter",
    );
  }
  for (const name of ["max", "presenceTtl", "heartbeatInterval"] as const) {
    if (!Number.isSafeInteger(resolved[name]) || resolved[name] < 1) {
      throw new TypeError(`PostgresBackplane: ${name} must be an integer >= 1`);
    }
  }
  return resolved;
}
