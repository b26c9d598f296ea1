import assert from "node:assert/strict";
import { createTestApp } from "./_app.ts";
import { handshakeHeaders, RawPeer, requestHead } from "./_raw.ts";
import { eventually, startServer, TestSocket } from "@duplex-ws/testing";
import { listen, silentLogger } from "@duplex-ws/duplex";

Deno.test("shutdown sends 1001 to every client, waits for them, runs onClose once each", async () => {
  const { app, observed } = createTestApp({ drainTimeout: 2000 });
  const server = startServer(app);
  try {
    const sockets = await Promise.all(
      Array.from({ length: 5 }, () => TestSocket.open(server.wsUrl)),
    );
    const started = Date.now();
    await app.shutdown();
    assert.ok(
      Date.now() - started < 1500,
      "waited for the drain timeout instead of the clients",
    );
    for (const socket of sockets) {
      assert.deepEqual(await socket.waitClosed(), {
        code: 1001,
        reason: "server shutting down",
        wasClean: true,
      });
    }
    assert.equal(observed.closes.length, 5);
    assert.ok(observed.closes.every((c) => c.info.code === 1001));
    assert.equal(app.connections.size, 0);
  } finally {
    await server.close();
  }
});

Deno.test("during shutdown new handshakes get 503 and HTTP still answers", async () => {
  const { app } = createTestApp({ drainTimeout: 1000 });
  const server = startServer(app);
  const stubborn = await RawPeer.connect(server.port);
  try {
    await stubborn.handshake(server.port);
    const draining = app.shutdown();
    assert.equal(app.shuttingDown, true);
    const peer = await RawPeer.connect(server.port);
    const response = await peer.request(
      requestHead("GET / HTTP/1.1", handshakeHeaders(server.port)),
    );
    peer.close();
    assert.equal(response.status, 503);
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();
    await draining;
  } finally {
    stubborn.close();
    await server.close();
  }
});

Deno.test("shutdown ends peers that never answer after drainTimeout, with 1006", async () => {
  const { app, observed } = createTestApp({
    drainTimeout: 300,
    closeTimeout: 5000,
  });
  const server = startServer(app);
  const silent = await RawPeer.connect(server.port);
  const polite = await TestSocket.open(server.wsUrl);
  try {
    await silent.handshake(server.port);
    await eventually(() => app.connections.size === 2);
    const started = Date.now();
    await app.shutdown();
    const took = Date.now() - started;
    assert.ok(took >= 250 && took < 2000, `drain took ${took} ms`);
    const codes = observed.closes.map((c) => c.info.code).sort();
    assert.deepEqual(codes, [1001, 1006]);
    assert.equal((await polite.waitClosed()).code, 1001);
    assert.strictEqual(
      app.shutdown(),
      app.shutdown(),
      "shutdown is not idempotent",
    );
  } finally {
    silent.close();
    await server.close();
  }
});

Deno.test("listen: closing while a client is still sending a request body neither waits for it nor crashes (Deno 2.9's abort throws BadResource there)", async () => {
  const { app } = createTestApp();
  const warnings: string[] = [];
  const listener = listen(app, {
    hostname: "127.0.0.1",
    port: 0,
    stopTimeout: 200,
    logger: { ...silentLogger, warn: (message) => void warnings.push(message) },
    onListen() {},
  });
  const peer = await RawPeer.connect(listener.addr.port);
  try {
    // A body of 1,000 bytes declared, ten sent: Deno's graceful shutdown waits for the rest.
    await peer.write(
      requestHead("POST /nowhere HTTP/1.1", {
        Host: "127.0.0.1",
        "Content-Length": "1000",
      }) + "0123456789",
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    const started = Date.now();
    await listener.close();
    assert.ok(Date.now() - started < 2000, "close waited for the body");
    assert.deepEqual(warnings, [
      "HTTP server not stopped: a request body is still arriving",
    ]);
  } finally {
    peer.close();
    await listener.finished.catch(() => {});
  }
});
