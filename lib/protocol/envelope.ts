/**
 * The JSON envelope on text frames (docs/PROTOCOL.md §2), both directions:
 * the server parses client messages and encodes replies, errors and pushes;
 * the client encodes its messages and parses the server's. One file for both
 * sides, so the wire cannot be written twice. Web APIs only.
 *
 * @module
 */

import { ErrorCode, isErrorCode } from "./error_code.ts";
import type { PresenceDiff, PresenceState } from "./presence.ts";
import type { StreamReset } from "./stream.ts";
import type { AuthRefreshRequest, TopicJoined, TopicLeft } from "./auth.ts";
import type { StreamChunk, StreamEnd, StreamFailure } from "./reply_stream.ts";
import type { TopicDelta } from "./delta.ts";

/** A message id: a string of at most {@linkcode MAX_ID_LENGTH} characters, or a finite number. */
export type MessageId = string | number;

/** The most characters an event name may have. */
export const MAX_EVENT_LENGTH = 128;
/** The most characters a string id may have. */
export const MAX_ID_LENGTH = 128;
/** The most characters a request's idempotency key may have. */
export const MAX_KEY_LENGTH = 128;

/** A well-formed client message. */
export interface ClientEnvelope {
  /** The event name. */
  event: string;
  /** The payload, `undefined` when absent. */
  data: unknown;
  /** Present when the client wants exactly one reply. */
  id?: MessageId;
  /**
   * With an `id`: the request's idempotency key (1–128 characters). A
   * request sent again with the same key gets the first one's reply, and
   * its handler runs once (§2.5).
   */
  key?: string;
}

/** Why a text frame is not a usable message. */
export interface EnvelopeProblem {
  /** `BAD_JSON` or `BAD_ENVELOPE`. */
  code: ErrorCode;
  /** A short sentence for the client. */
  message: string;
  /** The id, when one could be read, so the error can answer it. */
  id?: MessageId;
}

/**
 * A client's reply to a server request (§2.4): the request's numeric id and
 * either `data` or `error`.
 */
export type ClientReplyEnvelope =
  | { id: number; data: unknown; error?: undefined }
  | { id: number; error: WireError; data?: undefined };

/**
 * The result of {@linkcode parseEnvelope}: the message itself (the parsed
 * object, checked: nothing is copied), an answer to a server request, or
 * why the frame is not a message.
 */
export type ParsedEnvelope =
  | ClientEnvelope
  | { readonly reply: ClientReplyEnvelope }
  | { readonly problem: EnvelopeProblem };

/** The answer to a server request: `{"id":n,"data":…}` or `{"id":n,"error":{code,message}}`. */
function parseReply(record: Record<string, unknown>): ParsedEnvelope {
  const { error } = record;
  const id = record.id as number;
  for (const key in record) {
    if (key !== "id" && key !== "data" && key !== "error") {
      return problem(
        ErrorCode.BAD_ENVELOPE,
        "Reply has a key other than id, data and error",
      );
    }
  }
  if (!Object.hasOwn(record, "error")) {
    return { reply: { id, data: record.data } };
  }
  if (!isWireError(error) || Object.hasOwn(record, "data")) {
    return problem(
      ErrorCode.BAD_ENVELOPE,
      "Reply error must be {code, message} strings, without data",
    );
  }
  const message = error.message.slice(0, 1024);
  if (!isErrorCode(error.code)) {
    // The answer settles its request, as a reply the client got wrong.
    return {
      reply: {
        id,
        error: {
          code: ErrorCode.INVALID_DATA,
          message:
            "The answer's error code is not 1-64 characters of A-Z, 0-9 and _",
        },
      },
    };
  }
  return { reply: { id, error: { code: error.code, message } } };
}

function isMessageId(id: unknown): id is MessageId {
  if (typeof id === "string") return id.length <= MAX_ID_LENGTH;
  return typeof id === "number" && Number.isFinite(id);
}

function problem(
  code: ErrorCode,
  message: string,
  id?: MessageId,
): ParsedEnvelope {
  return {
    problem: id === undefined ? { code, message } : { code, message, id },
  };
}

/**
 * Parses a text frame into a client envelope. A well-formed message is
 * returned as `JSON.parse` made it, once its keys and types are checked, so
 * the common case allocates nothing more.
 *
 * @example
 * ```ts
 * import { parseEnvelope } from "./envelope.ts";
 * const parsed = parseEnvelope('{"event":"echo","data":1,"id":7}');
 * console.assert("event" in parsed && parsed.id === 7);
 * ```
 */
export function parseEnvelope(text: string): ParsedEnvelope {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return problem(ErrorCode.BAD_JSON, "Message is not valid JSON");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return problem(ErrorCode.BAD_ENVELOPE, "Message must be a JSON object");
  }
  const record = value as Record<string, unknown>;
  const { event, id } = record;
  if (
    event === undefined && Number.isSafeInteger(id) && (id as number) >= 1 &&
    !Object.hasOwn(record, "event")
  ) {
    return parseReply(record);
  }
  if (id !== undefined && !isMessageId(id)) {
    return problem(
      ErrorCode.BAD_ENVELOPE,
      `Message id must be a string of at most ${MAX_ID_LENGTH} characters or a finite number`,
    );
  }
  const answerId = id as MessageId | undefined;
  for (const key in record) {
    if (key !== "event" && key !== "data" && key !== "id" && key !== "key") {
      return problem(
        ErrorCode.BAD_ENVELOPE,
        "Message has a key other than event, data, id and key",
        answerId,
      );
    }
  }
  const { key } = record;
  if (
    key !== undefined &&
    (answerId === undefined || typeof key !== "string" || key.length === 0 ||
      key.length > MAX_KEY_LENGTH)
  ) {
    return problem(
      ErrorCode.BAD_ENVELOPE,
      `Message key must be 1-${MAX_KEY_LENGTH} characters, with an id`,
      answerId,
    );
  }
  if (typeof event !== "string" || event.length === 0) {
    return problem(
      ErrorCode.BAD_ENVELOPE,
      "Message event must be a non-empty string",
      answerId,
    );
  }
  if (event.length > MAX_EVENT_LENGTH) {
    return problem(
      ErrorCode.BAD_ENVELOPE,
      `Message event is longer than ${MAX_EVENT_LENGTH} characters`,
      answerId,
    );
  }
  return record as unknown as ClientEnvelope;
}

/** Encodes a successful reply: `{"id":…,"data":…}`; `undefined` data becomes `null`. */
export function encodeReply(id: MessageId, data: unknown): string {
  return JSON.stringify({ id, data: data === undefined ? null : data });
}

/**
 * Encodes an error: `{"id":…,"error":{code,message,data?}}` when the message
 * had an id, else the push `{"event":"error","data":{code,message,data?}}`.
 */
export function encodeError(
  id: MessageId | undefined,
  code: string,
  message: string,
  data?: unknown,
): string {
  const error = data === undefined
    ? { code, message }
    : { code, message, data };
  return id === undefined
    ? JSON.stringify({ event: "error", data: error })
    : JSON.stringify({ id, error });
}

/** Encodes a server push: `{"event":…,"data":…}`, without `data` when it is `undefined`. */
export function encodePush(event: string, data?: unknown): string {
  return data === undefined
    ? JSON.stringify({ event })
    : JSON.stringify({ event, data });
}

/** An error as the wire carries it, in error replies and `error` pushes. */
export interface WireError {
  /** A stable, machine-readable code (see `ErrorCode`, or the app's own). */
  code: string;
  /** A sentence for people. */
  message: string;
  /** What the error carries besides (an `EventError`'s `data`), if anything. */
  data?: unknown;
}

/** The library's pushes, by event: what every duplex client may receive. */
export type LibraryPushes = {
  "presence.state": PresenceState;
  "presence.diff": PresenceDiff;
  "stream.reset": StreamReset;
  "auth.refresh": AuthRefreshRequest;
  "topic.left": TopicLeft;
  "topic.joined": TopicJoined;
  "stream.chunk": StreamChunk;
  "stream.end": StreamEnd;
  "stream.error": StreamFailure;
  "topic.delta": TopicDelta;
};

/** A message from the server, as a client reads it. */
export type ServerMessage =
  | { kind: "reply"; id: MessageId; data: unknown }
  | { kind: "error"; id: MessageId; error: WireError }
  | {
    kind: "request";
    event: string;
    data: unknown;
    /** Answer with this id (§2.4). */
    id: number;
  }
  | {
    kind: "push";
    event: string;
    data: unknown;
    /** The topic of a push from a topic with history. */
    topic?: string;
    /** Values of its topic were skipped before it (conflation, §3). */
    conflated?: true;
  };

/**
 * Encodes a client message: `{"event":…,"data":…,"id":…}`, without `data`
 * when it is `undefined` and without `id` for a message that wants no reply.
 *
 * @example
 * ```ts
 * import { encodeEvent } from "./envelope.ts";
 * console.assert(encodeEvent("echo", "hi", 1) === '{"event":"echo","data":"hi","id":1}');
 * ```
 */
export function encodeEvent(
  event: string,
  data?: unknown,
  id?: MessageId,
  key?: string,
): string {
  const message: Partial<ClientEnvelope> = { event };
  if (data !== undefined) message.data = data;
  if (id !== undefined) message.id = id;
  if (key !== undefined) message.key = key;
  return JSON.stringify(message);
}

function isWireError(value: unknown): value is WireError {
  return typeof value === "object" && value !== null &&
    typeof (value as WireError).code === "string" &&
    typeof (value as WireError).message === "string";
}

/**
 * Reads a text frame from the server: a reply, an error reply, a push or a
 * request (a push with an `id`, which wants one reply);
 * `undefined` for anything else (which a client ignores).
 */
export function parseServerMessage(text: string): ServerMessage | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return undefined;
  }
  const record = value as Record<string, unknown>;
  if (typeof record.event === "string") {
    const { event, data, topic, id } = record;
    if (Number.isSafeInteger(id)) {
      return { kind: "request", event, data, id: id as number };
    }
    const push: ServerMessage = { kind: "push", event, data };
    if (typeof topic === "string") push.topic = topic;
    if (record.conflated === true) push.conflated = true;
    return push;
  }
  const id = record.id;
  if (!isMessageId(id)) return undefined;
  if (isWireError(record.error)) {
    return { kind: "error", id, error: record.error };
  }
  return { kind: "reply", id, data: record.data };
}
