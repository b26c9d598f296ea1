/**
 * Delta pushes (docs/PROTOCOL.md §10): in a topic whose policy has
 * `delta: "fossil"`, a member that joined with `delta: "fossil"` gets each
 * publish after its first as a `topic.delta` push: a Fossil delta from the
 * previous push of the topic it received to this one, over both pushes'
 * text with every character past ASCII written as a JSON `\uXXXX` escape
 * (so the delta is ASCII too and travels as a JSON string):
 *
 * ```json
 * {"event":"topic.delta","topic":"doc:1","data":{"delta":"1Bk\n…;","offset":43,"epoch":"k3j9x"}}
 * ```
 *
 * Applied to the push of offset 42, the delta gives the push of offset 43,
 * byte for byte. A client that cannot apply it (no push 42 kept, a failed
 * checksum) treats it as a gap: it joins again with `since` and gets full
 * pushes. Shared by server and client.
 *
 * @module
 */

import { applyFossilDelta, createFossilDelta } from "./fossil.ts";
import { pushPosition, type StreamPosition } from "./stream.ts";

/** The event of a delta push. */
export const TOPIC_DELTA = "topic.delta";

/** The delta encoding a topic policy and a join may ask for. */
export type DeltaEncoding = "fossil";

/** `topic.delta`'s data. */
export interface TopicDelta extends StreamPosition {
  /** The Fossil delta from the previous push's text (ASCII form) to this one's. */
  delta: string;
}

/**
 * A push's text with every character from U+007F up written as a `\uXXXX`
 * escape: the same JSON value, in ASCII only (such characters can only be
 * inside JSON strings). Deltas are made and applied over this form.
 */
export function asciiJson(text: string): string {
  return text.replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * The `topic.delta` push that turns `base` (the ASCII form of the previous
 * push) into `target` (this push's ASCII form), or `undefined` when the
 * delta push would not be shorter than `target` itself.
 */
export function deltaPush(
  topic: string,
  base: string,
  target: string,
  position: StreamPosition,
): string | undefined {
  const delta = createFossilDelta(base, target);
  const text = JSON.stringify({
    event: TOPIC_DELTA,
    topic,
    data: { delta, offset: position.offset, epoch: position.epoch },
  });
  return text.length < target.length ? text : undefined;
}

/**
 * The push a `topic.delta` stands for, from the kept text (ASCII form) of
 * the push before it; `undefined` when the delta is malformed or its
 * checksum does not match (the base was not the one the server used).
 */
export function applyDeltaPush(
  base: string,
  delta: string,
): string | undefined {
  try {
    return applyFossilDelta(base, delta);
  } catch {
    return undefined;
  }
}

/** A `topic.delta`'s data, if well formed. */
export function topicDelta(data: unknown): TopicDelta | undefined {
  const position = pushPosition(data);
  const delta = (data as { delta?: unknown } | null)?.delta;
  return position && typeof delta === "string"
    ? { delta, ...position }
    : undefined;
}
