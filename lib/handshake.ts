/**
 * The opening handshake, checked against RFC 6455 §4.2.1 before the request
 * reaches `Deno.upgradeWebSocket` (which accepts version 8, malformed keys and
 * POST). Pure functions of a `Request`: no I/O, easy to test in-process.
 *
 * @module
 */

/** Why a handshake was refused: an HTTP answer plus a stable reason for logs and metrics. */
export interface HandshakeRefusal {
  /** The HTTP status. */
  status: number;
  /** A stable, machine-readable reason, such as `bad_version`. */
  reason: string;
  /** A short text body for the client. */
  message: string;
  /** Extra response headers (`Sec-WebSocket-Version`, `Allow`, `Retry-After`). */
  headers?: Record<string, string>;
}

/** The most bytes of `Sec-WebSocket-Protocol` duplex reads. */
export const MAX_PROTOCOL_HEADER_LENGTH = 4096;

const KEY_PATTERN = /^[A-Za-z0-9+/]{22}==$/;

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
 * Whether a `Sec-WebSocket-Key` is the base64 form of exactly 16 bytes
 * (RFC 6455 §4.1 item 7, §4.2.1 item 5): 22 base64 characters and `==`.
 */
export function isValidKey(key: string | null): boolean {
  return key !== null && KEY_PATTERN.test(key);
}

function refuse(
  status: number,
  reason: string,
  message: string,
  headers?: Record<string, string>,
): HandshakeRefusal {
  return headers
    ? { status, reason, message, headers }
    : { status, reason, message };
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
  if (request.method !== "GET") {
    return refuse(405, "bad_method", "WebSocket handshake must use GET", {
      Allow: "GET",
    });
  }
  if (!headerTokens(headers.get("upgrade")).includes("websocket")) {
    return refuse(400, "bad_upgrade", 'Upgrade header must be "websocket"');
  }
  if (!headerTokens(headers.get("connection")).includes("upgrade")) {
    return refuse(
      400,
      "bad_connection",
      'Connection header must include "Upgrade"',
    );
  }
  if (!headers.get("host")) {
    return refuse(400, "missing_host", "Host header is required");
  }
  if (headers.get("sec-websocket-version")?.trim() !== "13") {
    return refuse(
      426,
      "bad_version",
      "Sec-WebSocket-Version must be 13",
      { "Sec-WebSocket-Version": "13" },
    );
  }
  if (!isValidKey(headers.get("sec-websocket-key"))) {
    return refuse(
      400,
      "bad_key",
      "Sec-WebSocket-Key must be one base64-encoded 16-byte value",
    );
  }
  const protocols = headers.get("sec-websocket-protocol");
  if (protocols !== null && protocols.length > MAX_PROTOCOL_HEADER_LENGTH) {
    return refuse(
      400,
      "bad_protocol",
      `Sec-WebSocket-Protocol is longer than ${MAX_PROTOCOL_HEADER_LENGTH} bytes`,
    );
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

/** Turns a refusal into its HTTP response: the status, a short text body, its headers. */
export function refusalResponse(refusal: HandshakeRefusal): Response {
  return new Response(refusal.message + "\n", {
    status: refusal.status,
    headers: {
      "content-type": "text/plain; charset=utf-8",
      ...refusal.headers,
    },
  });
}
