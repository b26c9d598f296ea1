/**
 * The example app's HTTP routes: the page at `/`, the login (`/login`,
 * `/auth/token`, `/logout`), the typed client for pages without a bundler
 * (`/duplex/client.js` and its `/duplex/client.d.ts`), the AsyncAPI
 * document of its socket (`/asyncapi.json`), `/healthz` and `/metrics`.
 *
 * @module
 */

import { type HttpHandler, HttpRouter } from "@duplex-ws/duplex";
import { serverApi } from "@duplex-ws/api";
import { events } from "./events.ts";
import type { AuthConfig } from "./auth.ts";
import { sessionHandlers } from "./session.ts";
import { serveClient } from "@duplex-ws/client/serve";
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

/** Where the app serves the typed client as a plain ES module. */
export const CLIENT_MODULE_PATH = "/duplex/client.js";
/** Where the app serves the typed client's declarations. */
export const CLIENT_TYPES_PATH = "/duplex/client.d.ts";

/**
 * A handler made on its route's first request, from a module imported then:
 * what only some requests need (the page's script, the admin page, the API
 * documents and their generators) is not loaded before the first upgrade.
 */
function onFirstUse(make: () => Promise<HttpHandler>): HttpHandler {
  let handler: Promise<HttpHandler> | undefined;
  return async (request, ctx) =>
    await (await (handler ??= make()))(request, ctx);
}

/** A script or page, with the page's headers, imported on first request. */
function lazyText(type: string, text: () => Promise<string>): HttpHandler {
  return onFirstUse(async () => {
    const body = await text();
    return () =>
      new Response(body, {
        headers: { "content-type": `${type}; charset=utf-8`, ...PAGE_HEADERS },
      });
  });
}

/** The example app's HTTP routes; `/healthz` and `/metrics` report on the serving server. */
export function httpRoutes(auth: AuthConfig, apiKey?: string): HttpRouter {
  const session = sessionHandlers(auth);
  const routes = new HttpRouter()
    .post("/login", (request, ctx) => session.login(request, ctx))
    .post("/auth/token", (request) => session.token(request))
    .post("/logout", (request, ctx) => session.logout(request, ctx))
    .get("/", () =>
      new Response(CHAT_HTML, {
        headers: {
          "content-type": "text/html; charset=utf-8",
          ...PAGE_HEADERS,
        },
      }))
    .get(
      "/chat.js",
      lazyText(
        "text/javascript",
        async () => (await import("./page/chat_bundle.ts")).CHAT_JS,
      ),
    )
    .get(CLIENT_MODULE_PATH, (request) => serveClient(request)!)
    .get(CLIENT_TYPES_PATH, (request) => serveClient(request)!)
    .get(
      "/asyncapi.json",
      onFirstUse(async () =>
        (await import("@duplex-ws/asyncapi")).asyncApiHandler(events, {
          title: "duplex example chat",
          version: "1.0.0",
          description:
            "The example app's socket: rooms with presence and history, echo, whoami and a clock sync that asks the client back. The envelope is docs/PROTOCOL.md's.",
        })
      ),
    )
    .get(
      "/admin",
      lazyText(
        "text/html",
        async () => (await import("./page/admin_page.ts")).ADMIN_HTML,
      ),
    )
    .get(
      "/admin.js",
      lazyText(
        "text/javascript",
        async () => (await import("./page/admin_page.ts")).ADMIN_JS,
      ),
    )
    .get(
      "/openapi.json",
      onFirstUse(async () => {
        const { serverApiDocument } = await import(
          "@duplex-ws/asyncapi/openapi"
        );
        const document = serverApiDocument({
          title: "duplex example chat API",
        });
        return () => Response.json(document);
      }),
    )
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
  // The server API, with API_KEY only.
  return apiKey
    ? routes.on("*", "/api/:method", serverApi({ key: apiKey }))
    : routes;
}
