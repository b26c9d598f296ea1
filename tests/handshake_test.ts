import assert from "node:assert/strict";
import { createLogger } from "@duplex-ws/duplex";
import {
  checkHandshake,
  isUpgradeAttempt,
  isValidKey,
  negotiateProtocol,
} from "../lib/core/handshake.ts";
import { createTestApp } from "./_app.ts";
import { handshakeHeaders, RawPeer, requestHead, SAMPLE_KEY } from "./_raw.ts";
import { startServer, TestSocket } from "@duplex-ws/testing";

const BASE = "http://127.0.0.1:8000/";

function upgradeRequest(
  headers: Record<string, string> = {},
  init: { method?: string; url?: string; drop?: string[] } = {},
): Request {
  const all: Record<string, string> = { ...handshakeHeaders(8000), ...headers };
  for (const name of init.drop ?? []) delete all[name];
  return new Request(init.url ?? BASE, {
    method: init.method ?? "GET",
    headers: all,
  });
}

Deno.test("checkHandshake refuses what RFC 6455 §4.2.1 refuses, in-process", async (t) => {
  const cases: [string, Request, number, string][] = [
    ["POST", upgradeRequest({}, { method: "POST" }), 405, "bad_method"],
    ["PUT", upgradeRequest({}, { method: "PUT" }), 405, "bad_method"],
    ["Upgrade: h2c", upgradeRequest({ Upgrade: "h2c" }), 400, "bad_upgrade"],
    [
      "no Connection",
      upgradeRequest({}, { drop: ["Connection"] }),
      400,
      "bad_connection",
    ],
    [
      "Connection: close",
      upgradeRequest({ Connection: "close" }),
      400,
      "bad_connection",
    ],
    ["no Host", upgradeRequest({}, { drop: ["Host"] }), 400, "missing_host"],
    [
      "version 8",
      upgradeRequest({ "Sec-WebSocket-Version": "8" }),
      426,
      "bad_version",
    ],
    [
      "version 12",
      upgradeRequest({ "Sec-WebSocket-Version": "12" }),
      426,
      "bad_version",
    ],
    [
      "version 13, 8",
      upgradeRequest({ "Sec-WebSocket-Version": "13, 8" }),
      426,
      "bad_version",
    ],
    [
      "no version",
      upgradeRequest({}, { drop: ["Sec-WebSocket-Version"] }),
      426,
      "bad_version",
    ],
    [
      "version abc",
      upgradeRequest({ "Sec-WebSocket-Version": "abc" }),
      426,
      "bad_version",
    ],
    [
      "no key",
      upgradeRequest({}, { drop: ["Sec-WebSocket-Key"] }),
      400,
      "bad_key",
    ],
    ["key abc", upgradeRequest({ "Sec-WebSocket-Key": "abc" }), 400, "bad_key"],
    ["empty key", upgradeRequest({ "Sec-WebSocket-Key": "" }), 400, "bad_key"],
    [
      "key of 15 bytes",
      upgradeRequest({ "Sec-WebSocket-Key": btoa("x".repeat(15)) }),
      400,
      "bad_key",
    ],
    [
      "key of 17 bytes",
      upgradeRequest({ "Sec-WebSocket-Key": btoa("x".repeat(17)) }),
      400,
      "bad_key",
    ],
    [
      "24 non-base64 characters",
      upgradeRequest({ "Sec-WebSocket-Key": "!!!!!!!!!!!!!!!!!!!!!!==" }),
      400,
      "bad_key",
    ],
    [
      "huge protocol header",
      upgradeRequest({ "Sec-WebSocket-Protocol": "a,".repeat(3000) }),
      400,
      "bad_protocol",
    ],
  ];
  for (const [name, request, status, reason] of cases) {
    await t.step(`${name} → ${status}`, () => {
      const refusal = checkHandshake(request);
      assert.ok(refusal, "expected a refusal");
      assert.equal(refusal.status, status);
      assert.equal(refusal.reason, reason);
      if (status === 426) {
        assert.equal(refusal.headers?.["Sec-WebSocket-Version"], "13");
      }
      if (status === 405) assert.equal(refusal.headers?.Allow, "GET");
    });
  }
  await t.step(
    "the seed's headers pass, tokens are case-insensitive comma lists",
    () => {
      assert.equal(checkHandshake(upgradeRequest()), null);
      assert.equal(
        checkHandshake(
          upgradeRequest({
            Upgrade: "WebSocket",
            Connection: "keep-alive, Upgrade",
          }),
        ),
        null,
      );
      assert.equal(
        checkHandshake(upgradeRequest({ Connection: "UPGRADE" })),
        null,
      );
    },
  );
});

Deno.test("isValidKey accepts only base64 of 16 bytes", () => {
  assert.ok(isValidKey(SAMPLE_KEY));
  assert.ok(
    isValidKey(
      btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16)))),
    ),
  );
  assert.ok(!isValidKey(null));
  assert.ok(!isValidKey(`${SAMPLE_KEY}, ${SAMPLE_KEY}`));
  assert.ok(!isValidKey(SAMPLE_KEY.slice(0, -2)));
});

Deno.test("isUpgradeAttempt tells upgrade attempts from plain HTTP", () => {
  assert.ok(isUpgradeAttempt(upgradeRequest()));
  assert.ok(
    isUpgradeAttempt(
      new Request(BASE, { headers: { "sec-websocket-key": "x" } }),
    ),
  );
  assert.ok(!isUpgradeAttempt(new Request(BASE)));
  assert.ok(
    !isUpgradeAttempt(new Request(BASE, { headers: { upgrade: "h2c" } })),
  );
});

Deno.test("negotiateProtocol picks the server's first choice among those offered", () => {
  assert.equal(negotiateProtocol("a, b", ["b", "a"]), "b");
  assert.equal(negotiateProtocol("a,b", ["b"]), "b");
  assert.equal(negotiateProtocol("x, y", ["a"]), undefined);
  assert.equal(negotiateProtocol(null, ["a"]), undefined);
  assert.equal(negotiateProtocol("a", []), undefined);
});

Deno.test("createServer answers refusals with a status and a text body, in-process", async (t) => {
  const { app } = createTestApp({
    allowedOrigins: ["https://app.example.com"],
  });
  await t.step("version 8 → 426 with Sec-WebSocket-Version: 13", async () => {
    const response = await app.fetch(
      upgradeRequest({ "Sec-WebSocket-Version": "8" }),
    );
    assert.equal(response.status, 426);
    assert.equal(response.headers.get("sec-websocket-version"), "13");
    assert.match(await response.text(), /13/);
  });
  await t.step("upgrade on another path → 404", async () => {
    const response = await app.fetch(
      upgradeRequest({}, { url: "http://127.0.0.1:8000/other" }),
    );
    assert.equal(response.status, 404);
    await response.body?.cancel();
  });
  await t.step("plain HTTP goes to the route table", async () => {
    const ok = await app.fetch(new Request("http://127.0.0.1:8000/healthz"));
    assert.deepEqual(await ok.json(), { ok: true });
    const missing = await app.fetch(new Request("http://127.0.0.1:8000/none"));
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).error, "not_found");
  });
});

Deno.test("the handshake over real TCP", async (t) => {
  const { app } = createTestApp({
    allowedOrigins: ["https://app.example.com"],
  });
  const server = startServer(app);
  const raw = async (head: string) => {
    const peer = await RawPeer.connect(server.port);
    try {
      return await peer.request(head);
    } finally {
      peer.close();
    }
  };
  const get = (extra: Record<string, string>, line = "GET / HTTP/1.1") =>
    raw(requestHead(line, handshakeHeaders(server.port, extra)));
  try {
    await t.step(
      "a valid handshake → 101 with the RFC's sample accept",
      async () => {
        const response = await get({});
        assert.equal(response.status, 101);
        assert.equal(
          response.headers.get("sec-websocket-accept"),
          "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
        );
        assert.equal(response.headers.get("sec-websocket-extensions"), null);
      },
    );
    await t.step("version 8 → 426 Sec-WebSocket-Version: 13", async () => {
      const response = await get({ "Sec-WebSocket-Version": "8" });
      assert.equal(response.status, 426);
      assert.equal(response.headers.get("sec-websocket-version"), "13");
    });
    await t.step("POST → 405 Allow: GET", async () => {
      const response = await get({}, "POST / HTTP/1.1");
      assert.equal(response.status, 405);
      assert.equal(response.headers.get("allow"), "GET");
    });
    await t.step("two keys → 400", async () => {
      const response = await raw(requestHead("GET / HTTP/1.1", [
        ...Object.entries(handshakeHeaders(server.port)),
        ["Sec-WebSocket-Key", SAMPLE_KEY],
      ]));
      assert.equal(response.status, 400);
      assert.match(response.text, /Sec-WebSocket-Key/);
    });
    await t.step("key abc → 400", async () => {
      assert.equal((await get({ "Sec-WebSocket-Key": "abc" })).status, 400);
    });
    await t.step("Upgrade: h2c with WebSocket headers → 400", async () => {
      assert.equal((await get({ Upgrade: "h2c" })).status, 400);
    });
    await t.step("mixed-case tokens in lists → 101", async () => {
      const response = await get({
        Upgrade: "WebSocket",
        Connection: "keep-alive, Upgrade",
      });
      assert.equal(response.status, 101);
    });
    await t.step("a foreign Origin → 403", async () => {
      for (
        const origin of [
          "https://evil.example",
          "null",
          "https://app.example.com.evil.net",
          "https://evilapp.example.com",
        ]
      ) {
        assert.equal((await get({ Origin: origin })).status, 403, origin);
      }
    });
    await t.step("the own host and the allowlist → 101", async () => {
      assert.equal(
        (await get({ Origin: `http://127.0.0.1:${server.port}` })).status,
        101,
      );
      assert.equal(
        (await get({ Origin: "https://app.example.com" })).status,
        101,
      );
    });
    await t.step(
      "HTTP/1.0 is upgraded: Request hides the HTTP version (a documented gap)",
      async () => {
        const response = await get({}, "GET / HTTP/1.0");
        assert.equal(response.status, 101);
      },
    );
  } finally {
    await server.close();
  }
});

Deno.test("the seed's curl handshake answers 101 with the sample accept", async () => {
  const { app } = createTestApp();
  const server = startServer(app);
  try {
    const output = await new Deno.Command("curl", {
      args: [
        "-H",
        "Upgrade: websocket",
        "-H",
        "Connection: Upgrade",
        "-H",
        `Sec-WebSocket-Key: ${SAMPLE_KEY}`,
        "-H",
        "Sec-WebSocket-Version: 13",
        "-sSvN",
        "--max-time",
        "1",
        `http://localhost:${server.port}`,
        "--http1.1",
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const log = new TextDecoder().decode(output.stderr);
    assert.match(log, /< HTTP\/1.1 101 Switching Protocols/);
    assert.match(log, /< sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/i);
  } finally {
    await server.close();
  }
});

Deno.test("requireOrigin refuses handshakes without Origin", async () => {
  const { app } = createTestApp({ requireOrigin: true });
  const refused = await app.fetch(upgradeRequest());
  assert.equal(refused.status, 403);
  await refused.body?.cancel();
});

Deno.test("authenticate gives typed state or refuses the handshake", async (t) => {
  const { app } = createTestApp();
  const server = startServer(app);
  try {
    await t.step("state flows to handlers", async () => {
      const socket = await TestSocket.open(
        `${server.wsUrl}/?user=ada&role=admin`,
      );
      const reply = await socket.request("whoami");
      assert.deepEqual(
        { ...(reply.data as object), id: undefined },
        { id: undefined, user: "ada", role: "admin", protocol: "" },
      );
      await socket.close();
    });
    for (
      const [user, status] of [["nobody", 401], ["banned", 403], [
        "explode",
        500,
      ]] as const
    ) {
      await t.step(`?user=${user} → ${status}`, async () => {
        const peer = await RawPeer.connect(server.port);
        try {
          const response = await peer.request(
            requestHead(
              `GET /?user=${user} HTTP/1.1`,
              handshakeHeaders(server.port),
            ),
          );
          assert.equal(response.status, status);
        } finally {
          peer.close();
        }
      });
    }
  } finally {
    await server.close();
  }
});

Deno.test("subprotocols: the chosen one is echoed, none when none is shared", async () => {
  const { app } = createTestApp({ protocols: ["duplex.v2", "duplex.v1"] });
  const server = startServer(app);
  try {
    const both = await TestSocket.open(server.wsUrl, [
      "duplex.v1",
      "duplex.v2",
    ]);
    assert.equal(both.ws.protocol, "duplex.v2");
    assert.equal(
      ((await both.request("whoami")).data as { protocol: string }).protocol,
      "duplex.v2",
    );
    await both.close();
    const none = await TestSocket.open(server.wsUrl);
    assert.equal(none.ws.protocol, "");
    await none.close();
    const peer = await RawPeer.connect(server.port);
    const response = await peer.handshake(server.port, {
      "Sec-WebSocket-Protocol": "chat, mqtt",
    });
    assert.equal(response.headers.get("sec-websocket-protocol"), null);
    peer.close();
  } finally {
    await server.close();
  }
});

Deno.test("maxConnections: past it handshakes get 503 with Retry-After", async () => {
  const { app } = createTestApp({ maxConnections: 2, retryAfter: 7 });
  const server = startServer(app);
  const sockets = [
    await TestSocket.open(server.wsUrl),
    await TestSocket.open(server.wsUrl),
  ];
  try {
    const peer = await RawPeer.connect(server.port);
    const response = await peer.request(
      requestHead("GET / HTTP/1.1", handshakeHeaders(server.port)),
    );
    peer.close();
    assert.equal(response.status, 503);
    assert.equal(response.headers.get("retry-after"), "7");
    await sockets.pop()!.close();
    const again = await TestSocket.open(server.wsUrl);
    sockets.push(again);
  } finally {
    for (const socket of sockets) await socket.close();
    await server.close();
  }
});

Deno.test("createServer rejects invalid options at creation", async (t) => {
  const { app: _ } = createTestApp();
  const bad: [
    string,
    Record<string, unknown>,
    typeof TypeError | typeof RangeError,
  ][] = [
    ["maxConnections 0", { maxConnections: 0 }, RangeError],
    ["maxMessageSize -1", { maxMessageSize: -1 }, RangeError],
    ["closeTimeout 1.5", { closeTimeout: 1.5 }, RangeError],
    ["path without /", { path: "ws" }, TypeError],
    [
      "origin with a path",
      { allowedOrigins: ["https://a.example/x"] },
      TypeError,
    ],
    ["origin not a URL", { allowedOrigins: ["nope"] }, TypeError],
    ["protocol with a space", { protocols: ["a b"] }, TypeError],
    ["httpTransport not made", { httpTransport: true }, TypeError],
    ["apiKey, now a package", { apiKey: "a key of 16 characters" }, TypeError],
  ];
  for (const [name, options, type] of bad) {
    await t.step(name, () => {
      assert.throws(() => createTestApp(options), type);
    });
  }
});

Deno.test("every refusal is logged with its reason and status, never its token", async () => {
  const lines: string[] = [];
  const logger = createLogger({
    level: "info",
    write: (line) => lines.push(line),
  });
  const { app } = createTestApp({ logger });
  for (
    const [request, reason] of [
      [upgradeRequest({ "Sec-WebSocket-Version": "8" }), "bad_version"],
      [upgradeRequest({ Origin: "https://evil.example" }), "bad_origin"],
      [
        upgradeRequest({}, {
          url: "http://127.0.0.1:8000/?user=nobody&token=s3cret",
        }),
        "auth",
      ],
    ] as const
  ) {
    const response = await app.fetch(request);
    await response.body?.cancel();
    const last = JSON.parse(lines[lines.length - 1]);
    assert.equal(last.msg, "handshake refused");
    assert.equal(last.reason, reason);
    assert.equal(last.status, response.status);
  }
  assert.doesNotMatch(lines.join("\n"), /s3cret/);
});

Deno.test("refusal logs are bounded: long fields cut, at most 20 lines a second, the rest counted", async () => {
  const lines: string[] = [];
  const logger = createLogger({
    level: "info",
    write: (line) => lines.push(line),
  });
  const { app } = createTestApp({ logger });
  const origin = `https://${"x".repeat(60_000)}.example`;
  for (let i = 0; i < 200; i++) {
    const response = await app.fetch(upgradeRequest({ Origin: origin }));
    await response.body?.cancel();
  }
  const refused = lines.filter((line) => line.includes("handshake refused"));
  assert.equal(refused.length, 20);
  assert.ok(lines.every((line) => line.length < 1_000), "fields are cut");
  await new Promise((resolve) => setTimeout(resolve, 1_050));
  const late = await app.fetch(upgradeRequest({ Origin: origin }));
  await late.body?.cancel();
  const summary = lines.map((line) => JSON.parse(line)).find((line) =>
    line.msg === "handshake refused suppressed"
  );
  assert.equal(summary?.count, 180);
});

Deno.test("subprotocols offered as a,b (no space) are negotiated, not refused", async () => {
  const { app } = createTestApp({ protocols: ["duplex.v1"] });
  const server = startServer(app);
  const peer = await RawPeer.connect(server.port);
  try {
    const response = await peer.handshake(server.port, {
      "Sec-WebSocket-Protocol": "chat,duplex.v1",
    });
    assert.equal(response.headers.get("sec-websocket-protocol"), "duplex.v1");
  } finally {
    peer.close();
    await server.close();
  }
});
