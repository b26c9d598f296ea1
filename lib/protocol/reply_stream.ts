/**
 * Streamed replies on the wire (docs/PROTOCOL.md §8): a request whose
 * handler answers with a stream is replied `{stream, topic, position}` at
 * once; its chunks, then its end or its error, are pushes on the stream's
 * own topic (`_stream.<id>`), numbered like any topic with history, so a
 * client that lost its connection asks `stream.resume` with the position it
 * had and gets the rest once, in order. `stream.cancel` stops it.
 *
 * @module
 */

import { isStreamPosition, type StreamPosition } from "./stream.ts";

/** A chunk: `{stream, chunk, offset, epoch}` on the stream's topic. */
export const STREAM_CHUNK = "stream.chunk";
/** The stream ended: `{stream, result, offset, epoch}`, the handler's result. */
export const STREAM_END = "stream.end";
/** The stream failed: `{stream, error: {code, message, data?}}`. */
export const STREAM_ERROR = "stream.error";
/** A client's request: `{stream, since?}` → the opening again, after the chunks it missed. */
export const STREAM_RESUME = "stream.resume";
/** A client's request: `{stream}` → `{}`: stop the stream and stop reading it. */
export const STREAM_CANCEL = "stream.cancel";
/** The prefix of a stream's topic; the rest is its id. */
export const STREAM_TOPIC_PREFIX = "_stream.";

/** The reply to a request answered with a stream, and to `stream.resume`. */
export interface StreamOpening {
  /** The stream's id: `<node>.<uuid>`. */
  stream: string;
  /** Its topic, whose pushes carry the chunks. */
  topic: string;
  /** The position the reader is at (`null` before the first chunk). */
  position: StreamPosition | null;
  /** On a resume with `since`: every chunk after it was replayed. */
  recovered?: boolean;
}

/** `stream.chunk`'s data (with the push's `offset` and `epoch`). */
export interface StreamChunk<Chunk = unknown> {
  /** The stream's id. */
  stream: string;
  /** What the handler wrote. */
  chunk: Chunk;
}

/** `stream.end`'s data (with the push's `offset` and `epoch`). */
export interface StreamEnd<Result = unknown> {
  /** The stream's id. */
  stream: string;
  /** What the handler returned (`end(result)`). */
  result: Result;
}

/** `stream.error`'s data. */
export interface StreamFailure {
  /** The stream's id. */
  stream: string;
  /** Why: an `EventError`'s code, message and data, or `HANDLER_ERROR`. */
  error: { code: string; message: string; data?: unknown };
}

/** `stream.resume`'s data. */
export interface StreamResume {
  /** The stream's id. */
  stream: string;
  /** The last position the client delivered; absent: from the first chunk held. */
  since?: StreamPosition;
}

/**
 * Type-only: what a handler that answers with a stream returns, so the
 * client's `stream()` knows its chunk and result types.
 */
export interface StreamedReply<Chunk, Result> {
  /** Type-only. */
  readonly "~streamed"?: { chunk: Chunk; result: Result };
}

/** A stream's topic. */
export function streamTopic(id: string): string {
  return `${STREAM_TOPIC_PREFIX}${id}`;
}

/** Whether a string is a stream id: `<node>.<uuid>`, letters, digits, `-` and `_`. */
export function isStreamId(id: unknown): id is string {
  return typeof id === "string" && /^[\w-]{1,64}\.[\w-]{1,64}$/.test(id);
}

/** Whether a reply opens a stream. */
export function isStreamOpening(value: unknown): value is StreamOpening {
  if (typeof value !== "object" || value === null) return false;
  const { stream, topic, position } = value as Partial<StreamOpening>;
  return isStreamId(stream) && topic === streamTopic(stream) &&
    (position === null || isStreamPosition(position));
}
