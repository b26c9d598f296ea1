/**
 * For engine authors: the `Backplane` interface every engine implements
 * (how one node hands publishes, presence and history to the others), the
 * types it speaks, and the helpers the built-in engines share.
 *
 * @module
 */

export {
  type Backplane,
  type BackplaneEvents,
  type BackplaneHealth,
  type BackplaneSink,
  nowMicros,
  type Presence,
} from "../pubsub/backplane.ts";
export {
  type Appended,
  type AppendOptions,
  type HistoryEntry,
  type HistoryPolicy,
  type HistoryRead,
  newEpoch,
} from "../pubsub/history.ts";
export type { PresenceDelta, PresenceEntry } from "../pubsub/presence.ts";
export {
  MAX_PRESENCE_KEY_LENGTH,
  MAX_PRESENCE_META_BYTES,
} from "../pubsub/presence.ts";
export { MemoryReplies, type ReplyStore } from "../pubsub/reply_store.ts";
export { parsePresenceDelta } from "../pubsub/presence_delta.ts";
export {
  forgetWrittenLeaves,
  keepOwnEntries,
  type OwnEntries,
  RemoteCounts,
} from "../pubsub/engine_presence.ts";
