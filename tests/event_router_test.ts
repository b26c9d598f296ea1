import assert from "node:assert/strict";
import { z } from "zod";
import { EventRouter } from "@duplex-ws/duplex";
import { Dispatcher } from "../lib/core/dispatch.ts";
import { createTestApp } from "./_app.ts";
import {
  buildFrame,
  closePayload,
  Opcode,
  RawPeer,
  readClose,
} from "./_raw.ts";
import { eventually, startServer, TestSocket } from "@duplex-ws/testing";

type Message = Record<string, unknown>;

async function withSocket(
  fn: (socket: TestSocket, url: string) => Promise<void>,
  options: Parameters<typeof createTestApp>[0] = {},
) {
  const { app, observed } = createTestApp(options);
  const server = startServer(app);
  const socket = await TestSocket.open(server.wsUrl);
  try {
    await fn(socket, server.wsUrl);
  } finally {
    await socket.close();
    await server.close();
  }
  assert.deepEqual(observed.lateHandlers, []);
}

Deno.test("EventRouter replies once to a message with an id, never without", async () => {
  await withSocket(async (socket) => {
    socket.json({ event: "echo", data: { a: [1, "x"] } });
    socket.json({ event: "echo", data: "second", id: "s-1" });
    assert.deepEqual(await socket.next(), { id: "s-1", data: "second" });
    socket.json({ event: "echo", id: 0 });
    assert.deepEqual(await socket.next(), { id: 0, data: null });
    assert.deepEqual(await socket.request("add", { a: 2, b: 3 }), {
      id: 1,
      data: 5,
    });
  });
});

Deno.test("EventRouter answers every error code", async (t) => {
  await withSocket(async (socket) => {
    const expectError = async (sent: string, code: string, id?: unknown) => {
      socket.ws.send(sent);
      const reply = await socket.next<Message>();
      if (id === undefined) {
        assert.equal(reply.event, "error", sent);
        assert.equal((reply.data as Message).code, code, sent);
        assert.equal(typeof (reply.data as Message).message, "string");
      } else {
        assert.equal(reply.id, id, sent);
        assert.equal((reply.error as Message).code, code, sent);
      }
      return reply;
    };
    await t.step("BAD_JSON", async () => {
      for (const text of ["{", "", "\u0000", "[".repeat(1000), "undefined"]) {
        await expectError(text, "BAD_JSON");
      }
    });
    await t.step("BAD_ENVELOPE", async () => {
      for (
        const text of [
          "null",
          "42",
          "[]",
          '"s"',
          "{}",
          '{"event":5}',
          '{"event":""}',
          `{"event":"${"e".repeat(129)}"}`,
          '{"event":"echo","id":{"x":1}}',
          `{"event":"echo","id":"${"i".repeat(129)}"}`,
          '{"event":"echo","id":null}',
        ]
      ) {
        await expectError(text, "BAD_ENVELOPE");
      }
      await expectError(
        '{"event":"echo","id":9,"extra":true}',
        "BAD_ENVELOPE",
        9,
      );
      await expectError('{"data":1,"id":"k"}', "BAD_ENVELOPE", "k");
    });
    await t.step("UNKNOWN_EVENT, prototype names included", async () => {
      await expectError('{"event":"nope"}', "UNKNOWN_EVENT");
      for (
        const name of [
          "__proto__",
          "constructor",
          "toString",
          "hasOwnProperty",
          "error",
        ]
      ) {
        await expectError(
          JSON.stringify({ event: name, id: name }),
          "UNKNOWN_EVENT",
          name,
        );
      }
    });
    await t.step("INVALID_DATA names the field", async () => {
      const reply = await expectError(
        JSON.stringify({ event: "add", data: { a: "2", b: 3 }, id: 1 }),
        "INVALID_DATA",
        1,
      );
      assert.match((reply.error as Message).message as string, /^a: /);
      await expectError(JSON.stringify({ event: "add" }), "INVALID_DATA");
    });
    await t.step(
      "HANDLER_ERROR for throw and reject, details never sent",
      async () => {
        for (const event of ["throw", "reject", "unserialisable"]) {
          const reply = await expectError(
            JSON.stringify({ event, id: event }),
            "HANDLER_ERROR",
            event,
          );
          assert.equal((reply.error as Message).message, "Internal error");
          assert.doesNotMatch(JSON.stringify(reply), /secret/);
        }
        await expectError(JSON.stringify({ event: "throw" }), "HANDLER_ERROR");
      },
    );
    await t.step(
      "an EventError answers with its own code and message",
      async () => {
        const reply = await expectError(
          '{"event":"forbidden","id":2}',
          "FORBIDDEN",
          2,
        );
        assert.equal((reply.error as Message).message, "Admins only");
      },
    );
    await t.step("the connection goes on after every error", async () => {
      assert.deepEqual(await socket.request("echo", "still here"), {
        id: 1,
        data: "still here",
      });
    });
  });
});

Deno.test("EventRouter: prototype-pollution keys stay plain data", async () => {
  await withSocket(async (socket) => {
    const payload =
      '{"event":"echo","id":1,"data":{"__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}}}}';
    socket.ws.send(payload);
    const reply = await socket.next<Message>();
    assert.deepEqual(Object.keys(reply.data as object).sort(), [
      "__proto__",
      "constructor",
    ]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(
      Object.prototype.hasOwnProperty.call(Object.prototype, "polluted"),
      false,
    );
  });
});

Deno.test("a failing handler never disturbs other connections or the process", async () => {
  await withSocket(async (socket, url) => {
    const other = await TestSocket.open(url);
    try {
      socket.json({ event: "leak", id: 1 });
      assert.deepEqual(await socket.next(), { id: 1, data: "ok" });
      for (let i = 0; i < 20; i++) {
        socket.json({ event: i % 2 ? "throw" : "reject" });
      }
      assert.deepEqual(await other.request("echo", "fine"), {
        id: 1,
        data: "fine",
      });
      for (let i = 0; i < 20; i++) await socket.next();
      assert.deepEqual(await socket.request("echo", "alive"), {
        id: 1,
        data: "alive",
      });
    } finally {
      await other.close();
    }
  });
});

Deno.test("ctx.emit pushes events, with or without data", async () => {
  await withSocket(async (socket) => {
    socket.json({ event: "push", data: { n: 7 } });
    assert.deepEqual(await socket.next(), { event: "pushed", data: { n: 7 } });
    assert.deepEqual(await socket.next(), { event: "ready" });
  });
});

Deno.test("async handlers reply when they resolve, in any order", async () => {
  await withSocket(async (socket) => {
    socket.json({ event: "async", data: { ms: 80 }, id: "slow" });
    socket.json({ event: "async", data: { ms: 1 }, id: "fast" });
    assert.deepEqual(await socket.next(), {
      id: "fast",
      data: { aborted: false },
    });
    assert.deepEqual(await socket.next(), {
      id: "slow",
      data: { aborted: false },
    });
  });
});

Deno.test("binary frames go to the binary handler", async () => {
  await withSocket(async (socket) => {
    const bytes = new Uint8Array([0, 1, 2, 255, 254]);
    socket.ws.send(bytes);
    const echoed = await socket.nextRaw();
    assert.ok(echoed instanceof ArrayBuffer);
    assert.deepEqual(new Uint8Array(echoed), bytes);
  }, { binary: true });
});

Deno.test("binary frames without a binary handler close with 1003", async () => {
  const { app, observed } = createTestApp();
  const server = startServer(app);
  try {
    const socket = await TestSocket.open(server.wsUrl);
    socket.ws.send(new Uint8Array([1, 2, 3]));
    const closed = await socket.waitClosed();
    assert.equal(closed.code, 1003);
    await eventually(() => observed.closes.length === 1);
    assert.equal(observed.closes[0].info.code, 1003);
  } finally {
    await server.close();
  }
});

Deno.test("messages over maxMessageSize close with 1009; the limit itself passes", async (t) => {
  const { app, observed } = createTestApp({
    maxMessageSize: 1024,
    binary: true,
  });
  const server = startServer(app);
  try {
    await t.step("text at the limit passes, one byte over closes", async () => {
      const socket = await TestSocket.open(server.wsUrl);
      const filler = (n: number) =>
        JSON.stringify({ event: "echo", data: "x".repeat(n), id: 1 });
      const exact = filler(1024 - filler(0).length);
      assert.equal(exact.length, 1024);
      socket.ws.send(exact);
      await socket.next();
      socket.ws.send(filler(1025 - filler(0).length));
      const closed = await socket.waitClosed();
      assert.equal(closed.code, 1009);
    });
    await t.step("multi-byte text is measured in UTF-8 bytes", async () => {
      const socket = await TestSocket.open(server.wsUrl);
      socket.ws.send(JSON.stringify({ event: "echo", data: "€".repeat(400) })); // 1200+ bytes, 418 chars
      assert.equal((await socket.waitClosed()).code, 1009);
    });
    await t.step("binary over the limit", async () => {
      const socket = await TestSocket.open(server.wsUrl);
      socket.ws.send(new Uint8Array(1025));
      assert.equal((await socket.waitClosed()).code, 1009);
    });
    await t.step("a fragmented message is measured whole", async () => {
      const peer = await RawPeer.connect(server.port);
      await peer.handshake(server.port);
      await peer.write(
        buildFrame(Opcode.TEXT, "x".repeat(600), { fin: false }),
      );
      await peer.write(buildFrame(Opcode.CONTINUATION, "x".repeat(600)));
      const frame = await peer.readFrame();
      assert.ok(frame);
      assert.equal(frame.opcode, Opcode.CLOSE);
      assert.equal(readClose(frame).code, 1009);
      await peer.write(buildFrame(Opcode.CLOSE, closePayload(1009)));
      await peer.readUntilEof();
      peer.close();
    });
    await eventually(() => observed.closes.length === 4);
  } finally {
    await server.close();
  }
  assert.deepEqual(observed.closes.map((c) => c.info.code), [
    1009,
    1009,
    1009,
    1009,
  ]);
});

Deno.test("EventRouter.on refuses bad registrations", () => {
  const router = new EventRouter().on("a", z.string(), (s) => s);
  assert.throws(() => router.on("a", z.string(), (s) => s), TypeError);
  assert.throws(() => router.on("", z.string(), (s) => s), TypeError);
  assert.throws(
    () => router.on("x".repeat(129), z.string(), (s) => s),
    TypeError,
  );
  assert.throws(
    // @ts-expect-error: not a Standard Schema
    () => router.on("b", { parse: () => 1 }, (s) => s),
    TypeError,
  );
  assert.deepEqual(router.eventNames(), ["a"]);
});

Deno.test("EventRouter validates through any Standard Schema, async ones too", async () => {
  // A hand-written Standard Schema, as Valibot or ArkType would provide.
  const evenNumber = {
    "~standard": {
      version: 1 as const,
      vendor: "test",
      validate: (value: unknown) =>
        Promise.resolve(
          typeof value === "number" && value % 2 === 0
            ? { value }
            : { issues: [{ message: "Expected an even number" }] },
        ),
      types: undefined as unknown as { input: number; output: number },
    },
  };
  const router = new EventRouter().on("half", evenNumber, (n) => n / 2);
  const sent: string[] = [];
  const ctx = {
    id: "c",
    state: undefined,
    identity: undefined,
    protocol: "",
    readyState: 1 as const,
    signal: new AbortController().signal,
    emit: () => true,
    send: (data: unknown) => {
      sent.push(String(data));
      return true;
    },
    close: () => {},
    join: () => Promise.resolve({ topic: "t", joined: false }),
    leave: () => false,
    topics: new Set<string>(),
    publish: () => Promise.resolve({ local: 0, remote: "none" as const }),
    presence: () => Promise.resolve({ count: 0, version: 0 }),
    history: () => Promise.resolve({ entries: [], position: null }),
    requestScope: "guest",
    keyedRefusal: () => undefined,
    request: () => Promise.reject(new Error("no client")),
    settleReply: () => {},
    refresh: () => Promise.reject(new Error("no auth")),
    stream: () => {
      throw new Error("no streams");
    },
  };
  const env = { logger: { debug() {}, info() {}, warn() {}, error() {} } };
  const dispatcher = new Dispatcher(router, env);
  dispatcher.text(ctx, '{"event":"half","data":8,"id":1}');
  dispatcher.text(ctx, '{"event":"half","data":3,"id":2}');
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(sent.map((s) => JSON.parse(s)), [
    { id: 1, data: 4 },
    {
      id: 2,
      error: { code: "INVALID_DATA", message: "Expected an even number" },
    },
  ]);
});
