/**
 * The example app's login: `POST /login {name}` sets a signed session cookie
 * (HttpOnly, SameSite=Strict, Secure over HTTPS), `POST /auth/token` trades
 * it for a short-lived access token (what the page's typed client connects
 * and refreshes with), `POST /logout` clears it. A name is the whole
 * "account": a demo of the flow, not of password handling.
 *
 * @module
 */

import { readCookie } from "@duplex-ws/duplex/auth";
import { issueToken, jwtAuth } from "@duplex-ws/jwt";
import {
  AUDIENCE,
  AUTH_DEFAULTS,
  type AuthConfig,
  isUserName,
  SESSION_COOKIE,
} from "./auth.ts";

/** A JSON error body with a status. */
function problem(status: number, code: string, message: string): Response {
  return Response.json({ error: { code, message } }, { status });
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

async function nameOf(request: Request): Promise<string | undefined> {
  const type = request.headers.get("content-type") ?? "";
  try {
    if (type.includes("application/json")) {
      const body = await request.json();
      return typeof body?.name === "string" ? body.name : undefined;
    }
    const form = await request.formData();
    const name = form.get("name");
    return typeof name === "string" ? name : undefined;
  } catch {
    return undefined;
  }
}

function cookie(request: Request, value: string, maxAge: number): string {
  const secure = new URL(request.url).protocol === "https:" ? "; Secure" : "";
  return `${SESSION_COOKIE}=${value}; Max-Age=${maxAge}; Path=/; HttpOnly; SameSite=Strict${secure}`;
}

/** The login routes' handlers for one configuration. */
export function sessionHandlers(config: AuthConfig) {
  const sessionTtl = config.sessionTtl ?? AUTH_DEFAULTS.sessionTtl;
  const tokenTtl = config.tokenTtl ?? AUTH_DEFAULTS.tokenTtl;
  const sessions = jwtAuth({
    algorithms: ["HS256"],
    key: config.secret,
    audience: AUDIENCE,
    from: [{ cookie: SESSION_COOKIE }],
    state: (claims) => claims.sub,
  });
  const sign = (sub: string, expiresIn: number) =>
    issueToken({ sub }, { key: config.secret, expiresIn, audience: AUDIENCE });

  return {
    /** `POST /login`: `{name}` as JSON or a form → the session cookie, `{user}`. */
    async login(request: Request): Promise<Response> {
      if (!sameOrigin(request)) {
        return problem(403, "FORBIDDEN", "Log in from this site's page");
      }
      const name = await nameOf(request);
      if (name === undefined || !isUserName(name)) {
        return problem(
          400,
          "INVALID_DATA",
          "name must be 1-32 letters, digits, _ or - (not guest-)",
        );
      }
      const token = await sign(name, sessionTtl);
      return Response.json({ user: name }, {
        headers: { "set-cookie": cookie(request, token, sessionTtl) },
      });
    },
    /** `POST /auth/token`: the session cookie → `{token, expiresIn}`, or 401. */
    async token(request: Request): Promise<Response> {
      if (!sameOrigin(request)) {
        return problem(403, "FORBIDDEN", "Ask from this site's page");
      }
      if (!readCookie(request, SESSION_COOKIE)) {
        return problem(401, "UNAUTHORIZED", "Log in first");
      }
      const session = await sessions.authenticate(request, undefined);
      if (!("subject" in session)) {
        return problem(401, "UNAUTHORIZED", "Session expired: log in again");
      }
      const token = await sign(session.subject, tokenTtl);
      return Response.json({ token, expiresIn: tokenTtl }, {
        headers: { "cache-control": "no-store" },
      });
    },
    /** `POST /logout`: clears the cookie. */
    logout(request: Request): Response {
      if (!sameOrigin(request)) {
        return problem(403, "FORBIDDEN", "Log out from this site's page");
      }
      return new Response(null, {
        status: 204,
        headers: { "set-cookie": cookie(request, "", 0) },
      });
    },
  };
}
