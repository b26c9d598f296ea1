/**
 * The example app's HTTP routes: the page at `/`, `/healthz` and `/metrics`.
 *
 * @module
 */

import { HttpRouter } from "@duplex-ws/duplex";
import { CHAT_JS } from "./page/chat_bundle.ts";
import { CHAT_HTML } from "./page/html.ts";

/** The example app's HTTP routes; `/healthz` and `/metrics` report on the serving server. */
export const httpRoutes: HttpRouter = new HttpRouter()
  .get("/", () =>
    new Response(CHAT_HTML, {
      headers: { "content-type": "text/html; charset=utf-8" },
    }))
  .get("/chat.js", () =>
    new Response(CHAT_JS, {
      headers: { "content-type": "text/javascript; charset=utf-8" },
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
