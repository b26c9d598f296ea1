/**
 * The example app's HTTP routes: the page at `/`, the login (`/login`,
 * `/auth/token`, `/logout`), `/healthz` and `/metrics`.
 *
 * @module
 */

import { HttpRouter } from "@duplex-ws/duplex";
import type { AuthConfig } from "./auth.ts";
import { sessionHandlers } from "./session.ts";
import { CHAT_JS } from "./page/chat_bundle.ts";
import { CHAT_HTML } from "./page/html.ts";

/**
 * What the page may do: its own script and socket only, inline styles, no
 * framing by another site (clickjacking), no MIME sniffing, no referrer.
 */
export const PAGE_HEADERS = {
  "content-security-policy": [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'unsafe-inline'",
    "connect-src 'self'",
    "img-src 'self'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; "),
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/** The example app's HTTP routes; `/healthz` and `/metrics` report on the serving server. */
export function httpRoutes(auth: AuthConfig): HttpRouter {
  const session = sessionHandlers(auth);
  return new HttpRouter()
    .post("/login", (request) => session.login(request))
    .post("/auth/token", (request) => session.token(request))
    .post("/logout", (request) => session.logout(request))
    .get("/", () =>
      new Response(CHAT_HTML, {
        headers: {
          "content-type": "text/html; charset=utf-8",
          ...PAGE_HEADERS,
        },
      }))
    .get("/chat.js", () =>
      new Response(CHAT_JS, {
        headers: {
          "content-type": "text/javascript; charset=utf-8",
          ...PAGE_HEADERS,
        },
      }))
    .get("/metrics", (_request, { server }) =>
      new Response(server?.metrics(), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      }))
    .get("/healthz", (_request, { server }) => {
      const health = server!.health();
      // Degraded still answers 200: local delivery works, so the node
      // should stay in a load balancer's pool.
      return Response.json(health, {
        status: health.status === "shutting_down" ? 503 : 200,
      });
    });
}
