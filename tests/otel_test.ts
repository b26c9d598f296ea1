/**
 * Deno's built-in OpenTelemetry, turned on with environment variables only:
 * a trace span per handshake (Deno.serve instruments every request) and the
 * structured logs with their severity, sent to a stand-in OTLP collector.
 */

import assert from "node:assert/strict";
import { startMain } from "./_process.ts";
import { eventually, TestSocket } from "@duplex-ws/testing";
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
    // Exported in batches (every 200 ms here): wait for them, not a guess.
    await eventually(
      () =>
        sent("/v1/traces").includes(`http://127.0.0.1:${node.port}/`) &&
        sent("/v1/logs").includes('"msg":"connection opened"'),
      10_000,
      "the handshake's span and the open log at the collector",
    );
  } finally {
    await node.stop("SIGTERM");
    await collector.shutdown();
  }
  assert.match(sent("/v1/traces"), /duplex-otel-test/);
  assert.match(sent("/v1/logs"), /INFO/);

  /** What the collector received at `path`, all in one string. */
  function sent(path: string): string {
    return received.filter((r) => r.path === path).map((r) => r.body).join("");
  }
});
