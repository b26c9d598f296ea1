/**
 * The example app's handshake authentication. A demo, not a security
 * scheme: it trusts the name the client gives. Real apps verify a signed
 * token or a session cookie here the same way.
 *
 * @module
 */

/** What every connection of the example app carries. */
export interface UserState {
  /** The user's display name; `anonymous` when none was given. */
  user: string;
}

const NAME = /^[A-Za-z0-9_-]{1,32}$/;

function cookie(request: Request, name: string): string | undefined {
  const header = request.headers.get("cookie");
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key !== name) continue;
    try {
      return decodeURIComponent(value.join("="));
    } catch {
      return ""; // malformed percent-encoding: not a valid name either
    }
  }
  return undefined;
}

/**
 * Reads the user from `Authorization: Bearer <name>`, a `?user=<name>` query
 * or a `duplex_user` cookie, in that order. A name that is not 1–32 letters,
 * digits, `_` or `-` is refused with 401.
 */
export function authenticate(request: Request): UserState | Response {
  const bearer = request.headers.get("authorization")?.match(/^Bearer\s+(.+)$/i)
    ?.[1];
  const name = bearer ?? new URL(request.url).searchParams.get("user") ??
    cookie(request, "duplex_user");
  if (name === undefined || name === null) return { user: "anonymous" };
  if (!NAME.test(name)) {
    return new Response("User name must be 1-32 letters, digits, _ or -\n", {
      status: 401,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  }
  return { user: name };
}
