/**
 * The error a handler throws to answer a message with its own error code.
 *
 * @module
 */

/** Error codes the library itself answers with. Applications add their own. */
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
} as const;

/** One of the library's {@linkcode ErrorCode} values. */
export type ErrorCode = typeof ErrorCode[keyof typeof ErrorCode];

/**
 * Thrown by a handler to answer with a code and message of its choosing.
 * Unlike any other error, its code and message are sent to the client.
 *
 * @example
 * ```ts
 * import { EventError } from "./event_error.ts";
 * const error = new EventError("NOT_A_MEMBER", "Join the room first");
 * console.assert(error.code === "NOT_A_MEMBER");
 * ```
 */
export class EventError extends Error {
  /** A stable, machine-readable code, such as `NOT_A_MEMBER`. */
  readonly code: string;

  /**
   * @param code A stable, machine-readable code (1–64 characters of `A-Z`, `0-9`, `_`).
   * @param message A sentence for the client; never put internal details here.
   * @param options The standard `cause`.
   */
  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    if (!/^[A-Z][A-Z0-9_]{0,63}$/.test(code)) {
      throw new TypeError(
        `Cannot create EventError: code "${code}" is not 1-64 characters of A-Z, 0-9 and _`,
      );
    }
    this.name = "EventError";
    this.code = code;
  }
}
