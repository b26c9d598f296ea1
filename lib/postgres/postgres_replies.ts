/**
 * Keyed requests' first replies in Postgres, for every node: a retry that
 * reaches another node gets the reply the first run gave.
 *
 * @module
 */

import type { ReplyStore } from "@duplex-ws/duplex/engine";
import type { Sql } from "./_postgres.ts";

/** Keyed replies in the `replies` table. */
export class PostgresReplies implements ReplyStore {
  readonly #sql: () => Sql | undefined;
  readonly #schema: string;

  /**
   * A store over the engine's connections (the engine makes it).
   *
   * @param sql The pool, once started.
   * @param schema The engine's schema.
   */
  constructor(sql: () => Sql | undefined, schema: string) {
    this.#sql = sql;
    this.#schema = schema;
  }

  /** Claims `key` for a first run (see `ReplyStore.claim`). */
  async claim(key: string, ttl: number): Promise<string | null | undefined> {
    const s = this.#schema;
    const [row] = await this.#ready().unsafe(
      `with claimed as (
         insert into "${s}".replies as r (id, reply, until)
           values ($1, null, now() + $2 * interval '1 millisecond')
         on conflict (id) do update set reply = null, until = excluded.until
           where r.until < now()
         returning 1)
       select (select count(*) from claimed) as mine,
              (select reply from "${s}".replies where id = $1) as reply`,
      [key, ttl],
    );
    if (Number(row.mine) === 1) return undefined;
    return row.reply === null ? null : String(row.reply);
  }

  /** Holds a running claim `ttl` ms more (see `ReplyStore.hold`). */
  async hold(key: string, ttl: number): Promise<void> {
    await this.#ready().unsafe(
      `update "${this.#schema}".replies
         set until = now() + $2 * interval '1 millisecond'
       where id = $1 and reply is null`,
      [key, ttl],
    );
  }

  /** Stores the first run's reply, kept `ttl` ms. */
  async settle(key: string, reply: string, ttl: number): Promise<void> {
    await this.#ready().unsafe(
      `update "${this.#schema}".replies
         set reply = $2, until = now() + $3 * interval '1 millisecond'
       where id = $1`,
      [key, reply, ttl],
    );
  }

  #ready(): Sql {
    const sql = this.#sql();
    if (!sql) throw new Error("Postgres engine not started");
    return sql;
  }
}
