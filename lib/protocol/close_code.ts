/**
 * Close codes, close reasons and connection states: every close rule of
 * duplex lives here (RFC 6455 §7.4 and the IANA WebSocket close code
 * registry), with the closes the library itself decides and whether a client
 * should reconnect after each. Web APIs only: the client shares this file.
 *
 * @module
 */

import { utf8Length } from "./utf8.ts";

/** Close codes duplex uses, with their RFC 6455 / IANA meaning. */
export const CloseCode = {
  /** 1000, RFC 6455 §7.4.1: normal closure. */
  NORMAL: 1000,
  /** 1001, §7.4.1: going away (server shutdown, idle peer). */
  GOING_AWAY: 1001,
  /** 1002, §7.4.1: protocol error (sent by the runtime, never by duplex). */
  PROTOCOL_ERROR: 1002,
  /** 1003, §7.4.1: unsupported data (a binary frame with no binary handler). */
  UNSUPPORTED_DATA: 1003,
  /** 1005, §7.4.1: no status code was present (local only, never on the wire). */
  NO_STATUS: 1005,
  /** 1006, §7.4.1: abnormal closure, no close frame (local only, never on the wire). */
  ABNORMAL: 1006,
  /** 1007, §7.4.1: invalid payload data. */
  INVALID_PAYLOAD: 1007,
  /** 1008, §7.4.1: policy violation. */
  POLICY_VIOLATION: 1008,
  /** 1009, §7.4.1: message too big. */
  MESSAGE_TOO_BIG: 1009,
  /** 1011, §7.4.1: the server met an internal failure. */
  INTERNAL_ERROR: 1011,
  /** 1012, IANA: service restart. */
  SERVICE_RESTART: 1012,
  /** 1013, IANA: try again later. */
  TRY_AGAIN_LATER: 1013,
} as const;

/** A close the library decides: the code and the reason it sends. */
export interface LibraryCloseInfo {
  /** The close code. */
  readonly code: number;
  /** The close reason sent with it. */
  readonly reason: string;
}

/**
 * Every close the library itself sends, with its reason: the one table that
 * decides them (docs/PROTOCOL.md "Codes the server sends" lists the same).
 */
export const LibraryClose = {
  /** 1001: the server is shutting down; reconnect (to another node). */
  SHUTDOWN: { code: CloseCode.GOING_AWAY, reason: "server shutting down" },
  /**
   * 1001: the peer answered no ping for `idleTimeout`. Deno's runtime sends
   * this code and reason itself; the `node:http` transport sends the same, so
   * both look alike to a client.
   */
  PING_TIMEOUT: {
    code: CloseCode.GOING_AWAY,
    reason: "No response from ping frame.",
  },
  /** 1003: a binary frame arrived and the app has no binary handler. */
  UNSUPPORTED_DATA: {
    code: CloseCode.UNSUPPORTED_DATA,
    reason: "binary messages are not supported",
  },
  /** 1008: the connection went on past its rate limit (`rateLimit.closeAfter` refusals in a row). */
  RATE_LIMIT: {
    code: CloseCode.POLICY_VIOLATION,
    reason: "rate limit exceeded",
  },
  /** 1009: a message over `maxMessageSize`. */
  TOO_BIG: { code: CloseCode.MESSAGE_TOO_BIG, reason: "message too big" },
  /** 1011: the connection itself failed (its open hook threw, routing failed). */
  INTERNAL: { code: CloseCode.INTERNAL_ERROR, reason: "internal error" },
  /** 1013: the peer let more than `maxBufferedAmount` bytes pile up unread. */
  SLOW_CONSUMER: { code: CloseCode.TRY_AGAIN_LATER, reason: "slow consumer" },
  /**
   * 4001: the identity expired (or re-authentication was asked for) and no
   * fresh token came within `refreshGrace`; reconnect with a fresh token.
   */
  TOKEN_EXPIRED: { code: 4001, reason: "token expired" },
  /**
   * 4503: the connection's identity is refused for good (a refresh for
   * another subject, or the app revoked it); do not reconnect with it.
   */
  FORBIDDEN: { code: 4503, reason: "forbidden" },
} as const satisfies Record<string, LibraryCloseInfo>;

/** One of the {@linkcode LibraryClose} kinds. */
export type LibraryCloseKind = keyof typeof LibraryClose;

/**
 * The reconnect rule: whether a client should reconnect after the server
 * closed with `code`. Not after 1000 (done), 1008 (policy: reconnecting
 * repeats the abuse) or 4500–4999 (give up: the application's terminal
 * reasons, such as 4503 forbidden); yes after anything else: 1001
 * shutdown, 1006 dropped, 1011, 1012, 1013, and 4000–4499 (the
 * application's "come back", such as 4001 token expired: reconnect with a
 * fresh token).
 *
 * @example
 * ```ts
 * import { shouldReconnect } from "./close_code.ts";
 * console.assert(shouldReconnect(1001) && !shouldReconnect(1000));
 * console.assert(shouldReconnect(4001) && !shouldReconnect(4503));
 * ```
 */
export function shouldReconnect(code: number): boolean {
  return code !== CloseCode.NORMAL && code !== CloseCode.POLICY_VIOLATION &&
    !(code >= 4500 && code <= 4999);
}

/** The most UTF-8 bytes a close reason may have (125-byte control payload − 2-byte code). */
export const MAX_CLOSE_REASON_BYTES = 123;

/** The state of a connection, as in the WebSocket API's `readyState`. */
export const ReadyState = {
  /** The handshake is done but the socket has not opened yet. */
  CONNECTING: 0,
  /** Messages flow both ways. */
  OPEN: 1,
  /** A close frame was sent; waiting for the peer's, or for the close timeout. */
  CLOSING: 2,
  /** Finished: `onClose` has run, nothing more is routed. */
  CLOSED: 3,
} as const;

/** One of the {@linkcode ReadyState} values. */
export type ReadyState = typeof ReadyState[keyof typeof ReadyState];

/** What a connection's close handler receives, once per connection. */
export interface CloseInfo {
  /** The close code; 1006 when the connection ended without a close frame. */
  code: number;
  /** The close reason, possibly empty. */
  reason: string;
  /** Whether the close handshake completed. */
  wasClean: boolean;
}

const encoder = new TextEncoder();

/**
 * Whether an application may close with this code: 1000, or 3000–4999.
 * The 1xxx codes other than 1000 are reserved to the library.
 *
 * @example
 * ```ts
 * import { isApplicationCloseCode } from "./close_code.ts";
 * console.assert(isApplicationCloseCode(4000));
 * console.assert(!isApplicationCloseCode(1001));
 * ```
 */
export function isApplicationCloseCode(code: number): boolean {
  return Number.isInteger(code) &&
    (code === CloseCode.NORMAL || (code >= 3000 && code <= 4999));
}

/**
 * Whether a code may appear in a close frame on the wire (RFC 6455 §7.4.1,
 * §7.4.2 and the IANA registry): 1000–1003, 1007–1014, 3000–4999.
 */
export function isWireCloseCode(code: number): boolean {
  if (!Number.isInteger(code)) return false;
  if (code >= 3000 && code <= 4999) return true;
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014);
}

/**
 * Checks a close code and reason an application asked for.
 *
 * @throws {RangeError} when the code is not 1000 or 3000–4999, or the reason
 * is longer than {@linkcode MAX_CLOSE_REASON_BYTES} UTF-8 bytes.
 */
export function assertApplicationClose(code: number, reason: string): void {
  if (!isApplicationCloseCode(code)) {
    throw new RangeError(
      `Cannot close connection: code ${code} is not 1000 or in 3000-4999`,
    );
  }
  assertCloseReason(reason);
}

/**
 * Checks that a close reason fits a close frame.
 *
 * @throws {TypeError} when the reason is not a string.
 * @throws {RangeError} when it is over {@linkcode MAX_CLOSE_REASON_BYTES} UTF-8 bytes.
 */
export function assertCloseReason(reason: string): void {
  if (typeof reason !== "string") {
    throw new TypeError("Cannot close connection: reason must be a string");
  }
  const bytes = utf8Length(reason);
  if (bytes > MAX_CLOSE_REASON_BYTES) {
    throw new RangeError(
      `Cannot close connection: reason is ${bytes} UTF-8 bytes, the limit is ${MAX_CLOSE_REASON_BYTES}`,
    );
  }
}

/**
 * Cuts a reason to at most {@linkcode MAX_CLOSE_REASON_BYTES} UTF-8 bytes at a
 * code-point boundary. For reasons built by the library from text it does not
 * control (an error message, say).
 */
export function truncateCloseReason(reason: string): string {
  if (utf8Length(reason) <= MAX_CLOSE_REASON_BYTES) return reason;
  let out = "";
  let bytes = 0;
  for (const char of reason) {
    const size = encoder.encode(char).length;
    if (bytes + size > MAX_CLOSE_REASON_BYTES) break;
    out += char;
    bytes += size;
  }
  return out;
}

/**
 * Normalizes what the runtime reports: Deno gives code 0 for a connection
 * that ended without a close frame, and 1005 with `wasClean` false when the
 * peer dropped TCP instead of answering a close; RFC 6455 §7.1.5 calls both
 * 1006.
 */
export function normalizeCloseInfo(
  code: number,
  reason: string,
  wasClean: boolean,
): CloseInfo {
  if (!code || (!wasClean && code === CloseCode.NO_STATUS)) {
    return { code: CloseCode.ABNORMAL, reason, wasClean: false };
  }
  return { code, reason, wasClean };
}
