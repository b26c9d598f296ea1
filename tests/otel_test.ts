/**
 * Deno's built-in OpenTelemetry, turned on with environment variables only:
 * a trace span per handshake (Deno.serve instruments every request) and the
 * structured logs with their severity, sent to a stand-in OTLP collector.
 */

import assert from "node:assert/strict";
import { startMain } from "./_process.ts";
import { delay, TestSocket } from "@duplex-ws/testing";
import { tokenFor } from "./_auth.ts";

Deno.test("OTEL_DENO=true exports a span per handshake and the logs with severities", async () => {
  const received: { path: string; body: string }[] = [];
  const collector = Deno.serve({
    port: 0,
    hostname: "127.0.0.1",
    onListen() {},
  }, async (request) => {
    const body = new TextDecoder().decode(await request.arrayBuffer());
    received.push({ path: new URL(request.url).pathname, body });
    return new Response("{}", {
      headers: { "content-type": "application/json" },
    });
  });
  const node = await startMain("listen", {
    OTEL_DENO: "true",
    OTEL_SERVICE_NAME: "duplex-otel-test",
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collector.addr.port}`,
    OTEL_BSP_SCHEDULE_DELAY: "200",
  });
  try {
    const socket = await TestSocket.open(`${node.wsUrl}/`, {
      token: await tokenFor("otelprobe"),
    });
    await socket.next();
    await socket.close();
    await delay(1500);
  } finally {
    await node.stop("SIGTERM");
    await delay(300);
    await collector.shutdown();
  }
  const traces = received.filter((r) => r.path === "/v1/traces").map((r) =>
    r.body
  ).join("");
  assert.match(traces, /duplex-otel-test/);
  assert.ok(
    traces.includes(`http://127.0.0.1:${node.port}/`),
    "no span for the handshake",
  );
  const logs = received.filter((r) => r.path === "/v1/logs").map((r) => r.body)
    .join("");
  assert.match(logs, /"msg":"connection opened"/);
  assert.match(logs, /INFO/);
});
