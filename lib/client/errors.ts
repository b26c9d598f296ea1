/**
 * The client's errors: why a request failed, and why there is no identity
 * to connect with.
 *
 * @module
 */

/** Why a request failed. */
export class RequestError<Code extends string = string, Data = unknown>
  extends Error {
  /**
   * The server's error code (`INVALID_DATA`, `NOT_A_MEMBER`…), or one of
   * the client's own (`ClientErrorCode`: `TIMEOUT`, `CONNECTION_LOST`,
   * `OUTBOX_FULL`, `CLOSED`).
   */
  readonly code: Code;
  /** The error's data, when the server sent some (an `EventError`'s `data`). */
  readonly data: Data;

  /**
   * Makes the error.
   * @param code The error code.
   * @param message What happened.
   * @param data What the server sent with it, if anything.
   */
  constructor(code: Code, message: string, data?: Data) {
    super(message);
    this.name = "RequestError";
    this.code = code;
    this.data = data as Data;
  }
}

/**
 * What `getToken` throws when there is no identity to give (logged out, the
 * session ended): the client goes `unauthorized` and waits for
 * `reconnect()`. Any other rejection (a network error while fetching a
 * token) is retried with the reconnect backoff.
 */
export class UnauthorizedError extends Error {
  /**
   * Creates the error.
   * @param message Why, for people.
   */
  constructor(message = "Not signed in") {
    super(message);
    this.name = "UnauthorizedError";
  }
}
