/**
 * The example app's HTTP routes: the page at `/`, `/healthz` and `/metrics`.
 *
 * @module
 */

import { HttpRouter } from "../lib/mod.ts";
import { CHAT_JS } from "./page/chat_bundle.ts";
import { CHAT_HTML } from "./page/html.ts";

/** What `/healthz` and `/metrics` report on. */
export interface HealthSource {
  /** Whether the server is shutting down. */
  readonly shuttingDown: boolean;
  /** The open connections. */
  readonly connections: { readonly size: number };
  /** The backplane's kind and health. */
  backplane(): { kind: string; state: "ok" | "degraded"; detail?: string };
  /** The Prometheus text exposition. */
  metrics(): string;
}

/** Builds the HTTP routes; `/healthz` reports on `app`. */
export function createHttpRoutes(app: () => HealthSource): HttpRouter {
  return new HttpRouter()
    .get("/", () =>
      new Response(CHAT_HTML, {
        headers: { "content-type": "text/html; charset=utf-8" },
      }))
    .get("/chat.js", () =>
      new Response(CHAT_JS, {
        headers: { "content-type": "text/javascript; charset=utf-8" },
      }))
    .get("/metrics", () =>
      new Response(app().metrics(), {
        headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
      }))
    .get("/healthz", () => {
      const server = app();
      const backplane = server.backplane();
      const status = server.shuttingDown
        ? "shutting_down"
        : backplane.state === "ok"
        ? "ok"
        : "degraded";
      // Degraded still answers 200: local delivery works, so the node
      // should stay in a load balancer's pool.
      return Response.json({
        status,
        connections: server.connections.size,
        backplane,
      }, { status: server.shuttingDown ? 503 : 200 });
    });
}
