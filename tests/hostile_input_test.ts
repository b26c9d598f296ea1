/**
 * Hostile input over raw TCP, written frame by frame (masked, as clients
 * must). Every case runs beside a bystander connection that must keep
 * working, and checks what the peer sees and what `onClose` reports.
 * Row numbers (T-n) are those of docs/CONFORMANCE.md.
 */

import assert from "node:assert/strict";
import { createTestApp, type Observed } from "./_app.ts";
import {
  buildFrame,
  closePayload,
  type Frame,
  handshakeHeaders,
  Opcode,
  RawPeer,
  readClose,
  requestHead,
} from "./_raw.ts";
import {
  eventually,
  startServer,
  type TestServer,
  TestSocket,
} from "@duplex-ws/testing";

const text = (value: unknown) => buildFrame(Opcode.TEXT, JSON.stringify(value));

interface Harness {
  server: TestServer;
  observed: Observed;
  bystander: TestSocket;
  /** A handshaken raw peer. */
  peer(): Promise<RawPeer>;
}

async function withHarness(fn: (h: Harness) => Promise<void>): Promise<void> {
  const { app, observed } = createTestApp({ closeTimeout: 1000 });
  const server = startServer(app);
  const bystander = await TestSocket.open(server.wsUrl);
  const peers: RawPeer[] = [];
  try {
    await fn({
      server,
      observed,
      bystander,
      async peer() {
        const peer = await RawPeer.connect(server.port);
        peers.push(peer);
        await peer.handshake(server.port);
        return peer;
      },
    });
    // I1/I2: the bystander and the process are unaffected.
    const reply = await bystander.request("echo", "still here");
    assert.equal(reply.data, "still here");
  } finally {
    for (const peer of peers) peer.close();
    await bystander.close();
    await server.close();
  }
  // I3: onClose once per connection.
  const ids = observed.closes.map((c) => c.id);
  assert.equal(new Set(ids).size, ids.length);
}

/** Reads frames until a close frame or EOF; returns the close frame, or null on EOF. */
async function closeOrEof(peer: RawPeer): Promise<Frame | null> {
  for (;;) {
    const frame = await peer.readFrame().catch(() => null);
    if (frame === null || frame.opcode === Opcode.CLOSE) return frame;
  }
}

/** The runtime drops TCP without a close frame; onClose reports 1006. */
async function expectDrop(h: Harness, bytes: Uint8Array): Promise<void> {
  const before = h.observed.closes.length;
  const peer = await h.peer();
  await peer.write(bytes).catch(() => {});
  assert.equal(
    await closeOrEof(peer),
    null,
    "expected a drop without a close frame",
  );
  await eventually(() => h.observed.closes.length === before + 1);
  assert.equal(h.observed.closes.at(-1)!.info.code, 1006);
}

/** The runtime answers with a close frame of `code`. */
async function expectCloseFrame(
  h: Harness,
  bytes: Uint8Array,
  code: number,
): Promise<void> {
  const peer = await h.peer();
  const before = h.observed.closes.length;
  await peer.write(bytes);
  const frame = await closeOrEof(peer);
  assert.ok(frame, "expected a close frame");
  assert.equal(readClose(frame).code, code);
  // onClose reports the close the peer was sent, not another.
  peer.close();
  await eventually(() => h.observed.closes.length > before, 3000, "onClose");
  assert.equal(h.observed.closes.at(-1)!.info.code, code);
}

Deno.test("framing faults the runtime rejects: dropped, never routed (T-21, T-23, T-24, T-26, T-27)", async (t) => {
  await withHarness(async (h) => {
    const cases: [string, Uint8Array][] = [
      ["T-21 RSV1 set", buildFrame(Opcode.TEXT, "{}", { rsv: 4 })],
      ["T-21 RSV2 set", buildFrame(Opcode.TEXT, "{}", { rsv: 2 })],
      ["T-21 RSV3 set", buildFrame(Opcode.TEXT, "{}", { rsv: 1 })],
      ["T-21 reserved data opcode 3", buildFrame(0x3, "x")],
      ["T-21 reserved control opcode 0xB", buildFrame(0xb, "x")],
      ["T-23 ping of 126 bytes", buildFrame(Opcode.PING, new Uint8Array(126))],
      ["T-23 fragmented ping", buildFrame(Opcode.PING, "x", { fin: false })],
      [
        "T-24 continuation with nothing to continue",
        buildFrame(Opcode.CONTINUATION, "x"),
      ],
      [
        "T-24 a new text frame inside a fragmented message",
        new Uint8Array([
          ...buildFrame(Opcode.TEXT, "a", { fin: false }),
          ...buildFrame(Opcode.TEXT, "b"),
        ]),
      ],
      [
        "T-26 invalid UTF-8 in a text frame",
        buildFrame(Opcode.TEXT, new Uint8Array([0x7b, 0xc3, 0x28, 0x7d])),
      ],
      [
        "T-26 invalid UTF-8 split across fragments",
        new Uint8Array([
          ...buildFrame(Opcode.TEXT, new Uint8Array([0x22, 0xe2, 0x82]), {
            fin: false,
          }),
          ...buildFrame(Opcode.CONTINUATION, new Uint8Array([0x28, 0x22])),
        ]),
      ],
      [
        "T-27 a frame header declaring 64 MiB",
        buildFrame(Opcode.BINARY, new Uint8Array(0), {
          declaredLength: 64 * 1024 * 1024,
        }),
      ],
      [
        "T-27 a frame header declaring 2^63-1",
        buildFrame(Opcode.BINARY, new Uint8Array(0), {
          declaredLength: (1n << 63n) - 1n,
        }),
      ],
      [
        "T-47 a close frame with a 1-byte payload",
        buildFrame(Opcode.CLOSE, new Uint8Array([3])),
      ],
      [
        "T-47 a close reason of invalid UTF-8",
        buildFrame(
          Opcode.CLOSE,
          closePayload(1000, new Uint8Array([0xff, 0xfe])),
        ),
      ],
    ];
    for (const [name, bytes] of cases) {
      await t.step(name, () => expectDrop(h, bytes));
    }
    assert.deepEqual(h.observed.lateHandlers, []);
  });
});

Deno.test("close frames with codes a peer may not send are answered 1002 (T-48, T-49)", async (t) => {
  await withHarness(async (h) => {
    for (
      const code of [
        0,
        999,
        1004,
        1005,
        1006,
        1015,
        1016,
        1100,
        2000,
        2999,
        5000,
        65535,
      ]
    ) {
      await t.step(
        `T-48 close ${code} → 1002`,
        () =>
          expectCloseFrame(
            h,
            buildFrame(Opcode.CLOSE, closePayload(code)),
            1002,
          ),
      );
    }
    for (
      const code of [
        1000,
        1001,
        1002,
        1003,
        1007,
        1008,
        1009,
        1010,
        1011,
        1012,
        1013,
        3000,
        4999,
      ]
    ) {
      await t.step(
        `T-49 close ${code} is echoed`,
        () =>
          expectCloseFrame(
            h,
            buildFrame(Opcode.CLOSE, closePayload(code)),
            code,
          ),
      );
    }
    await t.step(
      "T-49 close 1014 → 1002 (a runtime deviation: 1014 is registered)",
      () =>
        expectCloseFrame(h, buildFrame(Opcode.CLOSE, closePayload(1014)), 1002),
    );
    await t.step(
      "T-50 a 124-byte reason is echoed (a runtime deviation: 126-byte control payload)",
      () =>
        expectCloseFrame(
          h,
          buildFrame(Opcode.CLOSE, closePayload(1000, "r".repeat(124))),
          1000,
        ),
    );
  });
});

Deno.test("control frames and fragmentation the runtime handles (T-22, T-23, T-25, T-28, T-34, T-51)", async (t) => {
  await withHarness(async (h) => {
    await t.step(
      "T-23 a 125-byte ping is answered with the same payload",
      async () => {
        const peer = await h.peer();
        const payload = crypto.getRandomValues(new Uint8Array(125));
        await peer.write(buildFrame(Opcode.PING, payload));
        const pong = await peer.readFrame();
        assert.ok(pong);
        assert.equal(pong.opcode, Opcode.PONG);
        assert.deepEqual(pong.payload, payload);
      },
    );
    await t.step(
      "T-25 a ping between fragments is answered; the message arrives whole",
      async () => {
        const peer = await h.peer();
        const message = JSON.stringify({
          event: "echo",
          data: "joined",
          id: 1,
        });
        await peer.write(
          buildFrame(Opcode.TEXT, message.slice(0, 10), { fin: false }),
        );
        await peer.write(buildFrame(Opcode.PING, "p"));
        const pong = await peer.readFrame();
        assert.equal(pong?.opcode, Opcode.PONG);
        await peer.write(buildFrame(Opcode.CONTINUATION, message.slice(10)));
        const reply = await peer.readFrame();
        assert.deepEqual(JSON.parse(new TextDecoder().decode(reply!.payload)), {
          id: 1,
          data: "joined",
        });
      },
    );
    await t.step("T-25 a frame written one byte at a time", async () => {
      const peer = await h.peer();
      const bytes = text({ event: "echo", data: "slow", id: 2 });
      for (const byte of bytes) await peer.write(new Uint8Array([byte]));
      const reply = await peer.readFrame();
      assert.deepEqual(JSON.parse(new TextDecoder().decode(reply!.payload)), {
        id: 2,
        data: "slow",
      });
    });
    await t.step("T-28 an unsolicited pong is ignored", async () => {
      const peer = await h.peer();
      await peer.write(buildFrame(Opcode.PONG, "unasked"));
      await peer.write(text({ event: "echo", data: "after pong", id: 3 }));
      const reply = await peer.readFrame();
      assert.equal(reply?.opcode, Opcode.TEXT);
    });
    await t.step(
      "T-34 one byte, 20,000 empty continuations, one byte: bounded, delivered",
      async () => {
        const peer = await h.peer();
        const empty = buildFrame(Opcode.CONTINUATION, new Uint8Array(0), {
          fin: false,
        });
        const parts = [
          buildFrame(Opcode.TEXT, '{"event":"echo","id":4,"data":"x', {
            fin: false,
          }),
        ];
        const block = new Uint8Array(empty.length * 20_000);
        for (let i = 0; i < 20_000; i++) block.set(empty, i * empty.length);
        parts.push(block, buildFrame(Opcode.CONTINUATION, 'y"}'));
        for (const part of parts) await peer.write(part);
        const reply = await peer.readFrame(10_000);
        assert.deepEqual(JSON.parse(new TextDecoder().decode(reply!.payload)), {
          id: 4,
          data: "xy",
        });
      },
    );
    await t.step(
      "T-22 an unmasked client frame is accepted (a runtime gap: RFC 6455 §5.1 says close)",
      async () => {
        const peer = await h.peer();
        await peer.write(
          buildFrame(
            Opcode.TEXT,
            JSON.stringify({ event: "echo", data: "bare", id: 5 }),
            { mask: false },
          ),
        );
        const reply = await peer.readFrame();
        assert.deepEqual(JSON.parse(new TextDecoder().decode(reply!.payload)), {
          id: 5,
          data: "bare",
        });
      },
    );
    await t.step(
      "T-51 data after the client's close frame is never routed",
      async () => {
        const before = h.observed.closes.length;
        const peer = await h.peer();
        await peer.write(
          new Uint8Array([
            ...buildFrame(Opcode.CLOSE, closePayload(1000)),
            ...text({ event: "echo", data: "late", id: 6 }),
            ...buildFrame(Opcode.PING, "late"),
          ]),
        );
        for (;;) {
          const frame = await peer.readFrame().catch(() => null);
          if (frame === null) break;
          assert.equal(
            frame.opcode,
            Opcode.CLOSE,
            "something other than the close echo came back",
          );
        }
        await eventually(() => h.observed.closes.length === before + 1);
      },
    );
  });
});

Deno.test("hostile JSON is answered, never crashes (T-37, T-38, T-42, T-43)", async (t) => {
  await withHarness(async (h) => {
    const socket = h.bystander;
    await t.step(
      "T-37 deeply nested JSON: BAD_ENVELOPE for an array, HANDLER_ERROR if it cannot be echoed",
      async () => {
        socket.ws.send("[".repeat(100_000) + "]".repeat(100_000));
        const reply = await socket.next<{ data: { code: string } }>();
        assert.equal(reply.data.code, "BAD_ENVELOPE");
        const deep = `{"event":"echo","id":"deep","data":${
          "[".repeat(100_000)
        }${"]".repeat(100_000)}}`;
        socket.ws.send(deep);
        const echoed = await socket.next<
          { id: string; error?: { code: string } }
        >();
        assert.equal(echoed.id, "deep");
      },
    );
    await t.step("T-37 a megabyte of [ is BAD_JSON", async () => {
      socket.ws.send("[".repeat(1_000_000));
      assert.equal(
        (await socket.next<{ data: { code: string } }>()).data.code,
        "BAD_JSON",
      );
    });
    await t.step(
      "T-43 a lone surrogate goes out escaped: valid UTF-8 on the wire",
      async () => {
        socket.ws.send('{"event":"echo","id":"s","data":"a\\ud800b"}');
        const raw = await socket.nextRaw();
        assert.equal(raw, '{"id":"s","data":"a\\ud800b"}');
        assert.equal(JSON.parse(raw as string).data, "a\ud800b");
      },
    );
    await t.step("T-42 __proto__ in a payload pollutes nothing", async () => {
      socket.ws.send(
        '{"event":"add","id":"p","data":{"a":1,"b":2,"__proto__":{"polluted":1}}}',
      );
      const reply = await socket.next<{ data: number }>();
      assert.equal(reply.data, 3);
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    });
  });
});

Deno.test("hostile handshakes are refused cleanly (T-11, T-12, T-13, T-16, T-18)", async (t) => {
  const { app, observed } = createTestApp();
  const server = startServer(app);
  const raw = async (head: string | Uint8Array) => {
    const peer = await RawPeer.connect(server.port);
    try {
      await peer.write(head);
      return await peer.readResponse();
    } finally {
      peer.close();
    }
  };
  try {
    await t.step(
      "T-11 a pathological Sec-WebSocket-Protocol answers at once",
      async () => {
        const started = performance.now();
        const response = await raw(
          requestHead(
            "GET / HTTP/1.1",
            handshakeHeaders(server.port, {
              "Sec-WebSocket-Protocol": "a,".repeat(2000) + " ".repeat(2000) +
                "b",
            }),
          ),
        );
        assert.equal(response.status, 400);
        assert.ok(performance.now() - started < 1000);
      },
    );
    await t.step(
      "T-12 odd Sec-WebSocket-Extensions offers get 101 without extensions",
      async () => {
        for (
          const offer of [
            "constructor",
            ";;;",
            "permessage-deflate; client_max_window_bits=99",
          ]
        ) {
          const response = await raw(
            requestHead(
              "GET / HTTP/1.1",
              handshakeHeaders(server.port, {
                "Sec-WebSocket-Extensions": offer,
              }),
            ),
          );
          assert.equal(response.status, 101, offer);
          assert.equal(response.headers.get("sec-websocket-extensions"), null);
        }
      },
    );
    await t.step(
      "T-13 a head with 300 headers is refused by the runtime",
      async () => {
        const many = Object.fromEntries(
          Array.from({ length: 300 }, (_, i) => [`X-H${i}`, "v"]),
        );
        const response = await raw(
          requestHead("GET / HTTP/1.1", handshakeHeaders(server.port, many)),
        );
        assert.ok(
          response.status >= 400 && response.status < 500,
          `got ${response.status}`,
        );
      },
    );
    await t.step("T-13 a 100 KB header is refused by the runtime", async () => {
      const response = await raw(
        requestHead(
          "GET / HTTP/1.1",
          handshakeHeaders(server.port, {
            "X-Big": "x".repeat(100_000),
          }),
        ),
      );
      assert.ok(
        response.status >= 400 && response.status < 500,
        `got ${response.status}`,
      );
    });
    await t.step(
      "T-16 a TCP reset right after the request head leaves nothing behind",
      async () => {
        for (let i = 0; i < 20; i++) {
          const peer = await RawPeer.connect(server.port);
          await peer.write(
            requestHead("GET / HTTP/1.1", handshakeHeaders(server.port)),
          );
          peer.close();
        }
        await eventually(
          () => app.connections.size === 0,
          3000,
          "no connection left",
        );
      },
    );
    await t.step(
      "T-18 an upgrade request with a body gets 400; the body is never read as frames",
      async () => {
        const head = requestHead(
          "GET / HTTP/1.1",
          handshakeHeaders(server.port, { "Content-Length": "10" }),
        );
        const peer = await RawPeer.connect(server.port);
        try {
          const response = await peer.request(head + "0123456789");
          assert.equal(response.status, 400);
          // Nothing after the body is taken for a frame: the connection just ends.
          await peer.write(
            buildFrame(
              Opcode.TEXT,
              JSON.stringify({ event: "echo", data: "x", id: 1 }),
            ),
          )
            .catch(() => {});
          assert.equal(await peer.readFrame().catch(() => null), null);
        } finally {
          peer.close();
        }
      },
    );
    await t.step("the process is fine", async () => {
      const socket = await TestSocket.open(server.wsUrl);
      assert.equal((await socket.request("echo", 1)).data, 1);
      await socket.close();
    });
  } finally {
    await eventually(() => app.connections.size === 0);
    await server.close();
  }
  const ids = observed.closes.map((c) => c.id);
  assert.equal(new Set(ids).size, ids.length);
});
