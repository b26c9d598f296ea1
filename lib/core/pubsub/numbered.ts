/**
 * The topics with history of one node: each publish is numbered and stored
 * by the engine in one step, delivered here in offset order without a gap
 * (`stream.ts`), and a joining member is recovered from its position.
 * `PubSub` hands every numbered publish and recovery to this.
 *
 * @module
 */

import {
  ErrorCode,
  isStreamPosition,
  type StreamPosition,
} from "@duplex-ws/protocol";
import { EventError } from "../event_error.ts";
import { PositionConflict } from "../position_conflict.ts";
import { DeltaTopics } from "./delta_topics.ts";
import {
  decode,
  type HistoryOptions,
  readHistory,
  type TopicHistory,
} from "./history_view.ts";
import { assertTopic } from "./topic_ops.ts";
import type { Logger } from "../logger.ts";
import type { Backplane } from "./backplane.ts";
import type { HistoryRead } from "./history.ts";
import type { Hub, Member, Outgoing } from "./hub.ts";
import type { PublishResult, PubSubPublishOptions } from "./topic_ops.ts";
import {
  type Recovery,
  type RecoveryRequest,
  StreamTracker,
} from "./stream.ts";
import type { ResolvedTopicPolicy } from "./topic_policy.ts";

/** What numbered topics need of the node's options. */
export interface NumberedOptions {
  /** What each topic has besides delivery. */
  readonly policyOf: (topic: string) => ResolvedTopicPolicy;
  /** Publishes replayed at most to one joining member. */
  readonly maxReplay: number;
  /** Milliseconds an idempotency key is remembered. */
  readonly publishKeyTtl: number;
  /** Where to log. */
  readonly logger: Logger;
  /** What a live delivery of a topic without deltas sends (conflation). */
  readonly outgoing?: (topic: string, text: string) => Outgoing;
}

/** Milliseconds a recovery waits for the engine to confirm a subscription. */
export const SUBSCRIBE_WAIT = 2_000;

/** One node's topics with history. */
export class NumberedTopics {
  readonly #backplane: Backplane;
  readonly #hub: Hub;
  readonly #options: NumberedOptions;
  readonly #streams: StreamTracker;
  /** Topics whose engine subscription is not in effect yet. */
  readonly #subscribing = new Map<string, Promise<void>>();
  /** The members that take deltas, per delta topic. */
  readonly deltas: DeltaTopics = new DeltaTopics();

  /** @param backplane An engine that numbers (`append`, `readHistory`). */
  constructor(backplane: Backplane, hub: Hub, options: NumberedOptions) {
    this.#backplane = backplane;
    this.#hub = hub;
    this.#options = options;
    this.#streams = new StreamTracker({
      read: (topic, since, limit) => this.read(topic, since, limit),
      deliver: (topic, text, position) =>
        hub.deliver(
          topic,
          position ? this.#outgoing(topic, text, position) : text,
        ),
      activate: (member, topic) => hub.activate(member, topic),
      maxReplay: options.maxReplay,
      gapWait: 250,
      logger: options.logger,
    });
  }

  #outgoing(topic: string, text: string, position: StreamPosition): Outgoing {
    const delta = this.deltas.outgoing(topic, text, position);
    return delta !== text
      ? delta
      : this.#options.outgoing?.(topic, text) ?? text;
  }

  /**
   * Numbers, stores and sends a publish (its head, without a position): the
   * engine's one step, then delivery here in order. A publish the engine
   * cannot store is not sent at all (`remote: "failed"`).
   * @throws {TypeError} for `exclude`: every member gets every publish, so positions stay contiguous.
   * @throws {EventError} `INVALID_DATA` for a key that is not 1–128 characters.
   * @throws {PositionConflict} when `ifPosition` no longer holds (nothing was published).
   */
  async publish(
    topic: string,
    head: string,
    options: PubSubPublishOptions,
  ): Promise<PublishResult> {
    if (options.exclude !== undefined) {
      throw new TypeError(
        `Cannot publish to "${topic}" without its sender: in a topic with history every member gets every publish, so positions stay contiguous`,
      );
    }
    const { key, ifPosition, transaction } = options;
    this.#check(options);
    const history = this.#options.policyOf(topic).history!;
    let appended;
    try {
      appended = await this.#backplane.append!(topic, head, {
        ...history,
        key: scopedKey(key, options.keyScope),
        keyTtl: this.#options.publishKeyTtl,
        ifPosition,
        latest: this.#latest(topic, options.latestKey),
        transaction,
      });
    } catch (error) {
      // The app's transaction must fail with it.
      if (transaction !== undefined) throw error;
      this.#options.logger.warn("publish not stored", { topic, error });
      if (ifPosition === undefined) return { local: 0, remote: "failed" };
      // A decision cannot be answered "maybe": say it was not taken.
      throw new EventError(
        ErrorCode.BUSY,
        "The engine is unavailable: nothing was published, try again",
      );
    }
    if (appended.full) {
      throw new EventError(
        ErrorCode.INVALID_DATA,
        `"${topic}" keeps the latest value of at most ${
          this.#latest(topic, "")!.maxKeys
        } keys`,
      );
    }
    if (appended.conflict) {
      const { offset, epoch } = appended;
      throw new PositionConflict(topic, offset > 0 ? { offset, epoch } : null);
    }
    const { offset, epoch, duplicate } = appended;
    // In a transaction it is delivered once committed, as the engine tells.
    if (!duplicate && transaction === undefined) {
      this.#streams.receive(topic, offset, epoch, appended.text);
    }
    return {
      local: this.#hub.count(topic),
      remote: this.#backplane.kind === "local" ? "none" : "sent",
      position: { offset, epoch },
      duplicate,
    };
  }

  /** Refuses a bad key, condition, or a transaction the engine cannot take. */
  #check({ key, ifPosition, transaction }: PubSubPublishOptions): void {
    if (
      key !== undefined &&
      (typeof key !== "string" || key.length === 0 || key.length > 128)
    ) {
      throw new EventError(
        ErrorCode.INVALID_DATA,
        "A publish key must be 1-128 characters",
      );
    }
    if (ifPosition !== undefined && ifPosition !== null) {
      if (!isStreamPosition(ifPosition)) {
        throw new EventError(
          ErrorCode.INVALID_DATA,
          "ifPosition must be a position {offset, epoch}, or null",
        );
      }
    }
    if (transaction !== undefined && !this.#backplane.transactions) {
      throw new TypeError(
        `Cannot publish in a transaction: the ${this.#backplane.kind} engine cannot (Postgres can)`,
      );
    }
  }

  /** What `append` keeps as `topic`'s latest value, if it keeps any. */
  #latest(topic: string, key: string | undefined) {
    const latest = this.#options.policyOf(topic).latest;
    return latest && { key: key ?? "", maxKeys: latest.maxKeys };
  }

  /** A `latest` topic's values no newer than `position`, decoded. */
  async latest(topic: string, position: StreamPosition | undefined) {
    if (!position || !this.#backplane.readLatest) return [];
    const kept = await this.#backplane.readLatest(topic);
    return kept.filter((entry) => entry.offset <= position.offset)
      .map((entry) => decode(entry.text))
      .filter((item) => item.position.epoch === position.epoch);
  }

  /** A numbered publish from another node. */
  receive(topic: string, position: StreamPosition, text: string): void {
    this.#streams.receive(topic, position.offset, position.epoch, text);
  }

  /** Recovers a joining member (a waiting member of the hub) from its position. */
  async recover(
    member: Member,
    topic: string,
    request: RecoveryRequest,
  ): Promise<Recovery> {
    await this.#subscribing.get(topic);
    return this.#streams.recover(member, topic, request);
  }

  /**
   * The engine is subscribing this node to `topic` (its first member):
   * until the engine says the subscription is in effect, a publish could
   * reach neither the node live nor a history read made before it, so a
   * recovery waits for it (at most {@linkcode SUBSCRIBE_WAIT} ms).
   */
  subscribing(topic: string, confirmed: void | Promise<unknown>): void {
    if (!(confirmed instanceof Promise)) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const settled: Promise<void> = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, SUBSCRIBE_WAIT);
      confirmed.then(() => resolve(), () => resolve());
    }).finally(() => {
      clearTimeout(timer);
      if (this.#subscribing.get(topic) === settled) {
        this.#subscribing.delete(topic);
      }
    });
    this.#subscribing.set(topic, settled);
  }

  /**
   * Reads a topic's history from the engine, decoded (see `HistoryOptions`).
   * @throws {EventError} `BAD_TOPIC` for a topic that keeps no history.
   */
  history(topic: string, options: HistoryOptions): Promise<TopicHistory> {
    try {
      assertTopic(topic);
      if (this.#options.policyOf(topic).history === undefined) {
        throw new EventError(
          ErrorCode.BAD_TOPIC,
          `"${topic}" keeps no history`,
        );
      }
      const read = (since: number | undefined, limit: number) =>
        this.read(topic, since, limit);
      return readHistory(read, options, this.#options.maxReplay);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Reads a topic's history from the engine (its entries are wire text). */
  read(
    topic: string,
    since: number | undefined,
    limit: number,
  ): Promise<HistoryRead> {
    const history = this.#options.policyOf(topic).history!;
    return this.#backplane.readHistory!(topic, since, limit, history.ttl);
  }

  /**
   * Checks what a join asks of history.
   * @throws {EventError} `INVALID_DATA` for a `since` that is not a
   * position, a `last` out of range or a `delta` but `"fossil"`.
   */
  checkRecovery(since: unknown, last: unknown, delta?: unknown): void {
    if (delta !== undefined && delta !== "fossil") {
      throw new EventError(ErrorCode.INVALID_DATA, 'delta must be "fossil"');
    }
    if (since !== undefined && !isStreamPosition(since)) {
      throw new EventError(
        ErrorCode.INVALID_DATA,
        "since must be a position: {offset, epoch}",
      );
    }
    const { maxReplay } = this.#options;
    if (
      last !== undefined &&
      (!Number.isSafeInteger(last) || (last as number) < 1 ||
        (last as number) > maxReplay)
    ) {
      throw new EventError(
        ErrorCode.INVALID_DATA,
        `last must be an integer from 1 to ${maxReplay}`,
      );
    }
  }

  /** The engine lost publishes (its subscriptions were down): read what was missed. */
  catchUp(): void {
    void this.#streams.catchUp();
  }

  /** No local member is left in `topic`: stop following it. */
  drop(topic: string): void {
    this.#streams.drop(topic);
  }

  /** Stops every timer. */
  close(): void {
    this.#streams.close();
  }
}

/** A key made distinct per scope (length-prefixed, so no two pairs collide). */
function scopedKey(key: string | undefined, scope: string | undefined) {
  if (key === undefined || scope === undefined) return key;
  return `${scope.length}:${scope}:${key}`;
}
