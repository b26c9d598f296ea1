/**
 * The opt-in transport (`TRANSPORT=node`: `node:http` and npm's `ws`) passes
 * the same core conformance checks as `Deno.serve`, and bounds what Deno
 * cannot: a fragmented message is cut at `maxMessageSize` while it arrives,
 * and a silent TCP connection is dropped after `HEADER_TIMEOUT`. Several
 * endpoints on one port route the same way on it.
 */

import assert from "node:assert/strict";
import { CORE_ENV, coreConformance } from "./_core.ts";
import { startMain } from "./_process.ts";
import { handshakeHeaders, RawPeer, requestHead } from "./_raw.ts";
import { handshakeStatus, TestSocket, within } from "@duplex-ws/testing";
import { TEST_SECRET, tokenFor } from "./_auth.ts";

Deno.test("TRANSPORT=node passes the core conformance checks", async (t) => {
  const node = await startMain("listen", { ...CORE_ENV, TRANSPORT: "node" });
  try {
    await coreConformance(t, node);
  } finally {
    const status = await node.stop("SIGTERM");
    assert.equal(status.code, 0);
  }
});

Deno.test("TRANSPORT=node routes each upgrade to its endpoint: /admin with its own identity check", async () => {
  const node = await startMain("listen", {
    TRANSPORT: "node",
    ADMIN_USERS: "root",
    APP_ENV: "development",
    AUTH_SECRET: TEST_SECRET,
    LOG_LEVEL: "error",
  });
  try {
    const admin = `${node.url}/admin`;
    assert.equal(await handshakeStatus(admin), 401);
    const ada = { authorization: `Bearer ${await tokenFor("ada")}` };
    assert.equal(await handshakeStatus(admin, ada), 403);
    const root = await TestSocket.open(`${node.wsUrl}/admin`, {
      token: await tokenFor("root"),
    });
    assert.deepEqual(await root.request("admin.rooms"), {
      id: 1,
      data: { rooms: [] },
    });
    await root.close();
  } finally {
    assert.equal((await node.stop("SIGTERM")).code, 0);
  }
});

Deno.test("TRANSPORT=node drops a silent connection after HEADER_TIMEOUT", async () => {
  const node = await startMain("listen", {
    TRANSPORT: "node",
    HEADER_TIMEOUT: "300",
  });
  const silent = await Deno.connect({ hostname: "127.0.0.1", port: node.port });
  try {
    const started = performance.now();
    const read = await within(
      silent.read(new Uint8Array(16)),
      5000,
      "the silent connection to be dropped",
    );
    assert.equal(read, null);
    assert.ok(performance.now() - started < 3000);
    // A connection that talks is served as usual.
    const peer = await RawPeer.connect(node.port);
    const response = await peer.request(
      requestHead("GET / HTTP/1.1", handshakeHeaders(node.port)),
    );
    assert.equal(response.status, 101);
    peer.close();
  } finally {
    silent.close();
    assert.equal((await node.stop("SIGTERM")).code, 0);
  }
});

Deno.test("the ./node transport negotiates permessage-deflate only when asked: a 16 KiB echo crosses the wire in a fraction of its size", async () => {
  const { listenNode } = await import("@duplex-ws/node");
  const { WebSocket } = await import("../lib/node/_ws.ts");
  const { createServer, EventRouter, silentLogger } = await import(
    "@duplex-ws/duplex"
  );
  const { startProxy } = await import("@duplex-ws/testing");
  const { z } = await import("zod");
  const router = new EventRouter().on("echo", z.string(), (text) => text);
  const text = JSON.stringify(
    Array.from({ length: 400 }, (_, i) => ({ row: i, name: "duplex" })),
  );
  for (const deflate of [false, true]) {
    const app = createServer({ router, logger: silentLogger });
    const listener = await listenNode(app, {
      port: 0,
      hostname: "127.0.0.1",
      perMessageDeflate: deflate,
      logger: silentLogger,
    });
    const proxy = startProxy({ port: listener.addr.port });
    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/`, {
      perMessageDeflate: true,
    });
    try {
      await new Promise((resolve, reject) => {
        ws.once("open", resolve);
        ws.once("error", reject);
      });
      assert.equal(
        ws.extensions.includes("permessage-deflate"),
        deflate,
        "negotiated only when the server asks for it",
      );
      const down = proxy.bytes.down;
      const reply = new Promise<string>((resolve) =>
        ws.once("message", (data: unknown) => resolve(String(data)))
      );
      ws.send(JSON.stringify({ event: "echo", data: text, id: 1 }));
      assert.equal(JSON.parse(await reply).data, text);
      const sent = proxy.bytes.down - down;
      if (deflate) assert.ok(sent < text.length / 5, `${sent} bytes`);
      else assert.ok(sent > text.length, `${sent} bytes`);
    } finally {
      ws.terminate();
      await proxy.close();
      await listener.close();
    }
  }
});
