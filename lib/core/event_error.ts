/**
 * The error a handler throws to answer a message with its own error code
 * (the library's codes are in `protocol/error_code.ts`).
 *
 * @module
 */

import { isErrorCode } from "@duplex-ws/protocol";

/** Options of {@linkcode EventError}: the standard `cause`, and `data`. */
export interface EventErrorOptions extends ErrorOptions {
  /**
   * What the client gets besides the code and message (JSON), as the error
   * envelope's `data`: the current price a bid must beat, say.
   */
  data?: unknown;
}

/**
 * Thrown by a handler to answer with a code and message of its choosing.
 * Unlike any other error, its code, message and `data` are sent to the
 * client.
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
  /** What the client gets besides, as the error envelope's `data`. */
  readonly data?: unknown;

  /**
   * Makes the error; its code, message and `data` are what the client gets.
   *
   * @param code A stable, machine-readable code (1–64 characters of `A-Z`, `0-9`, `_`).
   * @param message A sentence for the client; never put internal details here.
   * @param options The standard `cause`, and `data` for the client.
   */
  constructor(code: string, message: string, options?: EventErrorOptions) {
    super(message, options);
    if (options?.data !== undefined) this.data = options.data;
    if (!isErrorCode(code)) {
      throw new TypeError(
        `Cannot create EventError: code "${code}" is not 1-64 characters of A-Z, 0-9 and _`,
      );
    }
    this.name = "EventError";
    this.code = code;
  }
}
