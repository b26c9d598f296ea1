import assert from "node:assert/strict";
import { silentLogger } from "@duplex-ws/duplex";
import { closeCodeLabel } from "../lib/core/metrics.ts";
import { createApp } from "../routes/app.ts";
import { handshakeHeaders, RawPeer, requestHead } from "./_raw.ts";
import { eventually, startServer, TestSocket } from "@duplex-ws/testing";
import { TEST_IDENTITY } from "./_auth.ts";

function sample(text: string, metric: string): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(metric + " "));
  return line === undefined ? undefined : Number(line.slice(metric.length + 1));
}

Deno.test("GET /metrics counts handshakes, messages, errors, closes and the backplane", async () => {
  const app = createApp({ identity: TEST_IDENTITY, logger: silentLogger });
  const server = startServer(app);
  try {
    const peer = await RawPeer.connect(server.port);
    await peer.request(
      requestHead(
        "GET / HTTP/1.1",
        handshakeHeaders(server.port, { "Sec-WebSocket-Version": "8" }),
      ),
    );
    peer.close();
    const socket = await TestSocket.open(server.wsUrl);
    await socket.next(); // welcome
    await socket.request("echo", "hello");
    socket.ws.send("{not json");
    await socket.next();
    const open = await (await fetch(`${server.url}/metrics`)).text();
    assert.equal(sample(open, "duplex_connections"), 1);
    await socket.close(4001, "bye");
    await eventually(() => app.connections.size === 0);

    const response = await fetch(`${server.url}/metrics`);
    assert.match(
      response.headers.get("content-type") ?? "",
      /^text\/plain; version=0\.0\.4/,
    );
    const text = await response.text();
    assert.equal(sample(text, "duplex_connections"), 0);
    assert.equal(sample(text, 'duplex_handshakes_total{result="accepted"}'), 1);
    assert.equal(
      sample(
        text,
        'duplex_handshakes_total{result="refused",reason="bad_version"}',
      ),
      1,
    );
    assert.equal(sample(text, 'duplex_messages_total{direction="in"}'), 2);
    assert.equal(sample(text, 'duplex_messages_total{direction="out"}'), 3); // welcome, reply, error
    assert.ok(sample(text, 'duplex_message_bytes_total{direction="in"}')! > 20);
    assert.equal(sample(text, 'duplex_errors_total{code="BAD_JSON"}'), 1);
    assert.equal(sample(text, 'duplex_closes_total{code="4xxx"}'), 1);
    assert.equal(sample(text, 'duplex_backplane_up{kind="local"}'), 1);
    // Every sample line belongs to a declared family.
    const declared = new Set(
      text.split("\n").filter((l) => l.startsWith("# TYPE ")).map((l) =>
        l.split(" ")[2]
      ),
    );
    for (
      const line of text.split("\n").filter((l) => l && !l.startsWith("#"))
    ) {
      assert.ok(declared.has(line.split(/[{ ]/)[0]), line);
    }
  } finally {
    await server.close();
  }
});

Deno.test("close codes a peer chooses are bucketed in metric labels", () => {
  assert.deepEqual(
    [1000, 1001, 1006, 1015, 3000, 3999, 4001, 4999, 2999, 5000, 0, 65535].map(
      closeCodeLabel,
    ),
    [
      "1000",
      "1001",
      "1006",
      "1015",
      "3xxx",
      "3xxx",
      "4xxx",
      "4xxx",
      "other",
      "other",
      "other",
      "other",
    ],
  );
});
