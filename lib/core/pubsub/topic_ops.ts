/**
 * What the topic operations ask and answer: a join's options (presence,
 * recovery) and result (position, recovered, replayed), a publish's options
 * and result. Shared by the node's pub/sub, the session and the `Context`.
 *
 * @module
 */

import {
  type DeltaEncoding,
  ErrorCode,
  isValidTopic,
  MAX_TOPIC_LENGTH,
  type StreamPosition,
} from "@duplex-ws/protocol";
import { EventError } from "../event_error.ts";
import type { ResolvedTopicPolicy } from "./topic_policy.ts";
import type { HistoryItem } from "./history_view.ts";

/** What a publish did. */
export interface PublishResult {
  /** Local members the message was (or is being) sent to. */
  local: number;
  /**
   * `sent`: handed to the backplane for the other nodes; `failed`: the
   * backplane was unreachable (for a topic with history: the publish could
   * not be stored, and no one got it); `none`: there are no other nodes
   * (the local engine).
   */
  remote: "sent" | "failed" | "none";
  /** In a topic with history: the publish's position. */
  position?: StreamPosition;
  /** In a topic with history: `true` when its key had been published already (nothing was sent again). */
  duplicate?: boolean;
}

/** What a publish asks besides the push. */
export interface PubSubPublishOptions {
  /** A local member id that must not receive it (the sender); not in a topic with history. */
  exclude?: string;
  /** In a topic with history: an idempotency key (1–128 characters). */
  key?: string;
  /**
   * Whose key it is: the same key from two scopes is two keys, so one
   * client cannot answer another's publish with its own position. A session
   * passes its subject (its connection id for a guest).
   * @default {one scope for the server's own publishes}
   */
  keyScope?: string;
  /**
   * In a topic with history: publish only if the topic's latest position
   * is still this one (`null`: only if it has none yet), checked in the
   * engine's one step; else `PositionConflict`.
   */
  ifPosition?: StreamPosition | null;
  /** An engine transaction to publish in (see `PublishOptions.transaction`). */
  transaction?: unknown;
  /** In a `latest` topic: the key it is the latest value of (`PubSub` sets it). */
  latestKey?: string;
  /**
   * Charged with the members the publish reaches (as best known now) and
   * its size before it goes out; a throw refuses it (a sender's fan-out
   * budget).
   */
  charge?: (members: number, bytes: number) => void;
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
  /**
   * For a topic with history: the last position the member saw. It gets
   * every publish after it, in order, before any newer one, and
   * `recovered: true`; or, when that is impossible (another epoch, history
   * no longer reaches back, more than `maxReplay`), none of them and
   * `recovered: false`. Joining again with `since` recovers again.
   */
  since?: StreamPosition;
  /** For a topic with history, on a first join: the last this many publishes (at most `maxReplay`). */
  last?: number;
  /**
   * `"fossil"`: in a topic whose policy has `delta`, get publishes as
   * deltas (`topic.delta`; the typed client applies them). Elsewhere
   * ignored; a join without it gets full publishes.
   */
  delta?: DeltaEncoding;
}

/** What a join did. */
export interface JoinResult {
  /**
   * In a `latest` topic, on a join without `since`: its latest values
   * (oldest first), each no newer than `position`; what comes after arrives
   * live.
   */
  latest?: HistoryItem[];
  /** The topic. */
  topic: string;
  /** `false` when the connection was a member already. */
  joined: boolean;
  /**
   * In a topic with history: where the member's live stream starts. Every
   * publish after it reaches the member live, in order; the replay, if any,
   * ended here.
   */
  position?: StreamPosition;
  /** With `since`: whether it got every publish it missed (always `false` in a topic without history). */
  recovered?: boolean;
  /**
   * In a topic with history, what was sent from it before the join
   * resolved: publishes, and their size in UTF-16 code units. A
   * connection's replays are charged to its fan-out budget.
   */
  replayed?: { count: number; bytes: number };
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

/**
 * What a publish is the latest value of in a `latest` topic: its `key`
 * field's value (`""` in a topic that keeps one value), or `undefined` in
 * a topic that keeps none.
 * @throws {EventError} `INVALID_DATA` when the field is not a string or number of 1–128 characters.
 */
export function latestKeyOf(
  policy: ResolvedTopicPolicy,
  data: unknown,
): string | undefined {
  const field = policy.latest?.key;
  if (!policy.latest || field === undefined) {
    return policy.latest ? "" : undefined;
  }
  const value = (data as Record<string, unknown> | null)?.[field];
  const key = typeof value === "number" && Number.isFinite(value)
    ? String(value)
    : value;
  if (typeof key !== "string" || key.length === 0 || key.length > 128) {
    throw new EventError(
      ErrorCode.INVALID_DATA,
      `data.${field} must name what the value is of: a string or number of 1-128 characters`,
    );
  }
  return key;
}
