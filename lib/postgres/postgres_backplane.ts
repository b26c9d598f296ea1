/**
 * The Postgres engine: several processes or machines (Deno Deploy
 * included) on one Postgres database, with no Redis. `NOTIFY` on one
 * channel carries publishes, presence changes and control messages (a
 * payload past Postgres's 8,000 bytes goes by reference to a row); numbered
 * publishes are stored, numbered and notified by one function call
 * (`append`), so members' order is history's order; tables hold history,
 * idempotency keys, latest values, presence and keyed replies (see
 * `postgres_schema.ts`). A publish with `transaction` runs that call in the
 * app's own transaction: delivered if and only if it commits. Uses
 * postgres.js, loaded only when this engine starts.
 *
 * @module
 */

import {
  type Appended,
  type AppendOptions,
  type Backplane,
  type BackplaneEvents,
  type BackplaneHealth,
  type BackplaneSink,
  type HistoryEntry,
  type HistoryRead,
  type Presence,
  type PresenceDelta,
  type PresenceEntry,
} from "@duplex-ws/duplex/engine";
import type { Sql } from "./_postgres.ts";
import {
  type PostgresBackplaneOptions,
  resolvePostgresOptions,
} from "./postgres_options.ts";
import { PostgresPresence } from "./postgres_presence.ts";
import { PostgresReplies } from "./postgres_replies.ts";
import { appendPublish, readHistory, readLatest } from "./postgres_history.ts";
import { fetchPayload, readNotification } from "./postgres_inbox.ts";
import { channelOf, janitorSql, schemaSql, US } from "./postgres_schema.ts";
import { SerialByKey } from "./serial.ts";

export type { PostgresBackplaneOptions } from "./postgres_options.ts";

/** Seconds the driver waits at most before it connects again. */
const RECONNECT_MAX = 1;

/** Publishes, history and presence across nodes through one Postgres database. */
export class PostgresBackplane implements Backplane {
  /** `postgres`. */
  readonly kind = "postgres";
  /** Publishes can be made in the app's own transaction. */
  readonly transactions = true;
  /** Keyed replies, kept in the database for every node. */
  readonly replies: PostgresReplies;
  readonly #options: ReturnType<typeof resolvePostgresOptions>;
  readonly #node = crypto.randomUUID();
  readonly #presence: PostgresPresence;
  /** A node's publishes to one topic, in call order (the pool would reorder them). */
  readonly #order = new SerialByKey();
  /** Topics with local members: the others' publishes to them are delivered. */
  readonly #topics = new Set<string>();
  readonly #timers: ReturnType<typeof setInterval>[] = [];
  #sql: Sql | undefined;
  #sink: BackplaneSink | undefined;
  #events: BackplaneEvents | undefined;
  #listening = false;
  #failing: string | undefined;
  /** Failures seen (see `close`). */
  #outages = 0;
  #unlisten: (() => Promise<void>) | undefined;

  /** An engine not started yet (`createServer` starts it); see the options. */
  constructor(options: PostgresBackplaneOptions) {
    this.#options = resolvePostgresOptions(options);
    const query = () => this.#sql;
    const { schema } = this.#options;
    this.#presence = new PostgresPresence({
      node: this.#node,
      schema,
      presenceTtl: this.#options.presenceTtl,
      sql: query,
      events: () => this.#events,
    });
    this.replies = new PostgresReplies(query, schema);
  }

  /** This node's id. */
  get node(): string {
    return this.#node;
  }

  /** Connects, creates the schema, listens; resolves at once if the database is down (it retries). */
  async start(sink: BackplaneSink, events?: BackplaneEvents): Promise<void> {
    [this.#sink, this.#events] = [sink, events];
    const { postgres } = await import("./_postgres.ts");
    const { url, max, heartbeatInterval, presenceTtl } = this.#options;
    this.#sql = postgres(url, {
      max,
      onnotice: () => {},
      connect_timeout: 5,
      idle_timeout: 0,
      // Reconnect within a second (the driver's own waits up to 20 s).
      backoff: (retries: number) =>
        Math.min(0.05 * 2 ** retries, RECONNECT_MAX),
    });
    await this.#setUp();
    await this.#presence.beat(); // counted from the start, not a beat later
    this.#every(heartbeatInterval, async () => {
      if (await this.#presence.beat()) this.#failing = undefined;
      else this.#failed("postgres unreachable");
    });
    this.#every(presenceTtl * 2, () => this.#presence.refresh());
    this.#every(60_000, () => this.#janitor());
  }

  /** Delivers the others' publishes to `topic` here. */
  subscribe(topic: string): void {
    this.#topics.add(topic);
  }

  /** Stops delivering them. */
  unsubscribe(topic: string): void {
    this.#topics.delete(topic);
  }

  /** Notifies a push to the other nodes; `false` when the database cannot be reached. */
  async publish(topic: string, text: string): Promise<boolean> {
    try {
      const body = ["t", this.#node, topic, text].join(US);
      await this.#order.run(topic, () => this.#notify(body));
      return true;
    } catch (error) {
      this.#failed(error);
      return false;
    }
  }

  /** Sends a control message to node `to`, or to every other node (`"*"`). */
  async control(to: string, message: string): Promise<void> {
    await this.#notify(["c", this.#node, to, message].join(US));
  }

  /** Numbers, stores and notifies a push in one call (see `append` in the schema). */
  append(
    topic: string,
    head: string,
    options: AppendOptions,
  ): Promise<Appended> {
    const tx = options.transaction as Sql | undefined;
    const [{ schema }, publish] = [this.#options, { topic, head, options }];
    const run = () =>
      appendPublish(tx ?? this.#ready(), schema, this.#node, publish);
    // In a transaction the commit decides the order, and the app the outcome.
    if (tx) return run();
    return this.#order.run(topic, run).then((appended) => {
      this.#failing = undefined;
      return appended;
    }, (error) => {
      this.#failed(error);
      throw error;
    });
  }

  /** Reads a topic's history; a topic without a stream gets one (its epoch holds from the first join). */
  readHistory(
    topic: string,
    since: number | undefined,
    limit: number,
    ttl: number,
  ): Promise<HistoryRead> {
    const query = { topic, since, limit, ttl };
    return readHistory(this.#ready(), this.#options.schema, query);
  }

  /** A `latest` topic's values, oldest first. */
  readLatest(topic: string): Promise<HistoryEntry[]> {
    return readLatest(this.#ready(), this.#options.schema, topic);
  }

  /** Records this node's member count of a topic. */
  setLocalCount(topic: string, count: number): void {
    this.#presence.setLocalCount(topic, count);
  }

  /** The member count over live nodes; during an outage, this node's own. */
  presence(topic: string, localCount: number): Promise<Presence> {
    return this.#presence.presence(topic, localCount);
  }

  /** The nodes alive now (a heartbeat read; this one included). */
  async liveNodes(): Promise<ReadonlySet<string>> {
    await this.#presence.beat();
    return this.#presence.live;
  }

  /** The other nodes' members of `topic` as last read. */
  remoteCount(topic: string): number {
    return this.#presence.remoteCount(topic);
  }

  /** The topics where a node that is gone counted members (for occupancy). */
  topicsOf(node: string): Promise<string[]> {
    return this.#presence.topicsOf(node);
  }

  /** Stores this node's presence changes to a topic and notifies them. */
  sharePresence(topic: string, delta: PresenceDelta): Promise<void> {
    return this.#presence.share(topic, delta);
  }

  /** The other live nodes' presence entries of a topic, by node. */
  loadPresence(
    topic: string,
  ): Promise<Map<string, Record<string, PresenceEntry>>> {
    return this.#presence.load(topic);
  }

  /** Starts telling `events.presence` about a topic. */
  watchPresence(topic: string): void {
    this.#presence.watch(topic, true);
  }

  /** Stops it. */
  unwatchPresence(topic: string): void {
    this.#presence.watch(topic, false);
  }

  /** `degraded` while the listening connection is down or the last query failed. */
  health(): BackplaneHealth {
    if (this.#listening && this.#failing === undefined) return { state: "ok" };
    const detail = this.#failing ?? "postgres not listening";
    return { state: "degraded", detail };
  }

  /** Removes this node's rows, stops listening and closes the connections. */
  async close(): Promise<void> {
    for (const timer of this.#timers) clearInterval(timer);
    this.#timers.length = 0;
    const sql = this.#sql;
    this.#sql = undefined;
    if (!sql) return;
    await this.#presence.remove(sql).catch(() => {});
    await this.#unlisten?.().catch(() => {});
    await sql.end({ timeout: 1 });
    // After an outage the driver may still hold a reconnect timer, which
    // `end` does not clear: let it run out, so none outlives the engine.
    const wait = this.#outages > 0 ? RECONNECT_MAX * 1000 + 50 : 0;
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }

  #ready(): Sql {
    if (!this.#sql) throw new Error("Postgres engine not started");
    return this.#sql;
  }

  async #migrate(): Promise<void> {
    const { schema } = this.#options;
    await this.#ready().begin(async (tx) => {
      // One node at a time: concurrent `create … if not exists` can race.
      await tx.unsafe(`select pg_advisory_xact_lock(hashtext($1))`, [schema]);
      await tx.unsafe(schemaSql(schema));
    });
  }

  /** Creates the schema and listens; retried every second until it can. */
  async #setUp(): Promise<void> {
    const sql = this.#sql;
    if (!sql) return;
    try {
      await this.#migrate();
      const listener = await sql.listen(
        channelOf(this.#options.schema),
        (payload) => void this.#receive(payload),
        () => this.#listened(),
      );
      this.#unlisten = () => listener.unlisten();
    } catch (error) {
      this.#failed(error);
      const timer = setTimeout(() => {
        this.#timers.splice(this.#timers.indexOf(timer), 1);
        void this.#setUp();
      }, 1_000);
      this.#timers.push(timer);
    }
  }

  /** (Re)listening: after an outage, the node writes its presence again and catches up from history. */
  #listened(): void {
    const again = this.#listening || this.#failing !== undefined;
    this.#listening = true;
    this.#failing = undefined;
    if (!again) return;
    this.#presence.refresh();
    this.#events?.resubscribed?.();
    this.#events?.resync();
  }

  #failed(error: unknown): void {
    this.#outages++;
    if (this.#failing === undefined) {
      this.#options.logger?.warn("postgres unavailable", { error });
    }
    this.#failing = error instanceof Error ? error.message : String(error);
  }

  async #notify(body: string): Promise<void> {
    await this.#ready().unsafe(
      `select "${this.#options.schema}".notify($1)`,
      [body],
    );
    this.#failing = undefined;
  }

  /** A notification: a publish, a presence change or a control message. */
  async #receive(payload: string): Promise<void> {
    const message = await readNotification(
      payload,
      (id) => fetchPayload(this.#ready(), this.#options.schema, id),
    );
    if (!message || (message.node === this.#node && !message.own)) return;
    if (message.kind === "control") {
      if (message.to === "*" || message.to === this.#node) {
        this.#events?.control?.(message.message);
      }
    } else if (message.kind === "presence") {
      this.#presence.received(message.topic, message.node, message.delta);
    } else if (this.#topics.has(message.topic)) {
      this.#sink?.(message.topic, message.text, message.position);
    }
  }

  async #janitor(): Promise<void> {
    const { schema, presenceTtl } = this.#options;
    await this.#sql?.unsafe(janitorSql(schema, presenceTtl)).catch(() => {});
  }

  #every(ms: number, run: () => unknown): void {
    this.#timers.push(setInterval(() => void run(), ms));
  }
}
