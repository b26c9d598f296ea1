/**
 * Topic pub/sub for one node: the topic-name rules, the local hub, the
 * limits, and the backplane that carries publishes and presence to the
 * other nodes.
 *
 * @module
 */

import {
  encodePush,
  ErrorCode,
  isValidTopic,
  positionedHead,
} from "@duplex-ws/protocol";
import { EventError } from "../event_error.ts";
import type { Logger } from "../logger.ts";
import {
  type Backplane,
  type BackplaneEvents,
  type BackplaneHealth,
  LocalBackplane,
  nowMicros,
  type Presence,
  presenceEngine,
} from "./backplane.ts";
import { Conflation } from "./conflation.ts";
import { Hub, type Member, type Outgoing } from "./hub.ts";
import { NumberedTopics } from "./numbered.ts";
import type { HistoryOptions, TopicHistory } from "./history_view.ts";
import type {
  JoinOptions,
  JoinResult,
  PublishResult,
  PubSubPublishOptions,
} from "./topic_ops.ts";

export { assertTopic } from "./topic_ops.ts";
export type {
  JoinOptions,
  JoinResult,
  PublishResult,
  PubSubPublishOptions,
} from "./topic_ops.ts";
import { checkPresence, PresenceTracker } from "./presence.ts";
import { assertTopic, latestKeyOf } from "./topic_ops.ts";
import type { ResolvedTopicPolicy } from "./topic_policy.ts";

/** Options of {@linkcode PubSub} (resolved server options). */
export interface PubSubOptions {
  /**
   * The engine that reaches the other nodes.
   * @default {new LocalBackplane()}
   */
  backplane?: Backplane;
  /** Topics one connection may be in at once. */
  maxTopicsPerConnection: number;
  /** What each topic has besides delivery. */
  policyOf: (topic: string) => ResolvedTopicPolicy;
  /** Milliseconds between two presence diffs of one topic. */
  presenceInterval: number;
  /** Milliseconds a presence key stays after its last connection left. */
  presenceGrace: number;
  /** Publishes replayed at most to one joining member. */
  maxReplay: number;
  /** Milliseconds an idempotency key is remembered. */
  publishKeyTtl: number;
  /** Where to log backplane failures. */
  logger: Logger;
  /** Control messages from other nodes (`BackplaneEvents.control`). */
  control?: (message: string) => void;
  /** Occupancy: told when this node's count of a topic goes to or from zero, a node is gone, the engine is back. */
  occupancy?: Pick<BackplaneEvents, "nodeGone" | "resync"> & {
    changed(topic: string): void;
  };
}

/** Topic membership, publishing, presence and history for one node. */
export class PubSub {
  readonly #hub = new Hub();
  readonly #backplane: Backplane;
  readonly #options: PubSubOptions;
  readonly #presence: PresenceTracker;
  readonly #numbered: NumberedTopics;
  readonly #conflation = new Conflation();
  #started: Promise<void> | undefined;

  /**
   * Makes the pub/sub of one node; nothing starts before `start`.
   * @throws {TypeError} when a topic policy asks for history and the engine cannot number publishes.
   */
  constructor(options: PubSubOptions) {
    const { backplane = new LocalBackplane(), logger } = options;
    this.#backplane = backplane;
    this.#options = options;
    this.#presence = new PresenceTracker({
      engine: presenceEngine(backplane),
      interval: options.presenceInterval,
      grace: options.presenceGrace,
      deliver: (topic, text) => this.#hub.deliver(topic, text),
      logger,
    });
    this.#numbered = new NumberedTopics(backplane, this.#hub, {
      ...options,
      outgoing: (topic, text) => this.#outgoing(topic, text),
    });
  }

  /** The engine. */
  get engine(): Backplane {
    return this.#backplane;
  }

  /** The engine's kind: `local`, `broadcast-channel` or `redis`. */
  get backplaneKind(): string {
    return this.#backplane.kind;
  }

  /** Whether the engine can serve topics with history. */
  get numbers(): boolean {
    return typeof this.#backplane.append === "function";
  }

  /** Starts the backplane once; messages from other nodes reach local members. */
  start(): Promise<void> {
    const presence = this.#presence;
    const told = [presence, this.#options.occupancy];
    this.#started ??= this.#backplane.start((topic, text, position) => {
      if (!isValidTopic(topic)) return;
      if (position) this.#numbered.receive(topic, position, text);
      else this.#hub.deliver(topic, this.#outgoing(topic, text));
    }, {
      presence: (topic, node, delta) => presence.receive(topic, node, delta),
      nodeGone: (node) => told.forEach((to) => to?.nodeGone(node)),
      resync: () => told.forEach((to) => to?.resync()),
      resubscribed: () => this.#numbered.catchUp(),
      control: (message) => this.#options.control?.(message),
    }).catch((error) => {
      this.#options.logger.error("backplane failed to start", {
        kind: this.#backplane.kind,
        error,
      });
    });
    return this.#started;
  }

  /**
   * Adds a member to a topic. In a topic with presence, the member's
   * presence key and metadata are tracked, and it gets the snapshot; in a
   * topic with history, it is recovered from `since` (or gets the `last`
   * publishes) before live delivery starts. Membership is immediate; the
   * promise settles once the recovery is done.
   * @throws {EventError} `BAD_TOPIC`, `TOO_MANY_TOPICS`, or `INVALID_DATA`
   * for a bad presence key or metadata, `since` or `last`.
   */
  join(
    member: Member,
    topic: string,
    options: JoinOptions = {},
  ): Promise<JoinResult> {
    assertTopic(topic);
    const policy = this.#options.policyOf(topic);
    const { presence, history } = policy;
    const key = options.presence?.key ?? member.id;
    const meta = options.presence?.meta ?? null;
    if (presence) checkPresence(key, meta);
    const { since, last } = options;
    this.#numbered.checkRecovery(since, last, options.delta);
    const topics = this.#hub.topicsOf(member);
    const joined = !topics.has(topic);
    if (joined && topics.size >= this.#options.maxTopicsPerConnection) {
      throw new EventError(
        ErrorCode.TOO_MANY_TOPICS,
        `A connection may be in at most ${this.#options.maxTopicsPerConnection} topics`,
      );
    }
    if (joined) {
      this.#hub.join(member, topic, history !== undefined);
      const count = this.#hub.count(topic);
      if (count === 1) {
        this.#numbered.subscribing(topic, this.#backplane.subscribe(topic));
        this.#options.occupancy?.changed(topic);
      }
      this.#backplane.setLocalCount(topic, count);
    }
    if (policy.delta) this.#numbered.deltas.follow(member, topic, options);
    if (presence && (joined || options.presence)) {
      this.#presence.join(member, topic, key, meta, presence.maxMembers);
    }
    if (!history) {
      const recovered = since === undefined ? {} : { recovered: false };
      return Promise.resolve({ topic, joined, ...recovered });
    }
    if (!joined && since === undefined && last === undefined) {
      return Promise.resolve({ topic, joined });
    }
    // A member joining again to recover stops getting live publishes until
    // it has what it missed.
    if (!joined) this.#hub.deactivate(member, topic);
    return this.#numbered.recover(member, topic, { since, last }).then(
      async (recovery): Promise<JoinResult> => {
        const result = { topic, joined, ...recovery };
        if (!policy.latest || since !== undefined) return result;
        const latest = await this.#numbered.latest(topic, recovery.position);
        return { ...result, latest };
      },
    );
  }

  /**
   * Removes a member from a topic.
   * @returns `false` when it was not a member (or the name is invalid).
   */
  leave(member: Member, topic: string): boolean {
    if (!isValidTopic(topic) || !this.#hub.leave(member, topic)) return false;
    this.#left(member, topic);
    return true;
  }

  /** Removes a member from every topic; returns the topics it left. */
  leaveAll(member: Member): string[] {
    const topics = this.#hub.leaveAll(member);
    for (const topic of topics) this.#left(member, topic);
    return topics;
  }

  /** The topics a member is in. */
  topicsOf(member: Member): ReadonlySet<string> {
    return this.#hub.topicsOf(member);
  }

  /** Whether `topic` has presence with members (its policy says so). */
  hasPresence(topic: string): boolean {
    return this.#options.policyOf(topic).presence !== undefined;
  }

  /** Every topic with members on this node, with its count here. */
  localTopics(): [string, number][] {
    return this.#hub.counts();
  }

  /**
   * The members a publish to `topic` reaches now, as best known without
   * waiting: the local ones, plus what the engine last knew of the others.
   */
  memberCount(topic: string): number {
    return this.#hub.count(topic) + (this.#backplane.remoteCount?.(topic) ?? 0);
  }

  /**
   * Pushes an event to every member of a topic on every node, encoded once:
   * the local members at once, the others through the backplane; the same
   * text goes to each member. In a topic with history the engine numbers
   * and stores it first, and members get it in offset order; if it cannot
   * be stored, no one gets it (`remote: "failed"`).
   *
   * Rejects with `EventError` `BAD_TOPIC` (or the charge's refusal), and
   * with `TypeError` for `exclude` in a topic with history or data there
   * that is not an object.
   */
  publish(
    topic: string,
    event: string,
    data: unknown,
    options: PubSubPublishOptions = {},
  ): Promise<PublishResult> {
    try {
      assertTopic(topic);
      const numbered = this.#options.policyOf(topic).history !== undefined;
      const text = numbered
        ? positionedHead(event, topic, data)
        : encodePush(event, data);
      options.charge?.(this.memberCount(topic), text.length);
      if (numbered) {
        const latestKey = latestKeyOf(this.#options.policyOf(topic), data);
        return this.#numbered.publish(topic, text, { ...options, latestKey });
      }
      const out = this.#outgoing(topic, text);
      const local = this.#hub.deliver(topic, out, options.exclude);
      if (this.#backplane.kind === "local") {
        return Promise.resolve({ local, remote: "none" });
      }
      return this.#backplane.publish(topic, text).then(
        (sent): PublishResult => ({ local, remote: sent ? "sent" : "failed" }),
        (): PublishResult => ({ local, remote: "failed" }),
      );
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Reads a topic's history from the engine, decoded (see `HistoryOptions`).
   * @throws {EventError} `BAD_TOPIC` for a topic that keeps no history.
   */
  history(topic: string, options: HistoryOptions = {}): Promise<TopicHistory> {
    return this.#numbered.history(topic, options);
  }

  /**
   * The member count of a topic on every live node; in a topic with
   * presence that this node serves, who the members are too.
   */
  presence(topic: string): Promise<Presence> {
    assertTopic(topic);
    const policy = this.#options.policyOf(topic).presence;
    const state = policy && this.#presence.state(topic, policy.maxMembers);
    if (state) {
      return Promise.resolve({
        count: state.count,
        version: nowMicros(),
        members: state.members,
      });
    }
    return this.#backplane.presence(topic, this.#hub.count(topic));
  }

  /** The backplane's health. */
  health(): BackplaneHealth & { kind: string } {
    return { kind: this.#backplane.kind, ...this.#backplane.health() };
  }

  /** Shares what presence has pending, then stops the backplane. */
  async close(): Promise<void> {
    this.#presence.close();
    this.#numbered.close();
    this.#conflation.close();
    await this.#started;
    await this.#backplane.close();
  }

  /** What a live delivery sends: the text, or a choice per member (conflation). */
  #outgoing(topic: string, text: string): Outgoing {
    const conflate = this.#options.policyOf(topic).conflate;
    return conflate ? this.#conflation.outgoing(topic, text, conflate) : text;
  }

  #left(member: Member, topic: string): void {
    this.#conflation.forget(member, topic);
    this.#presence.leave(member, topic);
    this.#numbered.deltas.forget(member, topic);
    const count = this.#hub.count(topic);
    if (count === 0) {
      this.#backplane.unsubscribe(topic);
      this.#numbered.drop(topic);
      this.#options.occupancy?.changed(topic);
    }
    this.#backplane.setLocalCount(topic, count);
  }
}
