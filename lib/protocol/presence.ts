/**
 * The presence pushes of a topic with presence (docs/PROTOCOL.md §3): a
 * snapshot to a connection that joins, then diffs to every member, at most
 * one per topic per presence interval on each node. Members are keyed by
 * their presence key (one entry per user, however many connections and
 * nodes it has) and carry the metadata the app chose. Shared by server and
 * client.
 *
 * @module
 */

/** The event of a presence snapshot. */
export const PRESENCE_STATE = "presence.state";
/** The event of a presence diff. */
export const PRESENCE_DIFF = "presence.diff";

/** Presence key → the member's metadata. */
export type PresenceMembers = Record<string, unknown>;

/** `presence.state`: who is in a topic when the connection joined. */
export interface PresenceState {
  /** The topic. */
  topic: string;
  /** Up to the topic's `maxMembers` members. */
  members: PresenceMembers;
  /** How many members the topic has (exact, whatever the listing cap). */
  count: number;
}

/** `presence.diff`: who joined (or changed metadata) and who left. */
export interface PresenceDiff {
  /** The topic. */
  topic: string;
  /** Members that joined, or whose metadata changed, with their metadata. */
  joins: PresenceMembers;
  /** Members that left, with their last metadata. */
  leaves: PresenceMembers;
  /** How many members the topic has now. */
  count: number;
  /**
   * `true` when more members changed than a diff lists (the topic's
   * `maxMembers`): the lists are a part of the change; `count` is exact.
   */
  truncated?: true;
}

/**
 * Applies a presence push to a member map (in place): a snapshot replaces
 * it, a diff adds its joins and removes its leaves. Idempotent: a join of a
 * member already there updates it, a leave of one not there does nothing.
 *
 * @example
 * ```ts
 * import { applyPresence } from "./presence.ts";
 * const members = new Map<string, unknown>();
 * applyPresence(members, { topic: "t", members: { ann: 1 }, count: 1 });
 * applyPresence(members, { topic: "t", joins: { bob: 2 }, leaves: { ann: 1 }, count: 1 });
 * console.assert([...members.keys()].join() === "bob");
 * ```
 */
export function applyPresence(
  members: Map<string, unknown>,
  push: PresenceState | PresenceDiff,
): void {
  if ("members" in push) {
    members.clear();
    for (const [key, meta] of Object.entries(push.members)) {
      members.set(key, meta);
    }
    return;
  }
  for (const key of Object.keys(push.leaves)) members.delete(key);
  for (const [key, meta] of Object.entries(push.joins)) members.set(key, meta);
}
