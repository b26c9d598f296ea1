/**
 * Where a handshake's token is: `Authorization: Bearer`, the
 * `duplex.bearer.<token>` subprotocol (what a browser can send), or a
 * cookie. Pure: nothing is verified here.
 *
 * @module
 */

import { BEARER_PROTOCOL_PREFIX } from "@duplex-ws/protocol";

/**
 * A place a token can come from: `Authorization: Bearer`, the
 * `duplex.bearer.` subprotocol, a cookie, or (`query`) the `access_token`
 * query parameter of an HTTP stream's `GET`, for `EventSource`, which
 * cannot set headers: never read from an upgrade, and never logged.
 */
export type TokenSource = "bearer" | "protocol" | "query" | { cookie: string };

/** Tokens longer than this are not read (a JWT is a few hundred bytes). */
export const MAX_TOKEN_LENGTH = 4096;

/** A cookie's value, percent-decoded; `null` when it is present but not valid percent-encoding. */
export function readCookie(
  request: Request,
  name: string,
): string | null | undefined {
  const header = request.headers.get("cookie");
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key !== name) continue;
    try {
      return decodeURIComponent(value.join("="));
    } catch {
      return null;
    }
  }
  return undefined;
}

/** The token a `Sec-WebSocket-Protocol` offer carries, if any. */
export function tokenFromProtocols(offer: string | null): string | undefined {
  if (!offer) return undefined;
  for (const entry of offer.split(",")) {
    const protocol = entry.trim();
    if (protocol.startsWith(BEARER_PROTOCOL_PREFIX)) {
      return protocol.slice(BEARER_PROTOCOL_PREFIX.length);
    }
  }
  return undefined;
}

/**
 * The first token found in `sources`, in their order; `undefined` when
 * there is none; `null` when one is there but unusable (empty, too long, a
 * cookie that is not valid percent-encoding).
 *
 * @example
 * ```ts
 * import { readToken } from "./credentials.ts";
 * const request = new Request("http://x/", {
 *   headers: { "sec-websocket-protocol": "duplex, duplex.bearer.a.b.c" },
 * });
 * console.assert(readToken(request, ["bearer", "protocol"]) === "a.b.c");
 * ```
 */
export function readToken(
  request: Request,
  sources: readonly TokenSource[],
): string | null | undefined {
  for (const source of sources) {
    let token: string | null | undefined;
    if (source === "bearer") {
      const header = request.headers.get("authorization");
      if (header === null) continue;
      token = /^Bearer +(\S+)\s*$/i.exec(header)?.[1] ?? null;
    } else if (source === "protocol") {
      token = tokenFromProtocols(request.headers.get("sec-websocket-protocol"));
    } else if (source === "query") {
      if (request.headers.has("sec-websocket-key")) continue;
      token = new URL(request.url).searchParams.get("access_token") ??
        undefined;
    } else {
      token = readCookie(request, source.cookie);
    }
    if (token === undefined) continue;
    if (token === null || token === "" || token.length > MAX_TOKEN_LENGTH) {
      return null;
    }
    return token;
  }
  return undefined;
}
