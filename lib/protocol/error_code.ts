/**
 * Every error code of the wire in one table: the codes the server answers
 * with (in error replies and `error` pushes) and the codes the client makes
 * up itself when no reply can come. Applications add their own codes by
 * throwing `EventError`. docs/PROTOCOL.md lists exactly these (a test checks).
 *
 * @module
 */

/**
 * Whether a string is an error code: 1–64 characters of `A-Z`, `0-9` and
 * `_`, starting with a letter (the library's and any app's).
 */
export function isErrorCode(code: unknown): code is string {
  return typeof code === "string" && /^[A-Z][A-Z0-9_]{0,63}$/.test(code);
}

/** Error codes the server answers with. */
export const ErrorCode = {
  /** The text frame is not JSON. */
  BAD_JSON: "BAD_JSON",
  /** The JSON is not a valid envelope (not an object, no `event`, bad `id`, unknown keys). */
  BAD_ENVELOPE: "BAD_ENVELOPE",
  /** No handler is registered for the event. */
  UNKNOWN_EVENT: "UNKNOWN_EVENT",
  /** The payload failed the event's schema. */
  INVALID_DATA: "INVALID_DATA",
  /** The handler threw or rejected; details are logged, never sent. */
  HANDLER_ERROR: "HANDLER_ERROR",
  /** The connection is over its rate limit; the message was dropped. */
  RATE_LIMITED: "RATE_LIMITED",
  /** Too many of the connection's handlers are still running; the message was dropped. */
  BUSY: "BUSY",
  /** A topic name is empty, too long, or has characters outside `A-Z a-z 0-9 _ . : -`. */
  BAD_TOPIC: "BAD_TOPIC",
  /** The connection is already in as many topics as allowed. */
  TOO_MANY_TOPICS: "TOO_MANY_TOPICS",
  /** The connection may not join (or publish to) the topic named in the message. */
  FORBIDDEN: "FORBIDDEN",
  /** A token sent in `auth.refresh` was refused (forged, expired, another audience…). */
  UNAUTHORIZED: "UNAUTHORIZED",
  /**
   * A conditional publish (`ifPosition`) found the topic moved on: nothing
   * was published; the error's `data` is `{topic, position}`, the topic's
   * position now.
   */
  CONFLICT: "CONFLICT",
  /**
   * A streamed reply cannot be resumed: it ended, was cancelled or its node
   * went away longer ago than the resume window, or the chunks after the
   * reader's position are no longer held.
   */
  STREAM_EXPIRED: "STREAM_EXPIRED",
  /** A streamed reply was stopped by a reader (`stream.cancel`). */
  CANCELLED: "CANCELLED",
} as const;

/** One of the server's {@linkcode ErrorCode} values. */
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode];

/**
 * The codes a request gets when no reply came, on either side: the typed
 * client's requests and the server's `ctx.request` share them (and the
 * pending table that gives them, `pending.ts`).
 */
export const NoReplyCode = {
  /** No reply came within the request's timeout. */
  TIMEOUT: "TIMEOUT",
  /** The request was sent, then the connection dropped before the reply: it may or may not have been handled. */
  CONNECTION_LOST: "CONNECTION_LOST",
} as const;

/** Error codes the client gives a request that got no reply from the server. */
export const ClientErrorCode = {
  ...NoReplyCode,
  /** The client is offline and its outbox is full: the request was not queued. */
  OUTBOX_FULL: "OUTBOX_FULL",
  /** The client was closed (by the app, or for good by the server). */
  CLOSED: "CLOSED",
} as const;

/** One of the client's {@linkcode ClientErrorCode} values. */
export type ClientErrorCode =
  typeof ClientErrorCode[keyof typeof ClientErrorCode];

/**
 * The codes that say "not now" rather than "no": a request refused with one
 * of them may succeed if sent again later (the typed client retries a
 * rejoin refused with one, with backoff). Every other code is final.
 */
export const TEMPORARY_ERROR_CODES: ReadonlySet<string> = new Set([
  ErrorCode.RATE_LIMITED,
  ErrorCode.BUSY,
  NoReplyCode.TIMEOUT,
]);
