/**
 * The example app's HTTP routes: the page at `/`, `/healthz` and `/metrics`.
 *
 * @module
 */

import { HttpRouter } from "../lib/mod.ts";

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

const PAGE = `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>duplex</title>
<h1>duplex</h1>
<p>A Deno WebSocket server: HTTP and WebSocket on this one port.</p>
<p>Connect a WebSocket to this address, then send JSON such as
<code>{"event":"echo","data":"hi","id":1}</code>. The wire protocol is in
<code>docs/PROTOCOL.md</code>.</p>
<pre>const ws = new WebSocket(location.origin.replace(/^http/, "ws"));
ws.onmessage = (e) => console.log(e.data);
ws.onopen = () => ws.send(JSON.stringify({ event: "whoami", id: 1 }));</pre>
`;

/** Builds the HTTP routes; `/healthz` reports on `app`. */
export function createHttpRoutes(app: () => HealthSource): HttpRouter {
  return new HttpRouter()
    .get("/", () =>
      new Response(PAGE, {
        headers: { "content-type": "text/html; charset=utf-8" },
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
