/**
 * Stream positions (docs/PROTOCOL.md §3): a topic with history numbers its
 * publishes. A push from such a topic names its topic on the envelope and
 * carries its position as the `offset` and `epoch` fields of its `data`:
 *
 * ```json
 * {"event":"chat.message","topic":"lobby","data":{"text":"hi","offset":42,"epoch":"k3j9x"}}
 * ```
 *
 * `offset` counts up by exactly one per publish to the topic, so a gap shows;
 * `epoch` names the stream's incarnation and changes when the stream was
 * lost or reset, after which offsets start again. Shared by server and
 * client.
 *
 * @module
 */

/** Where a topic's stream is: the last offset and the epoch it belongs to. */
export interface StreamPosition {
  /** The publish's number in its stream, from 1. */
  offset: number;
  /** The stream's incarnation. */
  epoch: string;
}

/**
 * The push a server sends a member whose stream of a topic it cannot keep
 * continuous (history no longer reaches back, the stream was reset): the
 * member should join again with its last position, and reload if that
 * answers `recovered: false`. The typed client does it by itself.
 */
export const STREAM_RESET = "stream.reset";

/** `stream.reset`'s data. */
export interface StreamReset {
  /** The topic. */
  topic: string;
}

/**
 * The text of a push without its position: the envelope's JSON up to, not
 * including, the two closing braces of `data` and of the envelope. A
 * position is appended by {@linkcode withPosition} once the engine has
 * numbered it. `data` must be a JSON object.
 *
 * @throws {TypeError} when `data` is not a plain object, or already has an
 * `offset` or `epoch` field.
 *
 * @example
 * ```ts
 * import { positionedHead, withPosition } from "./stream.ts";
 * const head = positionedHead("chat.message", "lobby", { text: "hi" });
 * console.assert(
 *   withPosition(head, 7, "e1") ===
 *     '{"event":"chat.message","topic":"lobby","data":{"text":"hi","offset":7,"epoch":"e1"}}',
 * );
 * ```
 */
export function positionedHead(
  event: string,
  topic: string,
  data: unknown,
): string {
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new TypeError(
      `Cannot publish to "${topic}": a topic with history needs an object as data, to carry offset and epoch`,
    );
  }
  if ("offset" in data || "epoch" in data) {
    throw new TypeError(
      `Cannot publish to "${topic}": data must not have its own offset or epoch`,
    );
  }
  const text = JSON.stringify({ event, topic, data });
  return text.slice(0, -2);
}

/** The full push: a head from {@linkcode positionedHead} with its position. */
export function withPosition(
  head: string,
  offset: number,
  epoch: string,
): string {
  const comma = head.endsWith("{") ? "" : ",";
  return `${head}${comma}"offset":${offset},"epoch":${JSON.stringify(epoch)}}}`;
}

/** Whether a value is a stream position. */
export function isStreamPosition(value: unknown): value is StreamPosition {
  if (typeof value !== "object" || value === null) return false;
  const { offset, epoch } = value as StreamPosition;
  return Number.isSafeInteger(offset) && offset >= 0 &&
    typeof epoch === "string" && epoch.length > 0 && epoch.length <= 64;
}

/**
 * Where a push stands against the last position a client delivered:
 * - `next`: the one after it (or the first the client sees): deliver it;
 * - `duplicate`: at or before it in the same epoch: drop it;
 * - `gap`: later in the same epoch, with publishes missing in between;
 * - `epoch`: from another incarnation of the stream.
 *
 * On `gap` or `epoch` a client joins again with its last position and lets
 * the server replay or answer `recovered: false`.
 *
 * @example
 * ```ts
 * import { streamStep } from "./stream.ts";
 * console.assert(streamStep({ offset: 4, epoch: "e" }, { offset: 5, epoch: "e" }) === "next");
 * console.assert(streamStep({ offset: 4, epoch: "e" }, { offset: 7, epoch: "e" }) === "gap");
 * ```
 */
export function streamStep(
  last: StreamPosition | undefined,
  got: StreamPosition,
): "next" | "duplicate" | "gap" | "epoch" {
  if (last === undefined) return "next";
  if (got.epoch !== last.epoch) return "epoch";
  if (got.offset <= last.offset) return "duplicate";
  return got.offset === last.offset + 1 ? "next" : "gap";
}

/** The position a push's data carries, if it is a well-formed one. */
export function pushPosition(data: unknown): StreamPosition | undefined {
  if (typeof data !== "object" || data === null) return undefined;
  const { offset, epoch } = data as Partial<StreamPosition>;
  const position = { offset, epoch };
  return isStreamPosition(position) ? position : undefined;
}
