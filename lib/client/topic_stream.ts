/**
 * Where the client is in one topic's numbered stream, and the rules that
 * keep what it delivers once and in order: a push is next, a duplicate, or
 * a gap; pushes that arrive while a rejoin is on its way are held, then
 * released in offset order once its reply came.
 *
 * @module
 */

import {
  pushPosition,
  type StreamPosition,
  streamStep,
} from "@duplex-ws/protocol";
import type { RequestError } from "./errors.ts";

/** How joining a topic again went, after a reconnect or a `stream.reset`. */
export interface RejoinEvent {
  /** The joining event, as given to `join`. */
  event: string;
  /** Its data, as given (the client adds `since` to what it sends). */
  data: unknown;
  /** The topic, once a reply named it. */
  topic?: string;
  /**
   * For a topic with history: `true` when every publish missed was
   * replayed, in order, before any newer one; `false` when some may be
   * lost (the stream was reset, history no longer reached back, or the
   * rejoin failed): reload what you show of the topic.
   */
  recovered?: boolean;
  /** Where the topic's live stream starts now. */
  position?: StreamPosition;
  /** Why the rejoin failed, when it did (the client stops rejoining it). */
  error?: RequestError;
}

/** A push as the client reads it. */
export interface Push {
  /** Its event. */
  event: string;
  /** Its data. */
  data: unknown;
  /** The topic of a push from a topic with history. */
  topic?: string;
  /** Values were skipped before it (a conflated topic): a gap is meant. */
  conflated?: true;
}

/** Where the client is in one topic's numbered stream. */
export interface TopicStream {
  /** The last position delivered to the handlers. */
  position?: StreamPosition;
  /** Whether a rejoin with `since` is on its way (pushes are held meanwhile). */
  resuming: boolean;
  /** Pushes held while resuming. */
  held: Push[];
  /** The join that rejoins this topic. */
  joinKey?: string;
  /** Whether the last rejoin got every publish missed. */
  recovered?: boolean;
}

/** What to do with a push of a followed topic. */
export type Step = "deliver" | "hold" | "drop" | "resume";

/**
 * Judges a numbered push against its stream: deliver it (the stream moves
 * on), hold it (a rejoin is on its way), drop it (a duplicate), or resume
 * the topic (a gap or another epoch, when the topic can be rejoined). A
 * gap before a `conflated` push is meant: it is delivered.
 */
export function judge(
  stream: TopicStream,
  position: StreamPosition,
  resumable: boolean,
  conflated = false,
): Step {
  if (stream.resuming) return "hold";
  const step = streamStep(stream.position, position);
  if (step === "duplicate") return "drop";
  const meant = conflated && step === "gap";
  if (step !== "next" && resumable && !meant) return "resume";
  stream.position = position;
  return "deliver";
}

/**
 * Delivers what was held during a rejoin: the replay, and live pushes sent
 * before the server took the rejoin, which the replay repeats. In offset
 * order, each once (`deliver` judges each again); pushes of an older epoch
 * are dropped. With `acceptGaps`, a gap forgets the position (the app was
 * told `recovered: false`) instead of resuming again.
 */
export function release(
  stream: TopicStream,
  epoch: string | undefined,
  acceptGaps: boolean,
  deliver: (push: Push) => void,
): void {
  const held = stream.held.splice(0)
    .map((push) => ({ push, at: pushPosition(push.data)! }))
    .filter(({ at }) => epoch === undefined || at.epoch === epoch)
    .sort((a, b) => a.at.offset - b.at.offset);
  for (const { push, at } of held) {
    if (acceptGaps && streamStep(stream.position, at) === "gap") {
      stream.position = undefined;
    }
    deliver(push);
  }
}

/** A join's data resuming from `since`: without `last`, which was for the first join. */
export function resumeData(data: unknown, since: StreamPosition): unknown {
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return data;
  }
  const { last: _last, ...rest } = data as Record<string, unknown>;
  return { ...rest, since };
}
