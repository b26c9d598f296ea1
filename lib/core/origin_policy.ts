/**
 * The Origin check that stops cross-site WebSocket hijacking (RFC 6455
 * §10.2): browsers send cookies with the handshake and CORS does not apply,
 * so a page on another site must not be able to open a socket as the user.
 *
 * @module
 */

/** Options of {@linkcode createOriginPolicy}. */
export interface OriginPolicyOptions {
  /**
   * Origins allowed besides the server's own host, exactly as browsers send
   * them (`https://app.example.com`); `"*"` allows every origin.
   * @default {[]}
   */
  allowedOrigins?: readonly string[];
  /**
   * Refuse requests that carry no `Origin` (non-browser clients).
   * @default {false}
   */
  requireOrigin?: boolean;
}

/** Decides whether a handshake's `Origin` may open a socket. */
export type OriginPolicy = (request: Request) => boolean;

/**
 * Checks one allowlist entry and returns it as browsers send it:
 * `scheme://host[:port]`, or `"*"`.
 *
 * @throws {TypeError} when it is not a plain origin.
 */
export function normalizeOrigin(origin: string): string {
  if (origin === "*") return origin;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    throw new TypeError(
      `Cannot create origin policy: "${origin}" is not an origin such as https://app.example.com`,
    );
  }
  if (url.origin === "null" || url.origin !== origin.replace(/\/$/, "")) {
    throw new TypeError(
      `Cannot create origin policy: "${origin}" must be scheme://host[:port], nothing more`,
    );
  }
  return url.origin;
}

/**
 * Creates the Origin policy. An `Origin` passes when its host (with port)
 * equals the request's `Host`, or it is in the allowlist; a request without
 * `Origin` passes unless `requireOrigin` is set. `Origin: null` never passes
 * unless `"*"` is allowed.
 *
 * @throws {TypeError} when an allowlist entry is not a plain origin.
 *
 * @example
 * ```ts
 * import { createOriginPolicy } from "./origin_policy.ts";
 * const allows = createOriginPolicy({ allowedOrigins: ["https://app.example.com"] });
 * const request = new Request("http://api.example.com/", {
 *   headers: { origin: "https://evil.example" },
 * });
 * console.assert(!allows(request));
 * ```
 */
export function createOriginPolicy(
  options: OriginPolicyOptions = {},
): OriginPolicy {
  const { allowedOrigins = [], requireOrigin = false } = options;
  const allowed = new Set(allowedOrigins.map(normalizeOrigin));
  const allowAll = allowed.has("*");
  return (request) => {
    const origin = request.headers.get("origin");
    if (origin === null) return !requireOrigin;
    if (allowAll) return true;
    if (allowed.has(origin)) return true;
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      return false;
    }
    return host !== "" &&
      host.toLowerCase() === request.headers.get("host")?.toLowerCase();
  };
}
