/**
 * The opening handshake, checked against RFC 6455 §4.2.1 before the request
 * reaches `Deno.upgradeWebSocket` (which accepts version 8, malformed keys and
 * POST), and the table of every refusal. Pure functions of a `Request`: no
 * I/O, easy to test in-process.
 *
 * @module
 */

import { SESSION_HEADER } from "@duplex-ws/protocol";

/** The most bytes of `Sec-WebSocket-Protocol` duplex reads. */
export const MAX_PROTOCOL_HEADER_LENGTH = 4096;

/**
 * Every reason a handshake can be refused, with its HTTP answer: the one
 * table of refusals (docs/PROTOCOL.md §1 lists the same). `auth` is the
 * `Response` an `authenticate` hook returned, so it has no entry.
 */
export const HANDSHAKE_REFUSALS = {
  bad_path: { status: 404, message: "No WebSocket endpoint on this path" },
  bad_method: {
    status: 405,
    message: "WebSocket handshake must use GET",
    headers: { Allow: "GET" },
  },
  bad_upgrade: { status: 400, message: 'Upgrade header must be "websocket"' },
  bad_connection: {
    status: 400,
    message: 'Connection header must include "Upgrade"',
  },
  missing_host: { status: 400, message: "Host header is required" },
  bad_host: { status: 400, message: "Host header is not a valid host" },
  bad_version: {
    status: 426,
    message: "Sec-WebSocket-Version must be 13",
    headers: { "Sec-WebSocket-Version": "13" },
  },
  bad_key: {
    status: 400,
    message: "Sec-WebSocket-Key must be one base64-encoded 16-byte value",
  },
  bad_protocol: {
    status: 400,
    message:
      `Sec-WebSocket-Protocol is longer than ${MAX_PROTOCOL_HEADER_LENGTH} bytes`,
  },
  bad_origin: { status: 403, message: "Origin not allowed" },
  shutting_down: { status: 503, message: "Server is shutting down" },
  too_many_sockets: {
    status: 503,
    message: "Too many open sockets for this process's descriptor limit",
  },
  too_many_connections: { status: 503, message: "Too many connections" },
  too_many_connections_per_ip: {
    status: 429,
    message: "Too many connections from this address",
  },
  handshake_rate: {
    status: 429,
    message: "Too many handshakes from this address: slow down",
  },
  too_many_handshakes: {
    status: 503,
    message: "Too many handshakes in progress",
  },
  too_many_connections_per_subject: {
    status: 429,
    message: "Too many connections for this account",
  },
  subject_handshake_rate: {
    status: 429,
    message: "Too many handshakes for this account: slow down",
  },
  auth_unavailable: {
    status: 503,
    message: "Credentials cannot be checked now",
  },
  auth_error: { status: 500, message: "Authentication failed" },
  upgrade_failed: { status: 400, message: "WebSocket upgrade failed" },
} as const satisfies Record<
  string,
  { status: number; message: string; headers?: Record<string, string> }
>;

/** A key of {@linkcode HANDSHAKE_REFUSALS}: why the library refused a handshake. */
export type RefusalReason = keyof typeof HANDSHAKE_REFUSALS;

/** Why a handshake was refused: an HTTP answer plus a stable reason for logs and metrics. */
export interface HandshakeRefusal {
  /** The HTTP status. */
  status: number;
  /** A stable, machine-readable reason, such as `bad_version`. */
  reason: RefusalReason;
  /** A short text body for the client. */
  message: string;
  /** Extra response headers (`Sec-WebSocket-Version`, `Allow`, `Retry-After`). */
  headers?: Record<string, string>;
}

/** The refusal for `reason`, with `headers` added to the table's. */
export function refusal(
  reason: RefusalReason,
  headers?: Record<string, string>,
): HandshakeRefusal {
  const entry: {
    status: number;
    message: string;
    headers?: Record<string, string>;
  } = HANDSHAKE_REFUSALS[reason];
  const all = entry.headers || headers
    ? { ...entry.headers, ...headers }
    : undefined;
  return all
    ? { status: entry.status, reason, message: entry.message, headers: all }
    : { status: entry.status, reason, message: entry.message };
}

const KEY_PATTERN = /^[A-Za-z0-9+/]{22}==$/;

/**
 * A request's path; `undefined` when its URL cannot be parsed (a `Host`
 * such as `a b` or `[`, which the runtime puts into the URL as it is).
 */
export function pathOf(request: Request): string | undefined {
  try {
    return new URL(request.url).pathname;
  } catch {
    return undefined;
  }
}

/** Splits a comma-separated header into lower-case tokens. */
export function headerTokens(value: string | null): string[] {
  if (!value) return [];
  return value.split(",").map((token) => token.trim().toLowerCase()).filter(
    Boolean,
  );
}

/**
 * Whether a request tries to open a WebSocket: it names `websocket` in
 * `Upgrade`, or carries `Sec-WebSocket-Key` or `Sec-WebSocket-Version`.
 * Such a request is checked by {@linkcode checkHandshake}; any other is plain HTTP.
 */
export function isUpgradeAttempt(request: Request): boolean {
  const headers = request.headers;
  return headerTokens(headers.get("upgrade")).includes("websocket") ||
    headers.has("sec-websocket-key") || headers.has("sec-websocket-version");
}

/**
 * Whether a plain HTTP request is the HTTP transport's kind (PROTOCOL.md
 * §7): a stream to open (`GET`, `Accept: text/event-stream`) or messages
 * (`POST` with `Duplex-Session`).
 */
export function isStreamRequest(request: Request): boolean {
  if (request.method === "POST") return request.headers.has(SESSION_HEADER);
  return request.method === "GET" &&
    (request.headers.get("accept") ?? "").includes("text/event-stream");
}

/**
 * Whether a `Sec-WebSocket-Key` is the base64 form of exactly 16 bytes
 * (RFC 6455 §4.1 item 7, §4.2.1 item 5): 22 base64 characters and `==`.
 */
export function isValidKey(key: string | null): boolean {
  return key !== null && KEY_PATTERN.test(key);
}

/**
 * Checks an upgrade attempt against RFC 6455 §4.2.1, in this order:
 * method GET (else 405), `Upgrade: websocket` (400), `Connection: upgrade`
 * (400), `Host` (400), `Sec-WebSocket-Version: 13` (426 with
 * `Sec-WebSocket-Version: 13`), a 16-byte `Sec-WebSocket-Key` (400), a
 * bounded `Sec-WebSocket-Protocol` (400).
 *
 * @returns `null` when the handshake is acceptable, else the refusal.
 */
export function checkHandshake(request: Request): HandshakeRefusal | null {
  const headers = request.headers;
  if (request.method !== "GET") return refusal("bad_method");
  if (!headerTokens(headers.get("upgrade")).includes("websocket")) {
    return refusal("bad_upgrade");
  }
  if (!headerTokens(headers.get("connection")).includes("upgrade")) {
    return refusal("bad_connection");
  }
  if (!headers.get("host")) return refusal("missing_host");
  if (headers.get("sec-websocket-version")?.trim() !== "13") {
    return refusal("bad_version");
  }
  if (!isValidKey(headers.get("sec-websocket-key"))) {
    return refusal("bad_key");
  }
  const protocols = headers.get("sec-websocket-protocol");
  if (protocols !== null && protocols.length > MAX_PROTOCOL_HEADER_LENGTH) {
    return refusal("bad_protocol");
  }
  return null;
}

/**
 * Picks the subprotocol: the first of the server's `supported` list (its
 * order of preference) that the client offered; `undefined` when the client
 * offered none of them. Comparison is exact, as RFC 6455 §4.2.2 tokens are.
 */
export function negotiateProtocol(
  offered: string | null,
  supported: readonly string[],
): string | undefined {
  if (!offered || supported.length === 0) return undefined;
  const tokens = new Set(
    offered.split(",").map((token) => token.trim()).filter(Boolean),
  );
  return supported.find((protocol) => tokens.has(protocol));
}

/**
 * Turns a refusal into its HTTP response: the status, a short text body, its
 * headers, and `Connection: close`, so a refused peer cannot keep the TCP
 * connection (and its descriptor) for another try on it.
 */
export function refusalResponse(refusal: HandshakeRefusal): Response {
  return new Response(refusal.message + "\n", {
    status: refusal.status,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      connection: "close",
      ...refusal.headers,
    },
  });
}
