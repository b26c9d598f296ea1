/**
 * The example app's login: `POST /login {name, password}` sets a signed
 * session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS or in
 * production), `POST /auth/token` trades it for a short-lived access token
 * (what the page's typed client connects and refreshes with), `POST
 * /logout` ends it.
 *
 * - With `USERS`, a name logs in only with its password; without, in
 *   development, any name does (a demo); in production, nothing does.
 * - 10 tries a minute per address (429 with `Retry-After`); a body over
 *   4 KiB is a 413.
 * - The session token (`aud: duplex-session`) opens no socket; an access
 *   token (`aud: duplex`) gets no other token. Logging out revokes the
 *   session (its `sid`, remembered on this node until it would have
 *   expired) and asks the user's sockets to re-authenticate: those of the
 *   ended session then cannot.
 *
 * @module
 */

import { type HttpContext, HttpError, readJson } from "@duplex-ws/duplex";
import { readCookie } from "@duplex-ws/duplex/auth";
import { issueToken, jwtAuth } from "@duplex-ws/jwt";
import {
  AUDIENCE,
  AUTH_DEFAULTS,
  type AuthConfig,
  isUserName,
  SESSION_AUDIENCE,
  SESSION_COOKIE,
} from "./auth.ts";
import { LoginLimit } from "./login_limit.ts";

/** The largest login body read. */
const MAX_LOGIN_BODY = 4096;
/** Revoked sessions remembered at most (the oldest forgotten first). */
const MAX_REVOKED = 100_000;

/** A JSON error body with a status. */
function problem(
  status: number,
  code: string,
  message: string,
  headers?: Record<string, string>,
): Response {
  return Response.json({ error: { code, message } }, { status, headers });
}

/**
 * Whether a state-changing request comes from the app's own pages: its
 * `Origin` (browsers send one on POST) names this host. Non-browser clients
 * without `Origin` are let through: they cannot ride a user's cookie.
 */
function sameOrigin(request: Request): boolean {
  const origin = request.headers.get("origin");
  if (origin === null) return true;
  try {
    return new URL(origin).host === new URL(request.url).host;
  } catch {
    return false;
  }
}

/** `{name, password}` from a JSON body of at most 4 KiB. */
async function credentials(request: Request) {
  const body = await readJson(request, MAX_LOGIN_BODY).catch((error) => {
    if (error instanceof HttpError && error.status === 413) throw error;
    return undefined;
  });
  const fields = typeof body === "object" && body !== null
    ? body as Record<string, unknown>
    : {};
  const text = (value: unknown) => typeof value === "string" ? value : "";
  return { name: text(fields.name), password: text(fields.password) };
}

/** The login routes' handlers for one configuration. */
export function sessionHandlers(config: AuthConfig) {
  const sessionTtl = config.sessionTtl ?? AUTH_DEFAULTS.sessionTtl;
  const tokenTtl = config.tokenTtl ?? AUTH_DEFAULTS.tokenTtl;
  const logins = config.logins ?? (config.users ? "password" : "name");
  const limit = new LoginLimit();
  /** Session id → when its token expires (ms): revoked until then. */
  const revoked = new Map<string, number>();
  const sessions = jwtAuth({
    algorithms: ["HS256"],
    key: config.secret,
    audience: SESSION_AUDIENCE,
    requireAudience: true,
    from: [{ cookie: SESSION_COOKIE }],
    state: (claims) => typeof claims.sid === "string" ? claims.sid : "",
  });
  const cookie = (request: Request, value: string, maxAge: number) => {
    const https = new URL(request.url).protocol === "https:" ||
      request.headers.get("x-forwarded-proto") === "https";
    const secure = config.secureCookie || https ? "; Secure" : "";
    return `${SESSION_COOKIE}=${value}; Max-Age=${maxAge}; Path=/; HttpOnly; SameSite=Strict${secure}`;
  };
  /** The live, unrevoked session of a request, or `undefined`. */
  const sessionOf = async (request: Request) => {
    if (!readCookie(request, SESSION_COOKIE)) return undefined;
    const session = await sessions.authenticate(request, undefined);
    if (!("subject" in session)) return undefined;
    const { subject: user, state: sid, expiresAt = 0 } = session;
    return revoked.has(sid) ? undefined : { user, sid, expiresAt };
  };
  const revoke = (sid: string, until: number) => {
    const now = Date.now();
    for (const [id, expiry] of revoked) {
      if (expiry > now && revoked.size < MAX_REVOKED) break;
      revoked.delete(id);
    }
    revoked.set(sid, until);
  };

  return {
    /** `POST /login`: `{name, password}` as JSON or a form → the session cookie, `{user}`. */
    async login(request: Request, ctx: HttpContext): Promise<Response> {
      if (!sameOrigin(request)) {
        return problem(403, "FORBIDDEN", "Log in from this site's page");
      }
      if (logins === "off") {
        return problem(
          403,
          "FORBIDDEN",
          "Logins are off: this server has no USERS",
        );
      }
      const wait = limit.take(ctx.address ?? "unknown");
      if (wait > 0) {
        await request.body?.cancel();
        return problem(429, "RATE_LIMITED", "Too many tries: wait", {
          "retry-after": String(wait),
        });
      }
      const { name, password } = await credentials(request);
      if (!isUserName(name)) {
        return problem(
          400,
          "INVALID_DATA",
          "name must be 1-32 letters, digits, _ or - (not guest-)",
        );
      }
      if (
        logins === "password" && !await config.users?.verify(name, password)
      ) {
        return problem(401, "UNAUTHORIZED", "Wrong name or password");
      }
      const sid = crypto.randomUUID();
      const token = await issueToken({ sub: name, sid }, {
        key: config.secret,
        expiresIn: sessionTtl,
        audience: SESSION_AUDIENCE,
      });
      return Response.json({ user: name }, {
        headers: { "set-cookie": cookie(request, token, sessionTtl) },
      });
    },
    /** `POST /auth/token`: the session cookie → `{token, expiresIn}`, or 401. */
    async token(request: Request): Promise<Response> {
      if (!sameOrigin(request)) {
        return problem(403, "FORBIDDEN", "Ask from this site's page");
      }
      const session = await sessionOf(request);
      if (session === undefined) {
        return problem(401, "UNAUTHORIZED", "Log in first");
      }
      const token = await issueToken({ sub: session.user }, {
        key: config.secret,
        expiresIn: tokenTtl,
        audience: AUDIENCE,
      });
      return Response.json({ token, expiresIn: tokenTtl }, {
        headers: { "cache-control": "no-store" },
      });
    },
    /** `POST /logout`: ends the session and its sockets' next refresh. */
    async logout(request: Request, ctx: HttpContext): Promise<Response> {
      if (!sameOrigin(request)) {
        return problem(403, "FORBIDDEN", "Log out from this site's page");
      }
      const session = await sessionOf(request);
      if (session !== undefined) {
        revoke(session.sid, session.expiresAt);
        ctx.server?.reauthenticate(session.user);
      }
      return new Response(null, {
        status: 204,
        headers: { "set-cookie": cookie(request, "", 0) },
      });
    },
  };
}
