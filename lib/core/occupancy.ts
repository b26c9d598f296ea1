/**
 * Occupancy: telling the app when a topic becomes occupied (its first
 * member on any node) and vacated (its last one gone), once per transition
 * across the cluster. When a node's count of a topic changes to or from
 * zero, it reads the topic's member count over every node and the state
 * last decided (the one entry of the internal topic `_occ.<topic>`), and
 * if they differ publishes the new state conditionally (`ifPosition`): of
 * the nodes that decide at once, exactly one wins, and only the winner
 * tells the app (and the webhook, signed, retried a few times). A decision
 * is checked again a second later, so a race between a leave and a join on
 * two nodes ends in the true state; one the engine could not take (an
 * outage) is tried again every few seconds until it can.
 *
 * @module
 */

import { PositionConflict } from "./position_conflict.ts";
import { type LogFields, type Logger, throttle } from "./logger.ts";
import type { PubSub } from "./pubsub/pubsub.ts";
import type { ResolvedTopicPolicy } from "./pubsub/topic_policy.ts";

/** The `occupancy` option of `createServer`. */
export interface OccupancyOptions {
  /** A topic got its first member on any node. */
  onOccupied?: (topic: string) => unknown;
  /** A topic's last member on every node left. */
  onVacated?: (topic: string) => unknown;
  /**
   * Also `POST` `{topic, occupied, at}` here, signed with `secret`
   * (`X-Duplex-Signature: sha256=<hex HMAC of the body>`), retried up to
   * `retries` times (default 3) with backoff.
   */
  webhook?: { url: string; secret: string; retries?: number };
}

/** The prefix of the topics that keep each topic's decided state. */
export const OCCUPANCY_PREFIX = "_occ.";
/** Webhook calls waiting at most; past it they are dropped and logged. */
const MAX_QUEUED = 1_000;
/** Milliseconds before a decision the engine could not take is tried again. */
const RETRY_AFTER = 3_000;
/** Milliseconds between a decision and its second look. */
const SECOND_LOOK = 1_000;

/** One node's part in deciding occupancy (see the module docs). */
export class Occupancy {
  readonly #options: OccupancyOptions;
  readonly #pubsub: () => PubSub;
  readonly #logger: Logger;
  /** Undecided topics, at most 20 lines a second: an outage leaves many. */
  readonly #undecided: (message: string, fields: LogFields) => void;
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>();
  #queued = 0;
  #closed = false;

  /**
   * @param options The hooks and webhook.
   * @param pubsub The node's pub/sub (once made).
   * @param logger Where failures go.
   */
  constructor(
    options: OccupancyOptions,
    pubsub: () => PubSub,
    logger: Logger,
  ) {
    this.#options = options;
    this.#pubsub = pubsub;
    this.#logger = logger;
    this.#undecided = throttle((m, fields) => logger.warn(m, fields), 20);
  }

  /**
   * A topic's count here went to or from zero: decide soon (`later` ms
   * more), and again a second later.
   */
  changed(topic: string, later = 0): void {
    if (this.#closed || topic.startsWith("_")) return;
    if (OCCUPANCY_PREFIX.length + topic.length > 128) return;
    this.#look(topic, 20 + later, true);
  }

  /**
   * A node is gone (died, cut off, or shut down): the topics it counted
   * members in are decided again, as their last member may have been there
   * (engines that can tell them, `Backplane.topicsOf`), a thousand a
   * second. Asked again every few seconds while the engine cannot answer.
   */
  nodeGone(node: string, after = 0): void {
    const engine = this.#pubsub().engine;
    if (this.#closed || !engine.topicsOf) return;
    const key = `_gone.${node}`; // never a topic here: `changed` skips "_" ones
    clearTimeout(this.#timers.get(key));
    this.#timers.set(
      key,
      setTimeout(async () => {
        this.#timers.delete(key);
        try {
          const topics = await engine.topicsOf!(node);
          // A thousand a second: a node with many topics is no burst.
          topics.forEach((topic, i) => this.changed(topic, i));
        } catch (error) {
          this.#undecided("occupancy not decided yet", { node, error });
          this.nodeGone(node, RETRY_AFTER);
        }
      }, after),
    );
  }

  /**
   * The engine is back after an outage: this node's topics with members are
   * decided again, a thousand a second, as other nodes may have taken it for
   * gone meanwhile.
   */
  resync(): void {
    const topics = this.#pubsub().localTopics();
    topics.forEach(([topic], i) => this.changed(topic, i)); // 1,000 a second
  }

  /**
   * Decides `topic` in `after` ms; a second look follows a second later
   * (`again`), and a look the engine could not take is tried again every
   * few seconds until it can.
   */
  #look(topic: string, after: number, again: boolean): void {
    clearTimeout(this.#timers.get(topic));
    this.#timers.set(
      topic,
      setTimeout(async () => {
        this.#timers.delete(topic);
        const decided = await this.#decide(topic);
        if (this.#closed) return;
        if (again) this.#look(topic, SECOND_LOOK, false);
        else if (!decided) this.#look(topic, RETRY_AFTER, false);
      }, after),
    );
  }

  /**
   * The node is stopping with its members gone: decides the topics their
   * leaves changed (none stays occupied by a node that is no more), waiting
   * for each hook and its webhook's first try, then stops. It looks a second
   * after the drain, as the second look does: members that reconnect to
   * another node (a client's first retry is within 250 ms) keep their
   * topics occupied, so a rolling deploy does not flap them.
   */
  async settle(): Promise<void> {
    const topics = [...this.#timers.keys()].filter((t) => t[0] !== "_");
    this.close();
    if (topics.length === 0) return;
    await new Promise((resolve) => setTimeout(resolve, SECOND_LOOK));
    await Promise.all(topics.map((topic) => this.#decide(topic, true)));
  }

  /** Stops deciding. */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  /** Decides a topic's state (`final`: even though stopping): `false` when the engine could not be asked. */
  async #decide(topic: string, final = false): Promise<boolean> {
    const pubsub = this.#pubsub();
    const state = `${OCCUPANCY_PREFIX}${topic}`;
    try {
      const deciding = () => final || !this.#closed;
      for (let attempt = 0; attempt < 5 && deciding(); attempt++) {
        const { count } = await pubsub.presence(topic);
        const occupied = count > 0;
        const { entries, position } = await pubsub.history(state, { last: 1 });
        const last = entries.at(-1)?.data as { occupied?: boolean } | undefined;
        if ((last?.occupied ?? false) === occupied) return true;
        try {
          await pubsub.publish(state, "occupancy", { occupied }, {
            ifPosition: position,
          });
        } catch (error) {
          if (error instanceof PositionConflict) continue; // another node decided
          throw error;
        }
        await this.#tell(topic, occupied, final);
        return true;
      }
    } catch (error) {
      this.#undecided("occupancy not decided yet", { topic, error });
      return false;
    }
    return true;
  }

  /** Calls the hook, and sends the webhook (waited for when `final`). */
  async #tell(topic: string, occupied: boolean, final: boolean): Promise<void> {
    const hook = occupied ? this.#options.onOccupied : this.#options.onVacated;
    try {
      await hook?.(topic);
    } catch (error) {
      this.#logger.error("occupancy hook failed", { topic, error });
    }
    const { webhook } = this.#options;
    if (!webhook) return;
    if (this.#queued >= MAX_QUEUED) {
      return this.#logger.warn("occupancy webhook dropped", { topic });
    }
    this.#queued++;
    const body = JSON.stringify({ topic, occupied, at: Date.now() });
    const sent = sendSigned(webhook, body, this.#logger, () => this.#closed)
      .finally(() => this.#queued--);
    if (final) await sent;
  }
}

/** Internal occupancy topics keep their one decided state for a day. */
export function withOccupancyTopics(
  policyOf: (topic: string) => ResolvedTopicPolicy,
): (topic: string) => ResolvedTopicPolicy {
  const policy: ResolvedTopicPolicy = {
    presence: undefined,
    history: { size: 1, ttl: 86_400_000 },
    latest: undefined,
  };
  return (topic) =>
    topic.startsWith(OCCUPANCY_PREFIX) ? policy : policyOf(topic);
}

/** The body's HMAC-SHA256 with `secret`, in hex. */
async function sign(secret: string, body: string): Promise<string> {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(body));
  return [...new Uint8Array(mac)]
    .map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** POSTs a signed body, retried with backoff (250 ms doubling) up to `retries` times. */
async function sendSigned(
  webhook: NonNullable<OccupancyOptions["webhook"]>,
  body: string,
  logger: Logger,
  closed: () => boolean,
): Promise<void> {
  const signature = `sha256=${await sign(webhook.secret, body)}`;
  const retries = webhook.retries ?? 3;
  for (let attempt = 0; attempt <= retries; attempt++) {
    try {
      const ok = await fetch(webhook.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "x-duplex-signature": signature,
        },
        body,
        signal: AbortSignal.timeout(5_000),
      }).then(async (response) => {
        await response.body?.cancel();
        return response.ok;
      });
      if (ok) return;
    } catch {
      // refused or timed out: try again
    }
    if (closed()) break; // a stopping node's last decisions are tried once
    await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
  }
  logger.warn("occupancy webhook failed", { url: webhook.url });
}
