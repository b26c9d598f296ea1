/**
 * Acting on a running cluster (`server.cluster`): disconnect a subject,
 * subscribe or unsubscribe it to a topic, ask it for a fresh token, list a
 * topic's members, the topics with their counts, and the nodes. Each
 * action is asked of every node of the engine through the control plane
 * (the node of a connection is never looked up in a table) and their
 * answers are summed; each node acts only on its own connections.
 *
 * @module
 */

import {
  assertApplicationClose,
  encodePush,
  TOPIC_JOINED,
  TOPIC_LEFT,
  truncateCloseReason,
} from "@duplex-ws/protocol";
import type { ControlPlane } from "./control.ts";
import type { PubSub } from "./pubsub/pubsub.ts";
import type { Session } from "./session.ts";

/** A node, as `info` tells it. */
export interface NodeInfo {
  /** Its id in the engine. */
  node: string;
  /** Open connections. */
  connections: number;
  /** Topics with local members. */
  topics: number;
  /** Milliseconds since it started. */
  uptime: number;
  /** Resident memory, bytes. */
  memory: number;
  /** Messages received since it started (rates: two readings apart). */
  messagesIn: number;
  /** Messages sent since it started. */
  messagesOut: number;
}

/** One topic and its members on every node. */
export interface TopicCount {
  /** The topic. */
  topic: string;
  /** Its members, summed over the nodes that answered. */
  count: number;
}

/** A member of a topic, as `members` lists it. */
export interface ClusterMember {
  /** The node it is connected to. */
  node: string;
  /** Its connection id. */
  connection: string;
  /** Its subject (none for a guest). */
  subject?: string;
}

/** A page of `topics`. */
export interface TopicPage {
  /** Topics in name order. */
  topics: TopicCount[];
  /** Pass as `after` for the next page; absent on the last. */
  next?: string;
}

/** Options of {@linkcode ClusterApi.disconnect}. */
export interface DisconnectOptions {
  /**
   * The close code: 4500–4999 tells the typed client not to reconnect,
   * 4000–4499 that it may.
   * @default {4500}
   */
  code?: number;
  /** The close reason (at most 123 UTF-8 bytes). @default {"disconnected by the server"} */
  reason?: string;
}

/** What the cluster actions need of the server. */
export interface ClusterParts {
  /** Messages to the other nodes. */
  readonly control: ControlPlane;
  /** The node's pub/sub. */
  readonly pubsub: PubSub;
  /** The node's open sessions. */
  readonly sessions: () => Iterable<Session<unknown, never>>;
  /** Asks a subject's (or every) connection here for a fresh token. */
  readonly reauthenticate: (subject: string) => number;
  /** Messages received and sent here since the start. */
  readonly messages: () => { in: number; out: number };
}

/** Milliseconds the asking node waits for the others. */
const ASK_TIMEOUT = 2_000;
/** Entries one node lists at most in one answer. */
export const MAX_LISTED = 1_000;

/** The cluster-wide actions (see the module docs). */
export class ClusterApi {
  readonly #parts: ClusterParts;
  readonly #started = Date.now();

  /** Registers each action's handler on this node's control plane. */
  constructor(parts: ClusterParts) {
    this.#parts = parts;
    const { control } = parts;
    control.handle("api.disconnect", (p) => this.#disconnect(p as never));
    control.handle("api.subscribe", (p) => this.#subscribe(p as never));
    control.handle("api.unsubscribe", (p) => this.#unsubscribe(p as never));
    control.handle("api.refresh", (p) => this.#refresh(p as never));
    control.handle("api.members", (p) => this.#members(p as never));
    control.handle("api.topics", (p) => this.#topics(p as never));
    control.handle("api.info", () => this.#info());
  }

  /**
   * Closes every connection of `subject` on every node.
   * @throws {RangeError} for a code outside 3000–4999 (or 1000).
   */
  async disconnect(
    subject: string,
    options: DisconnectOptions = {},
  ): Promise<{ closed: number }> {
    const code = options.code ?? 4500;
    const reason = truncateCloseReason(
      options.reason ?? "disconnected by the server",
    );
    assertApplicationClose(code, reason);
    return {
      closed: await this.#sum("api.disconnect", { subject, code, reason }),
    };
  }

  /** Joins every connection of `subject` to `topic` (each is told `topic.joined`). */
  async subscribe(subject: string, topic: string): Promise<{ joined: number }> {
    return { joined: await this.#sum("api.subscribe", { subject, topic }) };
  }

  /** Takes every connection of `subject` out of `topic` (each is told `topic.left`). */
  async unsubscribe(subject: string, topic: string): Promise<{ left: number }> {
    return { left: await this.#sum("api.unsubscribe", { subject, topic }) };
  }

  /** Asks every connection of `subject` for a fresh token now. */
  async refresh(subject: string): Promise<{ asked: number }> {
    return { asked: await this.#sum("api.refresh", { subject }) };
  }

  /** The members of `topic` on every node, with their nodes (at most 1,000 per node). */
  async members(topic: string): Promise<{ members: ClusterMember[] }> {
    const answers = await this.#ask("api.members", { topic });
    return { members: answers.flat() as ClusterMember[] };
  }

  /** Topics with their counts over every node, in name order, `limit` (≤ 1,000) at a time. */
  async topics(
    options: { after?: string; limit?: number } = {},
  ): Promise<TopicPage> {
    const limit = Math.max(1, Math.min(options.limit ?? 100, MAX_LISTED));
    // One more than the page: whether there is a next one.
    const answers = await this.#ask("api.topics", {
      after: options.after,
      limit: limit + 1,
    });
    // Each node's first `limit` names after `after`: the first `limit` of
    // all of them are complete (a node leaving one out has `limit` before it).
    const counts = new Map<string, number>();
    for (const list of answers as [string, number][][]) {
      for (const [topic, count] of list) {
        counts.set(topic, (counts.get(topic) ?? 0) + count);
      }
    }
    const names = [...counts.keys()].sort();
    const page = names.slice(0, limit);
    const topics = page.map((topic) => ({ topic, count: counts.get(topic)! }));
    return names.length > limit ? { topics, next: page.at(-1) } : { topics };
  }

  /** Every node that answered. */
  async info(): Promise<{ nodes: NodeInfo[] }> {
    return { nodes: await this.#ask("api.info", {}) as NodeInfo[] };
  }

  async #ask(kind: string, payload: unknown): Promise<unknown[]> {
    const answers = await this.#parts.control.ask(
      "*",
      kind,
      payload,
      ASK_TIMEOUT,
    );
    return answers.filter((answer) => answer !== undefined && answer !== null);
  }

  async #sum(kind: string, payload: unknown): Promise<number> {
    const answers = await this.#ask(kind, payload);
    return answers.reduce<number>((sum, n) => sum + Number(n || 0), 0);
  }

  /** This node's sessions of `subject`. */
  #of(subject: unknown): Session<unknown, never>[] {
    if (typeof subject !== "string") return [];
    return [...this.#parts.sessions()].filter((session) =>
      session.identity?.subject === subject
    );
  }

  #disconnect(p: { subject: string; code: number; reason: string }): number {
    const sessions = this.#of(p.subject);
    for (const session of sessions) session.close(p.code, p.reason);
    return sessions.length;
  }

  async #subscribe(p: { subject: string; topic: string }): Promise<number> {
    let joined = 0;
    for (const session of this.#of(p.subject)) {
      try {
        const result = await this.#parts.pubsub.join(session, p.topic);
        session.send(
          encodePush(TOPIC_JOINED, {
            topic: p.topic,
            position: result.position,
          }),
        );
        joined++;
      } catch {
        // over its topics, or a bad name: not joined
      }
    }
    return joined;
  }

  #unsubscribe(p: { subject: string; topic: string }): number {
    let left = 0;
    for (const session of this.#of(p.subject)) {
      if (!this.#parts.pubsub.leave(session, p.topic)) continue;
      session.send(encodePush(TOPIC_LEFT, {
        topic: p.topic,
        code: "UNSUBSCRIBED",
        message: "The server took this connection out of the topic",
      }));
      left++;
    }
    return left;
  }

  #refresh(p: { subject: string }): number {
    return typeof p.subject === "string"
      ? this.#parts.reauthenticate(p.subject)
      : 0;
  }

  #members(p: { topic: string }): ClusterMember[] {
    const node = this.#parts.control.node;
    const members: ClusterMember[] = [];
    for (const session of this.#parts.sessions()) {
      if (members.length >= MAX_LISTED) break;
      if (!session.topics.has(p.topic)) continue;
      const subject = session.identity?.subject;
      members.push({ node, connection: session.id, subject });
    }
    return members;
  }

  #topics(p: { after?: string; limit: number }): [string, number][] {
    const limit = Math.min(Number(p.limit) || 100, MAX_LISTED + 1);
    return this.#parts.pubsub.localTopics()
      .filter(([topic]) => typeof p.after !== "string" || topic > p.after)
      .sort(([a], [b]) => a < b ? -1 : 1)
      .slice(0, limit);
  }

  #info(): NodeInfo {
    const sessions = [...this.#parts.sessions()];
    return {
      node: this.#parts.control.node,
      connections: sessions.length,
      topics: this.#parts.pubsub.localTopics().length,
      uptime: Date.now() - this.#started,
      memory: Deno.memoryUsage().rss,
      messagesIn: this.#parts.messages().in,
      messagesOut: this.#parts.messages().out,
    };
  }
}
