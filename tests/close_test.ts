import assert from "node:assert/strict";
import {
  assertApplicationClose,
  isApplicationCloseCode,
  isWireCloseCode,
  normalizeCloseInfo,
  truncateCloseReason,
  utf8Length,
} from "@duplex-ws/protocol";
import { createTestApp, type Observed } from "./_app.ts";
import {
  buildFrame,
  closePayload,
  Opcode,
  RawPeer,
  readClose,
} from "./_raw.ts";
import { delay, eventually, startServer, TestSocket } from "@duplex-ws/testing";

function closesOnce(observed: Observed) {
  const ids = observed.closes.map((c) => c.id);
  assert.equal(
    new Set(ids).size,
    ids.length,
    "onClose ran twice for one connection",
  );
  assert.deepEqual(observed.lateHandlers, []);
}

Deno.test("close code rules", async (t) => {
  await t.step("applications may use 1000 and 3000-4999 only", () => {
    for (const code of [1000, 3000, 3999, 4000, 4999]) {
      assert.ok(isApplicationCloseCode(code), `${code}`);
    }
    for (
      const code of [
        0,
        999,
        1001,
        1005,
        1006,
        1011,
        1015,
        2999,
        5000,
        65535,
        4000.5,
        NaN,
      ]
    ) {
      assert.ok(!isApplicationCloseCode(code), `${code}`);
    }
  });
  await t.step(
    "wire codes exclude 1004-1006, 1015 and the unassigned ranges",
    () => {
      for (
        const code of [
          1000,
          1001,
          1002,
          1003,
          1007,
          1011,
          1012,
          1013,
          1014,
          3000,
          4999,
        ]
      ) {
        assert.ok(isWireCloseCode(code), `${code}`);
      }
      for (const code of [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000]) {
        assert.ok(!isWireCloseCode(code), `${code}`);
      }
    },
  );
  await t.step("reasons are limited to 123 UTF-8 bytes", () => {
    assertApplicationClose(1000, "€".repeat(41));
    assert.throws(
      () => assertApplicationClose(1000, "€".repeat(42)),
      RangeError,
    );
    assert.throws(
      () => assertApplicationClose(1000, "x".repeat(124)),
      RangeError,
    );
    assert.throws(() => assertApplicationClose(1001, ""), RangeError);
  });
  await t.step("truncation cuts at a code-point boundary", () => {
    const cut = truncateCloseReason("😀".repeat(40));
    assert.equal(utf8Length(cut), 120);
    assert.equal(cut, "😀".repeat(30));
  });
  await t.step("code 0 from the runtime is reported as 1006", () => {
    assert.deepEqual(normalizeCloseInfo(0, "", true), {
      code: 1006,
      reason: "",
      wasClean: false,
    });
    assert.deepEqual(normalizeCloseInfo(1000, "x", true), {
      code: 1000,
      reason: "x",
      wasClean: true,
    });
  });
});

Deno.test("ctx.close sends the application's code and reason; onClose runs once", async (t) => {
  const { app, observed } = createTestApp();
  const server = startServer(app);
  try {
    await t.step("close(4000, reason)", async () => {
      const socket = await TestSocket.open(server.wsUrl);
      socket.json({
        event: "close",
        data: { code: 4000, reason: "bye now" },
        id: 1,
      });
      const closed = await socket.waitClosed();
      assert.deepEqual(closed, {
        code: 4000,
        reason: "bye now",
        wasClean: true,
      });
    });
    await t.step("close() defaults to 1000", async () => {
      const socket = await TestSocket.open(server.wsUrl);
      socket.json({ event: "close", data: {} });
      assert.equal((await socket.waitClosed()).code, 1000);
    });
    await t.step(
      "reserved codes and long reasons throw RangeError at the call",
      async () => {
        const socket = await TestSocket.open(server.wsUrl);
        for (const code of [1001, 1005, 1006, 1011, 1015, 2999, 5000, 999]) {
          const reply = await socket.request("close", { code });
          assert.deepEqual(
            (reply.data as { error: string }).error,
            "RangeError",
            `${code}`,
          );
        }
        const long = await socket.request("close", {
          code: 4000,
          reason: "€".repeat(42),
        });
        assert.equal((long.data as { error: string }).error, "RangeError");
        assert.equal(socket.ws.readyState, WebSocket.OPEN);
        await socket.close();
      },
    );
    await eventually(() => observed.closes.length === 3, 3000, "three closes");
    assert.deepEqual(observed.closes.map((c) => c.info.code), [
      4000,
      1000,
      1005,
    ]);
  } finally {
    await server.close();
  }
  closesOnce(observed);
});

Deno.test("client closes reach onClose with their code, reason and wasClean", async (t) => {
  const { app, observed } = createTestApp();
  const server = startServer(app);
  const lastClose = () => observed.closes[observed.closes.length - 1].info;
  try {
    await t.step("1000 with a 123-byte reason", async () => {
      const socket = await TestSocket.open(server.wsUrl);
      await socket.close(1000, "r".repeat(123));
      await eventually(() => observed.closes.length === 1);
      assert.deepEqual(lastClose(), {
        code: 1000,
        reason: "r".repeat(123),
        wasClean: true,
      });
    });
    await t.step("4001", async () => {
      const socket = await TestSocket.open(server.wsUrl);
      await socket.close(4001, "done");
      await eventually(() => observed.closes.length === 2);
      assert.deepEqual(lastClose(), {
        code: 4001,
        reason: "done",
        wasClean: true,
      });
    });
    await t.step("no code → 1005", async () => {
      const socket = await TestSocket.open(server.wsUrl);
      await socket.close();
      await eventually(() => observed.closes.length === 3);
      assert.equal(lastClose().code, 1005);
    });
    for (const code of [1001, 1011, 1012, 1013]) {
      await t.step(
        `raw close frame ${code} is echoed and reported`,
        async () => {
          const before = observed.closes.length;
          const peer = await RawPeer.connect(server.port);
          await peer.handshake(server.port);
          await peer.write(buildFrame(Opcode.CLOSE, closePayload(code, "raw")));
          const frame = await peer.readFrame();
          assert.ok(frame && frame.opcode === Opcode.CLOSE);
          assert.equal(readClose(frame).code, code);
          await peer.readUntilEof();
          peer.close();
          await eventually(() => observed.closes.length === before + 1);
          assert.deepEqual(lastClose(), {
            code,
            reason: "raw",
            wasClean: true,
          });
        },
      );
    }
    await t.step("an abrupt TCP drop → 1006, not Deno's 0", async () => {
      const before = observed.closes.length;
      const peer = await RawPeer.connect(server.port);
      await peer.handshake(server.port);
      peer.close();
      await eventually(() => observed.closes.length === before + 1);
      assert.deepEqual(lastClose(), {
        code: 1006,
        reason: "",
        wasClean: false,
      });
    });
    await t.step("a drop mid-frame → 1006, nothing dispatched", async () => {
      const before = observed.closes.length;
      const peer = await RawPeer.connect(server.port);
      await peer.handshake(server.port);
      const frame = buildFrame(
        Opcode.TEXT,
        JSON.stringify({ event: "echo", data: "x".repeat(500) }),
      );
      await peer.write(frame.subarray(0, 40));
      peer.close();
      await eventually(() => observed.closes.length === before + 1);
      assert.equal(lastClose().code, 1006);
    });
  } finally {
    await server.close();
  }
  closesOnce(observed);
});

Deno.test("a peer that never answers the close frame is gone after closeTimeout", async () => {
  const { app, observed } = createTestApp({ closeTimeout: 300 });
  const server = startServer(app);
  const peer = await RawPeer.connect(server.port);
  try {
    await peer.handshake(server.port);
    const message = JSON.stringify({
      event: "close",
      data: { code: 4002, reason: "go" },
    });
    await peer.write(buildFrame(Opcode.TEXT, message));
    const frame = await peer.readFrame();
    assert.ok(frame && frame.opcode === Opcode.CLOSE);
    assert.deepEqual(readClose(frame), { code: 4002, reason: "go" });
    const started = Date.now();
    await eventually(() => observed.closes.length === 1, 3000, "close timeout");
    assert.ok(Date.now() - started >= 200, "finished before the close timeout");
    assert.deepEqual(observed.closes[0].info, {
      code: 1006,
      reason: "peer did not answer the close frame within 300 ms",
      wasClean: false,
    });
    assert.equal(app.connections.size, 0);
    // Nothing is routed from it any more.
    await peer.write(
      buildFrame(Opcode.TEXT, JSON.stringify({ event: "echo", id: 1 })),
    );
    await delay(50);
    assert.deepEqual(observed.lateHandlers, []);
  } finally {
    peer.close();
    await server.close();
  }
  closesOnce(observed);
});

Deno.test("an idle peer is closed with 1001 by the heartbeat, onClose once", async () => {
  const { app, observed } = createTestApp({ idleTimeout: 1 });
  const server = startServer(app);
  const peer = await RawPeer.connect(server.port);
  try {
    await peer.handshake(server.port);
    const seen: number[] = [];
    for (;;) {
      const frame = await peer.readFrame(4000);
      if (!frame) break;
      seen.push(frame.opcode);
      if (frame.opcode === Opcode.CLOSE) {
        assert.equal(readClose(frame).code, 1001);
        break;
      }
    }
    assert.deepEqual(seen, [Opcode.PING, Opcode.CLOSE]);
    await eventually(() => observed.closes.length === 1, 3000, "idle close");
    await delay(100); // Deno fires a second close event here; it must not count.
    assert.equal(observed.closes.length, 1);
    assert.equal(observed.closes[0].info.code, 1001);
  } finally {
    peer.close();
    await server.close();
  }
  closesOnce(observed);
});

Deno.test("no handler runs and nothing is sent once the close has begun", async () => {
  const { app, observed } = createTestApp();
  const server = startServer(app);
  const peer = await RawPeer.connect(server.port);
  try {
    await peer.handshake(server.port);
    await peer.write(
      buildFrame(
        Opcode.TEXT,
        JSON.stringify({ event: "close", data: { code: 4000 } }),
      ),
    );
    const frame = await peer.readFrame();
    assert.ok(frame);
    assert.deepEqual(readClose(frame), { code: 4000, reason: "" });
    // Messages behind our close frame: never routed (Deno drops the TCP connection).
    const echoes = Array.from(
      { length: 20 },
      (_, i) =>
        buildFrame(Opcode.TEXT, JSON.stringify({ event: "echo", id: i })),
    );
    await peer.write(new Uint8Array(echoes.flatMap((f) => [...f]))).catch(
      () => {},
    );
    for (;;) {
      const next = await peer.readFrame().catch(() => null);
      if (next === null) break;
      assert.notEqual(
        next.opcode,
        Opcode.TEXT,
        "a reply was sent after the close frame",
      );
    }
    await eventually(() => observed.closes.length === 1);
  } finally {
    peer.close();
    await server.close();
  }
  closesOnce(observed);
});

Deno.test("after a server close, onClose reports the code the server sent", async (t) => {
  const { app, observed } = createTestApp();
  const server = startServer(app);
  const closeFromServer = async (answer: boolean) => {
    const peer = await RawPeer.connect(server.port);
    await peer.handshake(server.port);
    await peer.write(
      buildFrame(
        Opcode.TEXT,
        JSON.stringify({ event: "close", data: { code: 4100, reason: "r" } }),
      ),
    );
    const frame = await peer.readFrame();
    assert.ok(frame && frame.opcode === Opcode.CLOSE);
    if (answer) await peer.write(buildFrame(Opcode.CLOSE));
    peer.close();
  };
  try {
    await t.step(
      "the peer answers with an empty close frame → the server's code",
      async () => {
        await closeFromServer(true);
        await eventually(() => observed.closes.length === 1);
        assert.deepEqual(observed.closes[0].info, {
          code: 4100,
          reason: "r",
          wasClean: true,
        });
      },
    );
    await t.step(
      "the peer drops TCP instead of answering → the same (a runtime limit)",
      async () => {
        // Deno reports this exactly as it reports an empty close frame (1005,
        // wasClean true), so the two cannot be told apart: docs/PROTOCOL.md.
        await closeFromServer(false);
        await eventually(() => observed.closes.length === 2);
        assert.deepEqual(observed.closes[1].info, {
          code: 4100,
          reason: "r",
          wasClean: true,
        });
      },
    );
  } finally {
    await server.close();
  }
  closesOnce(observed);
});

Deno.test("a failing open hook closes the connection with 1011", async () => {
  const { app, observed } = createTestApp();
  const server = startServer(app);
  try {
    const socket = await TestSocket.open(`${server.wsUrl}/?user=openfail`);
    assert.deepEqual(await socket.waitClosed(), {
      code: 1011,
      reason: "internal error",
      wasClean: true,
    });
    await eventually(() => observed.closes.length === 1);
    assert.equal(observed.closes[0].info.code, 1011);
    const healthy = await TestSocket.open(server.wsUrl);
    assert.deepEqual(await healthy.request("echo", 1), { id: 1, data: 1 });
    await healthy.close();
  } finally {
    await server.close();
  }
  closesOnce(observed);
});

Deno.test("an idle peer that answers pings stays open", async () => {
  const { app, observed } = createTestApp({ idleTimeout: 1 });
  const server = startServer(app);
  const peer = await RawPeer.connect(server.port);
  try {
    await peer.handshake(server.port);
    const until = Date.now() + 2500;
    let pings = 0;
    while (Date.now() < until) {
      const frame = await peer.readFrame(Math.max(1, until - Date.now())).catch(
        () => undefined,
      );
      if (frame === undefined) break; // read timed out: nothing more to answer
      assert.ok(frame, "the server closed the connection");
      assert.equal(
        frame.opcode,
        Opcode.PING,
        "the server sent something other than a ping",
      );
      pings++;
      await peer.write(buildFrame(Opcode.PONG, frame.payload));
    }
    assert.ok(pings >= 2, `only ${pings} pings in 2.5 s`);
    assert.equal(app.connections.size, 1);
    assert.equal(observed.closes.length, 0);
  } finally {
    peer.close();
    await eventually(() => observed.closes.length === 1);
    await server.close();
  }
});
