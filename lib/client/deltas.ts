/**
 * Delta pushes on the client's side (docs/PROTOCOL.md §10): the last push
 * of each numbered topic the client follows is kept (one text per topic),
 * so that a `topic.delta` for the next offset can be turned back into the
 * full push, byte for byte, before anything else sees it.
 *
 * @module
 */

import {
  applyDeltaPush,
  asciiJson,
  parseServerMessage,
  pushPosition,
  type StreamPosition,
  TOPIC_DELTA,
  topicDelta,
} from "@duplex-ws/protocol";
import type { Push } from "./topic_stream.ts";

/** A topic's last push: its position and text. */
interface Kept extends StreamPosition {
  text: string;
}

/** The last push of each followed topic, and delta pushes turned into full ones. */
export class DeltaBases {
  readonly #kept = new Map<string, Kept>();

  /**
   * The push as the app should see it: a `topic.delta` applied to the
   * topic's last push, anything else as it came (a numbered push is kept).
   * @returns `undefined` for a delta that cannot be applied (no such base,
   * a failed checksum): a gap, which the caller recovers with `since`.
   */
  expand(push: Push, text: string): Push | undefined {
    const topic = push.topic;
    if (topic === undefined) return push;
    if (push.event !== TOPIC_DELTA) {
      const at = pushPosition(push.data);
      const kept = this.#kept.get(topic);
      if (
        at && (!kept || kept.epoch !== at.epoch || kept.offset < at.offset)
      ) this.#kept.set(topic, { ...at, text });
      return push;
    }
    const delta = topicDelta(push.data);
    const base = this.#kept.get(topic);
    if (
      !delta || !base || base.epoch !== delta.epoch ||
      base.offset !== delta.offset - 1
    ) return undefined;
    const full = applyDeltaPush(asciiJson(base.text), delta.delta);
    const parsed = full === undefined ? undefined : parseServerMessage(full);
    if (parsed?.kind !== "push" || parsed.topic !== topic) return undefined;
    const { offset, epoch } = delta;
    this.#kept.set(topic, { offset, epoch, text: full! });
    return parsed;
  }

  /** The client no longer follows a topic. */
  forget(topic: string): void {
    this.#kept.delete(topic);
  }
}
