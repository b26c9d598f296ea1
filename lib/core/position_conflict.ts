/**
 * What a conditional publish throws when the topic has moved on: the app
 * re-reads and decides again. Let it escape a handler and the client gets
 * `CONFLICT` with `{topic, position}` as the error's `data`.
 *
 * @module
 */

import { ErrorCode, type StreamPosition } from "@duplex-ws/protocol";
import { EventError } from "./event_error.ts";

/**
 * A publish with `ifPosition` found another position: nothing was
 * published. `position` is the topic's latest now (`null`: it has none).
 *
 * @example
 * ```ts
 * import { PositionConflict } from "./position_conflict.ts";
 * const conflict = new PositionConflict("bids", { offset: 7, epoch: "e1" });
 * console.assert(conflict.code === "CONFLICT");
 * console.assert((conflict.data as { position: unknown }).position === conflict.position);
 * ```
 */
export class PositionConflict extends EventError {
  /** The topic's latest position now, or `null` when it has no publish. */
  readonly position: StreamPosition | null;
  /** The topic. */
  readonly topic: string;

  /**
   * The refusal for one topic.
   *
   * @param topic The topic published to.
   * @param position Its latest position now.
   */
  constructor(topic: string, position: StreamPosition | null) {
    super(
      ErrorCode.CONFLICT,
      `"${topic}" has moved on: read it again and decide`,
      { data: { topic, position } },
    );
    this.name = "PositionConflict";
    this.topic = topic;
    this.position = position;
  }
}
