/**
 * Topic pub/sub for one node: the topic-name rules, the local hub, the
 * limits, and the backplane that carries publishes and presence to the
 * other nodes.
 *
 * @module
 */

import { EventError } from "../event_error.ts";
import type { Logger } from "../logger.ts";
import { ErrorCode } from "../protocol/error_code.ts";
import {
  type Backplane,
  type BackplaneHealth,
  LocalBackplane,
  nowMicros,
  type Presence,
} from "./backplane.ts";
import { Hub, type Member } from "./hub.ts";
import {
  checkPresence,
  type PresenceEngine,
  PresenceTracker,
} from "./presence.ts";
import type { ResolvedTopicPolicy } from "./topic_policy.ts";

/** The most characters a topic name may have. */
export const MAX_TOPIC_LENGTH = 128;

const TOPIC_PATTERN = /^[A-Za-z0-9_.:\-]+$/;

/** Whether a topic name is valid: 1–128 characters of `A-Z a-z 0-9 _ . : -`. */
export function isValidTopic(topic: unknown): topic is string {
  return typeof topic === "string" && topic.length > 0 &&
    topic.length <= MAX_TOPIC_LENGTH && TOPIC_PATTERN.test(topic);
}

/**
 * Checks a topic name.
 *
 * @throws {EventError} `BAD_TOPIC`, which a handler lets through to the client.
 */
export function assertTopic(topic: unknown): asserts topic is string {
  if (!isValidTopic(topic)) {
    throw new EventError(
      ErrorCode.BAD_TOPIC,
      `Topic must be 1-${MAX_TOPIC_LENGTH} characters of A-Z, a-z, 0-9, _, ., : and -`,
    );
  }
}

/** What a publish did. */
export interface PublishResult {
  /** Local members the message was sent to. */
  local: number;
  /**
   * `sent`: handed to the backplane for the other nodes; `failed`: the
   * backplane was unreachable, so no other node will deliver it; `none`:
   * there are no other nodes (the local engine).
   */
  remote: "sent" | "failed" | "none";
}

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
  /** Where to log backplane failures. */
  logger: Logger;
}

/** What a join asks for besides membership. */
export interface JoinOptions {
  /**
   * For a topic with presence: the presence key (one entry per key, however
   * many connections share it) and the member's metadata (JSON, at most
   * 1 KiB). Joining again with other metadata updates it.
   * @default {{ key: the connection's id, meta: null }}
   */
  presence?: { key?: string; meta?: unknown };
}

/** Topic membership, publishing and presence for one node. */
export class PubSub {
  readonly #hub = new Hub();
  readonly #backplane: Backplane;
  readonly #maxTopics: number;
  readonly #logger: Logger;
  readonly #policyOf: (topic: string) => ResolvedTopicPolicy;
  readonly #presence: PresenceTracker;
  #started: Promise<void> | undefined;

  /** Makes the pub/sub of one node; nothing starts before `start`. */
  constructor(options: PubSubOptions) {
    const { backplane = new LocalBackplane(), maxTopicsPerConnection, logger } =
      options;
    this.#backplane = backplane;
    this.#maxTopics = maxTopicsPerConnection;
    this.#logger = logger;
    this.#policyOf = options.policyOf;
    this.#presence = new PresenceTracker({
      engine: presenceEngine(backplane),
      interval: options.presenceInterval,
      grace: options.presenceGrace,
      deliver: (topic, text) => this.#hub.deliver(topic, text),
      logger,
    });
  }

  /** The engine's kind: `local`, `broadcast-channel` or `redis`. */
  get backplaneKind(): string {
    return this.#backplane.kind;
  }

  /** Starts the backplane once; messages from other nodes reach local members. */
  start(): Promise<void> {
    const presence = this.#presence;
    this.#started ??= this.#backplane.start((topic, text) => {
      if (isValidTopic(topic)) this.#hub.deliver(topic, text);
    }, {
      presence: (topic, node, delta) => presence.receive(topic, node, delta),
      nodeGone: (node) => presence.nodeGone(node),
      resync: () => presence.resync(),
    }).catch((error) => {
      this.#logger.error("backplane failed to start", {
        kind: this.#backplane.kind,
        error,
      });
    });
    return this.#started;
  }

  /**
   * Adds a member to a topic. In a topic with presence, the member's
   * presence key and metadata are tracked, and it gets the snapshot.
   * @returns `false` when it already was a member (its presence metadata is
   * updated then, when given).
   * @throws {EventError} `BAD_TOPIC`, `TOO_MANY_TOPICS`, or `INVALID_DATA`
   * for a bad presence key or metadata.
   */
  join(member: Member, topic: string, options: JoinOptions = {}): boolean {
    assertTopic(topic);
    const presence = this.#policyOf(topic).presence;
    const key = options.presence?.key ?? member.id;
    const meta = options.presence?.meta ?? null;
    if (presence) checkPresence(key, meta);
    const topics = this.#hub.topicsOf(member);
    if (topics.has(topic)) {
      if (presence && options.presence) {
        this.#presence.join(member, topic, key, meta, presence.maxMembers);
      }
      return false;
    }
    if (topics.size >= this.#maxTopics) {
      throw new EventError(
        ErrorCode.TOO_MANY_TOPICS,
        `A connection may be in at most ${this.#maxTopics} topics`,
      );
    }
    this.#hub.join(member, topic);
    const count = this.#hub.count(topic);
    if (count === 1) this.#backplane.subscribe(topic);
    this.#backplane.setLocalCount(topic, count);
    if (presence) {
      this.#presence.join(member, topic, key, meta, presence.maxMembers);
    }
    return true;
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

  /**
   * The members a publish to `topic` reaches now, as best known without
   * waiting: the local ones, plus what the engine last knew of the others.
   */
  memberCount(topic: string): number {
    return this.#hub.count(topic) + (this.#backplane.remoteCount?.(topic) ?? 0);
  }

  /**
   * Sends an encoded message to every member of a topic on every node: the
   * local ones at once, the others through the backplane. The text is sent
   * as it is to each member: encode once, publish once.
   *
   * @param exclude A local member id that must not receive it (the sender).
   * @throws {EventError} `BAD_TOPIC`.
   */
  publish(
    topic: string,
    text: string,
    exclude?: string,
  ): Promise<PublishResult> {
    assertTopic(topic);
    const local = this.#hub.deliver(topic, text, exclude);
    if (this.#backplane.kind === "local") {
      return Promise.resolve({ local, remote: "none" });
    }
    return this.#backplane.publish(topic, text).then(
      (sent): PublishResult => ({ local, remote: sent ? "sent" : "failed" }),
      (): PublishResult => ({ local, remote: "failed" }),
    );
  }

  /**
   * The member count of a topic on every live node; in a topic with
   * presence that this node serves, who the members are too.
   */
  presence(topic: string): Promise<Presence> {
    assertTopic(topic);
    const policy = this.#policyOf(topic).presence;
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
    await this.#started;
    await this.#backplane.close();
  }

  #left(member: Member, topic: string): void {
    this.#presence.leave(member, topic);
    const count = this.#hub.count(topic);
    if (count === 0) this.#backplane.unsubscribe(topic);
    this.#backplane.setLocalCount(topic, count);
  }
}

/** The presence side of an engine; one without it keeps presence to this node. */
function presenceEngine(backplane: Backplane): PresenceEngine {
  return {
    share: (topic, delta) =>
      backplane.sharePresence?.(topic, delta) ?? Promise.resolve(),
    load: (topic) =>
      backplane.loadPresence?.(topic) ?? Promise.resolve(new Map()),
    watch: (topic) => backplane.watchPresence?.(topic),
    unwatch: (topic) => backplane.unwatchPresence?.(topic),
  };
}
