/**
 * The Postgres engine's presence: each node's member count per topic
 * (`counts`, summed over live nodes), its presence entries (`members`,
 * changed and notified in one transaction, so a change is seen if and only
 * if it is stored) and heartbeats (`nodes`, on the database's clock).
 * Kept in this node's memory too, to write again after an outage.
 *
 * @module
 */

import {
  type BackplaneEvents,
  forgetWrittenLeaves,
  keepOwnEntries,
  nowMicros,
  type OwnEntries,
  parsePresenceDelta,
  type Presence,
  type PresenceDelta,
  type PresenceEntry,
  RemoteCounts,
} from "@duplex-ws/duplex/engine";
import type { Sql } from "./_postgres.ts";
import { US } from "./postgres_schema.ts";

/** What presence needs of its engine. */
export interface PostgresPresenceContext {
  /** This node's id. */
  readonly node: string;
  /** The engine's schema. */
  readonly schema: string;
  /** Milliseconds after its last heartbeat that a node is gone. */
  readonly presenceTtl: number;
  /** The pool, once started. */
  sql(): Sql | undefined;
  /** Where presence changes and node deaths go. */
  events(): BackplaneEvents | undefined;
}

/** One node's presence in Postgres. */
export class PostgresPresence {
  readonly #context: PostgresPresenceContext;
  /** This node's counts; a zero stays until written (after an outage, by `refresh`). */
  readonly #local = new Map<string, number>();
  readonly #remote = new RemoteCounts();
  readonly #entries: OwnEntries = new Map();
  readonly #watched = new Set<string>();
  #live = new Set<string>();
  /** When the last heartbeat was answered (0: never, or not since an outage). */
  #beaten = 0;

  /** @param context The engine's connections and events. */
  constructor(context: PostgresPresenceContext) {
    this.#context = context;
  }

  /** Records this node's count of a topic (0: none). */
  setLocalCount(topic: string, count: number): void {
    this.#local.set(topic, count);
    this.#writeCount(topic, count)
      .then(() => this.#local.get(topic) === 0 && this.#local.delete(topic))
      .catch(() => {});
  }

  /** The sum over live nodes; during an outage, this node's own count. */
  async presence(topic: string, localCount: number): Promise<Presence> {
    const sql = this.#context.sql();
    if (sql) {
      try {
        const [counts, nodes] = [this.#table("counts"), this.#table("nodes")];
        const [row] = await sql.unsafe(
          `select coalesce(sum(c.count), 0) as count from ${counts} c
             join ${nodes} n on n.node = c.node
           where c.topic = $1 and n.beat > now() - $2 * interval '1 millisecond'`,
          [topic, this.#context.presenceTtl],
        );
        const count = Number(row.count);
        this.#remote.set(topic, Math.max(0, count - localCount));
        return { count, version: nowMicros() };
      } catch {
        // fall through to the local view
      }
    }
    return { count: localCount, version: nowMicros() };
  }

  /** The other nodes' members of a topic, as last read (refreshed in the background past a second). */
  remoteCount(topic: string): number {
    return this.#remote.get(topic, () => {
      this.presence(topic, this.#local.get(topic) ?? 0).catch(() => {});
    });
  }

  /** Stores this node's presence changes to a topic and notifies them, in one transaction. */
  async share(topic: string, delta: PresenceDelta): Promise<void> {
    keepOwnEntries(this.#entries, topic, delta);
    await this.#share(topic, delta);
  }

  /** The other live nodes' entries of a topic, by node; rejects when not started. */
  async load(
    topic: string,
  ): Promise<Map<string, Record<string, PresenceEntry>>> {
    const loaded = new Map<string, Record<string, PresenceEntry>>();
    const rows = await this.#context.sql()?.unsafe(
      `select m.node, m.key, m.entry from ${this.#table("members")} m
         join ${this.#table("nodes")} n on n.node = m.node
       where m.topic = $1 and m.node <> $2
         and n.beat > now() - $3 * interval '1 millisecond'`,
      [topic, this.#context.node, this.#context.presenceTtl],
    );
    if (!rows) throw new Error("Postgres engine not started");
    for (const row of rows) {
      const key = String(row.key);
      const json = `{${JSON.stringify(key)}:${row.entry}}`;
      const entry = parsePresenceDelta(json)?.[key];
      if (!entry) continue;
      let entries = loaded.get(row.node);
      if (!entries) loaded.set(row.node, entries = Object.create(null));
      entries![key] = entry;
    }
    return loaded;
  }

  /** Starts (or stops) telling the node about a topic's changes. */
  watch(topic: string, on: boolean): void {
    this.#watched[on ? "add" : "delete"](topic);
  }

  /** Another node's presence change, as notified. */
  received(topic: string, node: string, body: string): void {
    if (!this.#watched.has(topic)) return;
    const delta = parsePresenceDelta(body);
    if (delta) this.#context.events()?.presence(topic, node, delta);
  }

  /** Heartbeat: the live nodes now; those that fell silent since are gone. `false` when it failed. */
  async beat(): Promise<boolean> {
    const sql = this.#context.sql();
    if (!sql) return false;
    try {
      const { node, presenceTtl } = this.#context;
      const nodes = this.#table("nodes");
      const rows = await sql.unsafe(
        `with beat as (insert into ${nodes} (node, beat) values ($1, now())
           on conflict (node) do update set beat = now())
         select $1::text as node, true as live union select node,
           beat > now() - $2 * interval '1 millisecond' from ${nodes}`,
        [node, presenceTtl],
      );
      const now = new Set<string>();
      for (const row of rows) if (row.live) now.add(String(row.node));
      // A first beat (at start, after an outage) names the nodes that died.
      const dead = this.#beaten ? [] : rows.map((row) => String(row.node));
      for (const gone of new Set([...this.#live, ...dead])) {
        if (!now.has(gone)) this.#context.events()?.nodeGone(gone);
      }
      this.#live = now;
      // Silent past the TTL (a stall): the others dropped its presence.
      const [last, at] = [this.#beaten, this.#beaten = Date.now()];
      if (last > 0 && at - last > presenceTtl) {
        this.#context.events()?.resync();
        this.refresh();
      }
      return true;
    } catch (error) {
      // The server lost (not a stall, nor a refusal): the node resyncs once
      // it listens again, and its next beat counts as a first one.
      if (connectionLost(error)) this.#beaten = 0;
      return false;
    }
  }

  /** The nodes alive at the last heartbeat (this one included). */
  get live(): ReadonlySet<string> {
    return this.#live;
  }

  /** Writes this node's counts and entries again (after an outage, and now and then). */
  refresh(): void {
    void this.beat();
    for (const [topic, count] of this.#local) this.setLocalCount(topic, count);
    for (const [topic, entries] of this.#entries) {
      this.#share(topic, Object.fromEntries(entries)).catch(() => {});
    }
  }

  /** The topics where `node` counted members (its rows stay until the janitor's sweep). */
  async topicsOf(node: string): Promise<string[]> {
    const rows = await this.#context.sql()?.unsafe(
      `select topic from ${this.#table("counts")} where node = $1`,
      [node],
    );
    if (!rows) throw new Error("Postgres engine not started");
    return rows.map((row) => String(row.topic));
  }

  /**
   * Removes this node's entries and dates its heartbeat a TTL back (the
   * engine is closing): its row and counts stay, for the others (or the
   * next node to start) to decide its topics, until the janitor's sweep.
   */
  async remove(sql: Sql): Promise<void> {
    const { node, presenceTtl } = this.#context;
    await sql.unsafe(
      `with gone as (delete from ${this.#table("members")} where node = $1)
       update ${this.#table("nodes")}
         set beat = now() - $2 * interval '1 millisecond' where node = $1`,
      [node, presenceTtl + 1],
    );
  }

  #table(name: string): string {
    return `"${this.#context.schema}".${name}`;
  }

  async #writeCount(topic: string, count: number): Promise<void> {
    const counts = this.#table("counts");
    await this.#context.sql()?.unsafe(
      count === 0
        ? `delete from ${counts} where topic = $1 and node = $2 and $3::int = 0`
        : `insert into ${counts} (topic, node, count) values ($1, $2, $3)
           on conflict (topic, node) do update set count = excluded.count`,
      [topic, this.#context.node, count],
    );
  }

  async #share(topic: string, delta: PresenceDelta): Promise<void> {
    const sql = this.#context.sql();
    if (!sql) return;
    const { node, schema } = this.#context;
    const gone = Object.keys(delta).filter((key) => delta[key] === null);
    const kept = Object.entries(delta).filter(([, entry]) => entry !== null);
    await sql.begin(async (tx) => {
      if (gone.length > 0) {
        await tx.unsafe(
          `delete from ${this.#table("members")}
           where topic = $1 and node = $2 and key = any($3)`,
          [topic, node, gone],
        );
      }
      for (const [key, entry] of kept) {
        await tx.unsafe(
          `insert into ${this.#table("members")} (topic, node, key, entry)
             values ($1, $2, $3, $4)
           on conflict (topic, node, key) do update set entry = excluded.entry`,
          [topic, node, key, JSON.stringify(entry)],
        );
      }
      const body = ["p", node, topic, JSON.stringify(delta)].join(US);
      await tx.unsafe(`select "${schema}".notify($1)`, [body]);
    });
    forgetWrittenLeaves(this.#entries, topic, delta);
  }
}

/**
 * Whether a query failed for want of a server: the driver's own codes
 * (`CONNECTION_CLOSED`, `ECONNREFUSED`…), or SQLSTATE classes 08
 * (connection) and 57P (the server shutting down), not an error of a
 * server that answers.
 */
function connectionLost(error: unknown): boolean {
  const code = String((error as { code?: unknown })?.code ?? "");
  return !/^[0-9A-Z]{5}$/.test(code) || /^(08|57P)/.test(code);
}
