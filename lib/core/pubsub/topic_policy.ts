/**
 * Topic policies: what a topic has besides delivery (presence with members,
 * history), chosen by name or pattern. The first policy that matches a
 * topic is its policy; a topic no policy matches has none of it.
 *
 * @module
 */

import type { DeltaEncoding } from "@duplex-ws/protocol";
import type { ConflateSettings } from "./conflation.ts";

/** Which topics a policy is for. */
export type TopicMatcher =
  | string
  | RegExp
  | ((topic: string) => boolean);

/** Presence with members on a topic. */
export interface PresencePolicy {
  /**
   * Members listed at most in a snapshot (`presence.state`) and in
   * `presence()`; the count is always exact.
   * @default {100}
   */
  maxMembers?: number;
}

/** History on a topic: how much of its stream is kept. */
export interface HistoryPolicyOptions {
  /**
   * Publishes kept at most.
   * @default {100}
   */
  size?: number;
  /**
   * Milliseconds a publish is kept, and may be replayed, at most.
   * @default {300000}
   */
  ttl?: number;
}

/** The latest value a topic keeps for joiners (Centrifugo's cache mode). */
export interface LatestPolicy {
  /**
   * A field of the published data whose value (a string or number of 1–128
   * characters) names what the value is of: the latest publish per value
   * is kept (a price per symbol, a cursor per user). Without it, the one
   * latest publish.
   */
  key?: string;
  /**
   * Values kept at most; a publish for a new one past it is refused
   * (`INVALID_DATA`).
   * @default {1000}
   */
  maxKeys?: number;
}

/** What a topic has besides delivery. */
export interface TopicPolicy {
  /**
   * An exact topic name, a pattern ending in `*` (`"chat:*"` is every topic
   * starting with `chat:`), a `RegExp`, or a function.
   */
  match: TopicMatcher;
  /**
   * Presence with members: who is in the topic (one entry per presence key,
   * however many connections and nodes it has) with app-chosen metadata,
   * pushed to members as a snapshot on join and diffs after.
   * @default {false}
   */
  presence?: boolean | PresencePolicy;
  /**
   * History: every publish gets a position (`offset`, `epoch`, carried in its
   * `data`, which must be an object), the last publishes are kept, and a
   * member that comes back with its position gets what it missed.
   * @default {false}
   */
  history?: boolean | HistoryPolicyOptions;
  /**
   * Keep the latest publish (or the latest per `key`) in the engine, for as
   * long as the topic is published to (a day after its last publish on
   * Redis), and give it to a joining member in its join result
   * (`JoinResult.latest`) without a long history. Implies history (of 1
   * when none is asked for).
   * @default {false}
   */
  latest?: boolean | LatestPolicy;
  /**
   * Send members that join with `delta: "fossil"` each publish as a Fossil
   * delta from the one before it (`topic.delta`, docs/PROTOCOL.md §10):
   * for a document-like topic where each publish changes a little of a
   * large value. Implies history (of 1 when none is asked for): deltas
   * follow positions.
   * @default {undefined}
   */
  delta?: DeltaEncoding;
  /**
   * Conflation for slow members: a member whose unsent bytes pass half its
   * `maxBufferedAmount` gets, instead of every publish, the latest one per
   * `key` (a field of the data; one latest value without it) every
   * `interval` ms once it has room, marked `"conflated":true` when values
   * were skipped (the typed client then takes the gap in positions as
   * meant), rather than being closed as a slow consumer. At most 1,000 keys
   * are held per member. Not with `delta`.
   * @default {undefined}
   */
  conflate?: boolean | ConflatePolicy;
}

/** How a topic conflates publishes for a slow member. */
export interface ConflatePolicy {
  /** The field of the published data that names what a value is the latest of. */
  key?: string;
  /**
   * Milliseconds between two tries to send what a slow member holds.
   * @default {100}
   */
  interval?: number;
}

/** A policy with its matcher compiled and its defaults filled in. */
export interface ResolvedTopicPolicy {
  /** Whether the topic tracks members. */
  readonly presence: { readonly maxMembers: number } | undefined;
  /** Whether the topic keeps history, and how much. */
  readonly history: { readonly size: number; readonly ttl: number } | undefined;
  /** Whether the topic keeps its latest values, and of what. */
  readonly latest:
    | { readonly key?: string; readonly maxKeys: number }
    | undefined;
  /** Whether members may ask for deltas. */
  readonly delta?: DeltaEncoding;
  /** Whether slow members get the latest values only, and how. */
  readonly conflate?: ConflateSettings;
}

const NONE: ResolvedTopicPolicy = {
  presence: undefined,
  history: undefined,
  latest: undefined,
};

function positive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new RangeError(
      `Cannot create server: a topic policy's ${name} must be an integer >= 1, got ${value}`,
    );
  }
  return value;
}

function conflateSettings(
  conflate: TopicPolicy["conflate"],
  delta: DeltaEncoding | undefined,
): ConflateSettings | undefined {
  if (!conflate) return undefined;
  if (delta) {
    throw new TypeError(
      "Cannot create server: a topic policy cannot have both delta and conflate",
    );
  }
  const { key, interval = 100 } = conflate === true ? {} : conflate;
  return { key, interval: positive("conflate.interval", interval) };
}

function compile(match: TopicMatcher): (topic: string) => boolean {
  if (typeof match === "function") return match;
  if (match instanceof RegExp) return (topic) => match.test(topic);
  if (match.endsWith("*")) {
    const prefix = match.slice(0, -1);
    return (topic) => topic.startsWith(prefix);
  }
  return (topic) => topic === match;
}

/**
 * Compiles a list of policies into a lookup (cached per topic name, bounded).
 *
 * @throws {TypeError} for a policy without a valid `match`.
 *
 * @example
 * ```ts
 * import { topicPolicies } from "./topic_policy.ts";
 * const policyOf = topicPolicies([{ match: "chat:*", presence: true }]);
 * console.assert(policyOf("chat:lobby").presence?.maxMembers === 100);
 * console.assert(policyOf("news").presence === undefined);
 * ```
 */
export function topicPolicies(
  policies: readonly TopicPolicy[],
): (topic: string) => ResolvedTopicPolicy {
  const compiled = policies.map((policy) => {
    const { match, presence, history, latest, delta, conflate } = policy;
    if (
      !(typeof match === "string" || match instanceof RegExp ||
        typeof match === "function")
    ) {
      throw new TypeError(
        "Cannot create server: a topic policy's match must be a string, a RegExp or a function",
      );
    }
    const historyOptions = history === true
      ? {}
      : history || (latest || delta ? { size: 1 } : undefined);
    if (delta !== undefined && delta !== "fossil") {
      throw new TypeError(
        `Cannot create server: a topic policy's delta must be "fossil", got ${
          JSON.stringify(delta)
        }`,
      );
    }
    const latestOptions = latest === true ? {} : latest || undefined;
    const resolved: ResolvedTopicPolicy = {
      presence: presence
        ? {
          maxMembers: positive(
            "presence.maxMembers",
            (presence === true ? {} : presence).maxMembers ?? 100,
          ),
        }
        : undefined,
      history: historyOptions
        ? {
          size: positive("history.size", historyOptions.size ?? 100),
          ttl: positive("history.ttl", historyOptions.ttl ?? 300_000),
        }
        : undefined,
      latest: latestOptions
        ? {
          key: latestOptions.key,
          maxKeys: positive("latest.maxKeys", latestOptions.maxKeys ?? 1000),
        }
        : undefined,
      delta,
      conflate: conflateSettings(conflate, delta),
    };
    return { test: compile(match), resolved };
  });
  const cache = new Map<string, ResolvedTopicPolicy>();
  return (topic) => {
    let policy = cache.get(topic);
    if (policy === undefined) {
      policy = compiled.find((entry) => entry.test(topic))?.resolved ?? NONE;
      if (cache.size >= 10_000) cache.clear();
      cache.set(topic, policy);
    }
    return policy;
  };
}
