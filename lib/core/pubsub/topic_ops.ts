/**
 * What the topic operations ask and answer: a join's options (presence,
 * recovery) and result (position, recovered, replayed), a publish's options
 * and result. Shared by the node's pub/sub, the session and the `Context`.
 *
 * @module
 */

import type { StreamPosition } from "@duplex-ws/protocol";

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
}

/** What a join did. */
export interface JoinResult {
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
