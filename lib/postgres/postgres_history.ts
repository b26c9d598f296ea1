/**
 * The Postgres engine's history: a publish appended (the schema's `append`
 * function: numbered, stored and notified in one call), a topic's entries
 * after a position (or its last ones) with its epoch and top, and a
 * `latest` topic's values.
 *
 * @module
 */

import type {
  Appended,
  AppendOptions,
  HistoryEntry,
  HistoryRead,
} from "@duplex-ws/duplex/engine";
import { newEpoch } from "@duplex-ws/duplex/engine";
import { withPosition } from "@duplex-ws/protocol";
import type { Sql } from "./_postgres.ts";

/** What to append. */
export interface AppendQuery {
  /** The topic. */
  topic: string;
  /** The push without its position (`positionedHead`). */
  head: string;
  /** The topic's policy, key, condition and latest value. */
  options: AppendOptions;
}

/**
 * Appends a publish with `sql` (the pool, or the app's transaction: then
 * the notification goes out, and its own node delivers it too, at commit).
 */
export async function appendPublish(
  sql: Sql,
  schema: string,
  node: string,
  { topic, head, options }: AppendQuery,
): Promise<Appended> {
  const { ifPosition, latest } = options;
  const expected = ifPosition === undefined
    ? null
    : ifPosition === null
    ? "empty"
    : `${ifPosition.offset}:${ifPosition.epoch}`;
  const [row] = await sql.unsafe(
    `select * from "${schema}".append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
    [
      topic,
      head,
      options.size,
      options.ttl,
      options.key ?? null,
      options.keyTtl,
      newEpoch(),
      expected,
      latest ? `k${latest.key}` : null,
      latest?.maxKeys ?? 0,
      node,
      options.transaction !== undefined,
    ],
  );
  const { outcome, offset, epoch } = row;
  const position = { offset: Number(offset), epoch: String(epoch ?? "") };
  return {
    ...position,
    text: withPosition(head, position.offset, position.epoch),
    duplicate: outcome === 1,
    conflict: outcome === 2 || undefined,
    full: outcome === 3 || undefined,
  };
}

/** What a history read asks. */
export interface HistoryQuery {
  /** The topic. */
  topic: string;
  /** Entries after this offset; absent: the last ones. */
  since: number | undefined;
  /** Entries at most. */
  limit: number;
  /** Milliseconds an entry is kept (older ones are not read). */
  ttl: number;
}

/**
 * Reads a topic's history. A topic without a stream (or whose stream
 * expired) gets one with a new epoch, kept at least `ttl`, so its epoch
 * holds from the first join.
 */
export async function readHistory(
  sql: Sql,
  schema: string,
  { topic, since, limit, ttl }: HistoryQuery,
): Promise<HistoryRead> {
  const s = `"${schema}"`;
  const [stream] = await sql.unsafe(
    `insert into ${s}.streams as t (topic, epoch, ttl, expires)
       values ($1, $2, $3::bigint, now() + $3::bigint * interval '1 millisecond')
     on conflict (topic) do update set
       epoch = case when t.expires < now() then excluded.epoch else t.epoch end,
       top = case when t.expires < now() then 0 else t.top end,
       expires = greatest(t.expires, excluded.expires)
     returning epoch, top`,
    [topic, newEpoch(), ttl],
  );
  // Entries up to the top just read: the statements that follow see
  // publishes made since, which would leave a hole below them.
  const top = Number(stream.top);
  const young = `topic = $1 and at > now() - $2 * interval '1 millisecond'`;
  const rows = since === undefined
    ? await sql.unsafe(
      `select * from (select "offset", head from ${s}.entries where ${young}
         and "offset" <= $4 order by "offset" desc limit $3) last
       order by "offset"`,
      [topic, ttl, limit, top],
    )
    : await sql.unsafe(
      `select "offset", head from ${s}.entries where ${young} and "offset" > $3
         and "offset" <= $5 order by "offset" limit $4`,
      [topic, ttl, since, limit, top],
    );
  const [{ first }] = await sql.unsafe(
    `select min("offset") as first from ${s}.entries where ${young}`,
    [topic, ttl],
  );
  const epoch = String(stream.epoch);
  return {
    epoch,
    top,
    first: first === null ? undefined : Number(first),
    entries: rows.map((row) => ({
      offset: Number(row.offset),
      text: withPosition(row.head, Number(row.offset), epoch),
    })),
  };
}

/** A `latest` topic's values, oldest first. */
export async function readLatest(
  sql: Sql,
  schema: string,
  topic: string,
): Promise<HistoryEntry[]> {
  const s = `"${schema}"`;
  const rows = await sql.unsafe(
    `select l."offset", l.head, t.epoch from ${s}.latest l
       join ${s}.streams t on t.topic = l.topic
       where l.topic = $1 order by l."offset"`,
    [topic],
  );
  return rows.map((row) => ({
    offset: Number(row.offset),
    text: withPosition(row.head, Number(row.offset), String(row.epoch)),
  }));
}
