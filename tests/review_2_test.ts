/**
 * The second attack (`../shared/research/security-review-2.md`), finding by
 * finding, in process: each test reproduces what the review did and holds
 * the bound that now answers it. The findings that need processes, Redis
 * or a descriptor limit are in `review_2_process_test.ts`.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import {
  createServer,
  defineRequest,
  EventError,
  EventRouter,
  type Logger,
  silentLogger,
} from "@duplex-ws/duplex";
import { issueToken, jwtAuth } from "@duplex-ws/jwt";
import { delay, eventually, startServer, TestSocket } from "@duplex-ws/testing";
import { MemoryHistory, memoryOf } from "../lib/core/pubsub/history.ts";
import {
  KEYS_PER_TOPIC,
  MAX_KEYS,
  PublishKeys,
} from "../lib/core/pubsub/publish_keys.ts";
import { MAX_ERROR_LABELS } from "../lib/core/metrics.ts";
import { RawPeer, requestHead } from "./_raw.ts";

type Message = {
  event?: string;
  id?: number;
  data?: Record<string, unknown>;
  error?: { code: string; message: string };
};

/** Every message a socket gets within `ms` of quiet. */
async function drain(socket: TestSocket, ms = 200): Promise<Message[]> {
  const got: Message[] = [];
  for (;;) {
    try {
      got.push(await socket.next<Message>(ms));
    } catch {
      return got;
    }
  }
}

/** A logger that keeps every line. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const write = (message: string, fields?: Record<string, unknown>) =>
    lines.push(`${message} ${JSON.stringify(fields ?? {})}`);
  return { lines, debug: write, info: write, warn: write, error: write };
}

/** A router whose clients join topics with presence metadata and publish. */
function topicRouter() {
  return new EventRouter<unknown>()
    .on(
      "join",
      z.object({
        topic: z.string(),
        status: z.string().optional(),
        last: z.number().optional(),
      }),
      async ({ topic, status, last }, ctx) => {
        const joined = await ctx.join(topic, {
          presence: { meta: { status: status ?? "" } },
          last,
        });
        return { joined: joined.joined };
      },
    )
    .on(
      "say",
      z.object({
        topic: z.string(),
        text: z.string(),
        key: z.string().optional(),
      }),
      async ({ topic, text, key }, ctx) => {
        const result = await ctx.publish(topic, "said", { text }, { key });
        return { position: result.position, duplicate: result.duplicate };
      },
    );
}

Deno.test("N2 a presence diff lists at most maxMembers (truncated: true), and a status change is charged as a fan-out", async () => {
  const server = startServer(createServer({
    router: topicRouter(),
    logger: silentLogger,
    topics: [{ match: "*", presence: { maxMembers: 5 } }],
    presenceInterval: 100,
    presenceGrace: 0,
    maxConnectionsPerIp: 0,
    handshakesPerIpPerSecond: 0,
    topicChangesPerSecond: 0,
    addressBudget: 0,
    fanoutLimit: {
      deliveriesPerSecond: 40,
      bytesPerSecond: 0,
      burstSeconds: 1,
    },
  }));
  const watcher = await TestSocket.open(server.wsUrl);
  const crowd: TestSocket[] = [];
  try {
    await watcher.request<Message>("join", { topic: "room" });
    for (let i = 0; i < 12; i++) {
      const socket = await TestSocket.open(server.wsUrl);
      await socket.request<Message>("join", { topic: "room" });
      crowd.push(socket);
    }
    await delay(300);
    await drain(watcher);
    // Twelve members change their status within one interval.
    await Promise.all(
      crowd.map((s) =>
        s.request<Message>("join", { topic: "room", status: "away" })
      ),
    );
    const diffs = (await drain(watcher, 400)).filter((m) =>
      m.event === "presence.diff"
    );
    const listed = diffs.map((d) => Object.keys(d.data!.joins!).length);
    assert.ok(listed.every((n) => n <= 5), `diffs of ${listed}`);
    assert.ok(diffs.some((d) => d.data!.truncated === true));
    assert.equal(diffs.at(-1)!.data!.count, 13);
    // One member flipping its status reaches 12 others each time: 40
    // deliveries a second (and one second's burst) is a few flips.
    const replies = [];
    for (let i = 0; i < 10; i++) {
      replies.push(
        await crowd[0].request<Message>("join", {
          topic: "room",
          status: `s${i}`,
        }),
      );
    }
    const limited = replies.filter((r) => r.error?.code === "RATE_LIMITED");
    assert.ok(limited.length >= 6, `${limited.length} of 10 refused`);
  } finally {
    await watcher.close();
    await Promise.all(crowd.map((s) => s.close()));
    await server.close();
  }
});

const confirm = defineRequest("confirm", {
  data: z.undefined(),
  reply: z.boolean(),
});

Deno.test("N5 error codes a client chooses take at most MAX_ERROR_LABELS series; N16 an invalid one is INVALID_DATA and settles", async () => {
  const router = new EventRouter()
    .request(confirm)
    .on("ask", z.undefined(), async (_data, ctx) => {
      // The careless handler: a client's answer escapes as the reply.
      return await ctx.request(confirm, undefined, { timeout: 2000 });
    });
  const duplex = createServer({ router, logger: silentLogger });
  const server = startServer(duplex);
  const socket = await TestSocket.open(server.wsUrl);
  try {
    const ask = async (code: string) => {
      socket.json({ event: "ask", id: 1 });
      const request = await socket.next<Message>();
      socket.json({ id: request.id, error: { code, message: "no" } });
      return (await socket.next<Message>()).error!.code;
    };
    for (let i = 0; i < MAX_ERROR_LABELS + 30; i++) {
      assert.equal(await ask(`APP_${i}`), `APP_${i}`);
    }
    // N16: a code that is not one (lower case, too long) is INVALID_DATA.
    assert.equal(await ask("not a code"), "INVALID_DATA");
    assert.equal(await ask("X".repeat(200)), "INVALID_DATA");
    const metrics = duplex.metrics();
    const labels = [...metrics.matchAll(/duplex_errors_total\{code="([^"]+)"/g)]
      .map((m) => m[1]);
    const own = labels.filter((l) => l.startsWith("APP_"));
    assert.equal(own.length, MAX_ERROR_LABELS, labels.join());
    assert.ok(labels.includes("other"));
  } finally {
    await socket.close();
    await server.close();
  }
});

/** An HS256 JWT with exactly `claims` (no `iat` added), as a foreign issuer makes it. */
async function rawJwt(claims: Record<string, unknown>, secret: string) {
  const b64 = (text: string) =>
    btoa(text).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  const body = `${b64('{"alg":"HS256","typ":"JWT"}')}.${
    b64(JSON.stringify(claims))
  }`;
  const key = await crypto.subtle.importKey(
    "raw",
    new TextEncoder().encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = new Uint8Array(
    await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(body)),
  );
  return `${body}.${b64(String.fromCharCode(...mac))}`;
}

const SECRET = "review two: a secret of 32 bytes or more, thanks";

function whoRouter() {
  return new EventRouter<string>().on(
    "who",
    z.undefined(),
    (_data, ctx) => ctx.state,
  );
}

Deno.test("N6 after reauthenticate the old, unexpired token is refused (token_stale); a fresh one keeps the connection", async () => {
  const duplex = createServer({
    router: whoRouter(),
    logger: silentLogger,
    refreshGrace: 1500,
    auth: jwtAuth<string>({
      algorithms: ["HS256"],
      key: SECRET,
      state: (claims) => claims.sub,
    }),
  });
  const server = startServer(duplex);
  const now = Math.floor(Date.now() / 1000);
  const old = await rawJwt(
    { sub: "ada", iat: now - 60, exp: now + 3600 },
    SECRET,
  );
  const socket = await TestSocket.open(server.wsUrl, { token: old });
  try {
    assert.equal(duplex.reauthenticate("ada"), 1);
    assert.equal((await socket.next<Message>()).event, "auth.refresh");
    const stale = await socket.request<Message>("auth.refresh", { token: old });
    assert.equal(stale.error?.code, "UNAUTHORIZED");
    const fresh = await issueToken({ sub: "ada" }, {
      key: SECRET,
      expiresIn: 60,
    });
    const ok = await socket.request<Message>("auth.refresh", { token: fresh });
    assert.equal(ok.error, undefined);
    assert.equal((await socket.request<Message>("who")).data, "ada");
    assert.match(duplex.metrics(), /result="token_stale"\} 1/);
  } finally {
    await socket.close();
    await server.close();
  }
});

Deno.test("N22 jwtAuth's maxTokenAge refuses a token signed for longer, or without iat", async () => {
  const server = startServer(createServer({
    router: whoRouter(),
    logger: silentLogger,
    auth: jwtAuth<string>({
      algorithms: ["HS256"],
      key: SECRET,
      maxTokenAge: 3600,
      state: (claims) => claims.sub,
    }),
  }));
  const now = Math.floor(Date.now() / 1000);
  try {
    const status = async (claims: Record<string, unknown>) => {
      const response = await fetch(server.url, {
        headers: {
          upgrade: "websocket",
          connection: "Upgrade",
          "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
          "sec-websocket-version": "13",
          authorization: `Bearer ${await rawJwt(claims, SECRET)}`,
        },
      });
      await response.body?.cancel();
      return response.status;
    };
    assert.equal(
      await status({ sub: "a", iat: now, exp: now + 86_400 * 365 }),
      401,
    );
    assert.equal(await status({ sub: "a", exp: now + 600 }), 401);
    const socket = await TestSocket.open(server.wsUrl, {
      token: await rawJwt({ sub: "a", iat: now, exp: now + 600 }, SECRET),
    });
    assert.equal((await socket.request<Message>("who")).data, "a");
    await socket.close();
  } finally {
    await server.close();
  }
});

Deno.test("N9 history counts memory, not code units: a two-byte text costs twice as much of the cap", () => {
  assert.equal(memoryOf("abc"), 3 + 64);
  assert.equal(memoryOf("ab€"), 6 + 64);
  const kept = (char: string) => {
    const history = new MemoryHistory({ maxTopics: 1000, maxBytes: 20_000 });
    const policy = { size: 5, ttl: 60_000, keyTtl: 1000 };
    const text = `{"event":"m","data":{"text":"${char}${"x".repeat(300)}"}}`;
    for (let t = 0; t < 100; t++) {
      for (let i = 0; i < 5; i++) history.append(`t${t}`, text, policy);
    }
    // Past the cap only the topic just published to may be over.
    assert.ok(history.bytes <= 20_000 + 5 * memoryOf(text), `${history.bytes}`);
    return history.topics;
  };
  const latin = kept("x");
  const wide = kept("€");
  assert.ok(wide <= Math.ceil(latin / 2) + 1, `${wide} vs ${latin} topics`);
});

Deno.test("N13 idempotency keys are bounded per topic: one topic's flood cannot push out another's", () => {
  const keys = new PublishKeys();
  const position = (offset: number) => ({ offset, epoch: "e", until: 1e15 });
  keys.set("quiet", "mine", position(1));
  for (let i = 0; i < KEYS_PER_TOPIC * 2; i++) {
    keys.set("loud", `k${i}`, position(i));
  }
  assert.ok(keys.get("quiet", "mine", 0), "the quiet topic's key survives");
  assert.equal(keys.get("loud", "k0", 0), undefined, "the flood's oldest went");
  // Across many topics the whole is capped, taken from the largest topic.
  for (let t = 0; t < MAX_KEYS / 100 + 10; t++) {
    for (let i = 0; i < 100; i++) keys.set(`t${t}`, `k${i}`, position(i));
  }
  assert.ok(keys.size <= MAX_KEYS);
  assert.ok(keys.get("quiet", "mine", 0), "still there");
});

Deno.test("N21 idempotency keys are scoped per subject: another client's key is not a duplicate", async () => {
  const server = startServer(createServer({
    router: topicRouter(),
    logger: silentLogger,
    topics: [{ match: "*", history: true }],
  }));
  const [a, b] = [
    await TestSocket.open(server.wsUrl),
    await TestSocket.open(server.wsUrl),
  ];
  try {
    await a.request<Message>("join", { topic: "t" });
    await b.request<Message>("join", { topic: "t" });
    const first = await a.request<Message>("say", {
      topic: "t",
      text: "a",
      key: "k1",
    });
    const again = await a.request<Message>("say", {
      topic: "t",
      text: "a",
      key: "k1",
    });
    const other = await b.request<Message>("say", {
      topic: "t",
      text: "b",
      key: "k1",
    });
    assert.equal(first.data!.duplicate, false);
    assert.equal(again.data!.duplicate, true, "the same client's retry");
    assert.equal(other.data!.duplicate, false, "another client's own key");
    assert.notDeepEqual(other.data!.position, first.data!.position);
  } finally {
    await a.close();
    await b.close();
    await server.close();
  }
});

Deno.test("N10 the connections of one address share a fan-out budget: ten connections send what four would", async () => {
  const app = (addressBudget: number) =>
    createServer({
      router: topicRouter(),
      logger: silentLogger,
      maxConnectionsPerIp: 0,
      handshakesPerIpPerSecond: 0,
      addressBudget,
      fanoutLimit: {
        deliveriesPerSecond: 20,
        burstSeconds: 1,
        bytesPerSecond: 0,
      },
    });
  const accepted = async (addressBudget: number) => {
    const server = startServer(app(addressBudget));
    const sockets = await Promise.all(
      Array.from({ length: 10 }, () => TestSocket.open(server.wsUrl)),
    );
    try {
      await Promise.all(
        sockets.map((s) => s.request<Message>("join", { topic: "t" })),
      );
      let ok = 0;
      for (const socket of sockets) {
        for (let i = 0; i < 3; i++) {
          const reply = await socket.request<Message>("say", {
            topic: "t",
            text: "x",
          });
          if (!reply.error) ok++;
        }
      }
      return ok;
    } finally {
      await Promise.all(sockets.map((s) => s.close()));
      await server.close();
    }
  };
  // Each say reaches 10 members: a connection's burst of 20 is two says;
  // four connections' worth, eight, for all ten.
  const alone = await accepted(0);
  const shared = await accepted(4);
  assert.ok(alone >= 18, `${alone} without a shared budget`);
  assert.ok(shared <= 10, `${shared} with addressBudget 4`);
});

Deno.test("N14 recovering a room whose history is past the slow-consumer cap: sent in paced parts, never 1013", async () => {
  const server = startServer(createServer({
    router: topicRouter(),
    logger: silentLogger,
    maxBufferedAmount: 256 * 1024,
    maxReplay: 600,
    fanoutLimit: false,
    topics: [{ match: "*", history: { size: 600 } }],
  }));
  const writer = await TestSocket.open(server.wsUrl);
  const reader = await TestSocket.open(server.wsUrl);
  try {
    await writer.request<Message>("join", { topic: "big" });
    for (let i = 0; i < 600; i++) {
      await writer.request<Message>("say", {
        topic: "big",
        text: `${i}:${"x".repeat(500)}`,
      });
    }
    // 600 × 0.5 KB of replay against a 256 KiB cap (small texts: the Deno
    // client sends larger ones 40 ms late, see docs/CONFORMANCE.md).
    reader.json({ event: "join", data: { topic: "big", last: 600 }, id: 7 });
    let said = 0;
    for (;;) {
      const message = await reader.next<Message>(5000);
      if (message.event === "said") said++;
      if (message.id === 7) break;
    }
    assert.equal(said, 600);
    assert.equal(
      (await reader.request<Message>("say", { topic: "big", text: "ok" }))
        .error,
      undefined,
    );
  } finally {
    await writer.close();
    await reader.close();
    await server.close();
  }
});

Deno.test("N15 an async authorize asked before a narrowing refresh is asked again for the new identity", async () => {
  let release: (() => void) | undefined;
  const server = startServer(createServer({
    router: topicRouter(),
    logger: silentLogger,
    auth: jwtAuth<string[]>({
      algorithms: ["HS256"],
      key: SECRET,
      state: (claims) => (claims.rooms as string[]) ?? [],
      authorize: async (identity, topic) => {
        if (topic === "slow") await new Promise<void>((r) => release = r);
        return identity.state.includes(topic);
      },
    }),
  }));
  const token = (rooms: string[]) =>
    issueToken({ sub: "ada", rooms }, { key: SECRET, expiresIn: 60 });
  const socket = await TestSocket.open(server.wsUrl, {
    token: await token(["slow"]),
  });
  try {
    socket.json({ event: "join", data: { topic: "slow" }, id: 1 });
    await eventually(() => release !== undefined, 2000, "the verdict to wait");
    // The refresh narrows the identity while the verdict is pending.
    const refreshed = await socket.request<Message>("auth.refresh", {
      token: await token([]),
    });
    assert.equal(refreshed.error, undefined);
    const first = release!;
    release = undefined;
    first();
    await eventually(() => release !== undefined, 2000, "asked again");
    release!();
    const reply = await socket.next<Message>();
    assert.equal(reply.id, 1);
    assert.equal(reply.error?.code, "FORBIDDEN");
  } finally {
    await socket.close();
    await server.close();
  }
});

Deno.test("N12 an upgrade with a Host that is no URL is a 400 with no stack logged; N19 X-Forwarded-For counts only from a listed proxy", async () => {
  const logger = recordingLogger();
  const server = startServer(createServer({
    router: new EventRouter(),
    logger,
    trustProxy: 1,
    trustedProxies: ["10.0.0.0/8"],
    maxConnectionsPerIp: 1,
  }));
  try {
    const peer = await RawPeer.connect(server.port);
    const response = await peer.request(requestHead("GET / HTTP/1.1", {
      Host: "[",
      Upgrade: "websocket",
      Connection: "Upgrade",
      "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
      "Sec-WebSocket-Version": "13",
    }));
    peer.close();
    assert.equal(response.status, 400);
    assert.ok(!logger.lines.some((l) => /\n\s+at /.test(l)), "no stack");
    // The peer (127.0.0.1) is not a listed proxy: a forged X-Forwarded-For
    // gives it no other address, so its second socket is over the cap.
    const first = await TestSocket.open(server.wsUrl, {
      headers: { "x-forwarded-for": "1.1.1.1" },
    });
    const second = await fetch(server.url, {
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
        "x-forwarded-for": "2.2.2.2",
      },
    });
    await second.body?.cancel();
    assert.equal(second.status, 429);
    await first.close();
    assert.ok(
      logger.lines.some((l) => /trustProxy/.test(l)) === false,
      "with a list there is no warning",
    );
  } finally {
    await server.close();
  }
});

Deno.test("N20 trustProxy without trustedProxies warns at start", async () => {
  const logger = recordingLogger();
  const server = startServer(createServer({
    router: new EventRouter(),
    logger,
    trustProxy: 1,
  }));
  await server.close();
  assert.ok(
    logger.lines.some((l) => /trustedProxies/.test(l)),
    logger.lines.join("\n"),
  );
});

Deno.test("an application error is sent as an EventError escapes it", async () => {
  // Guard against a regression of N16's fix: a handler's own valid code stays.
  const router = new EventRouter().on("no", z.undefined(), () => {
    throw new EventError("BID_TOO_LOW", "too low");
  });
  const server = startServer(createServer({ router, logger: silentLogger }));
  const socket = await TestSocket.open(server.wsUrl);
  try {
    assert.equal(
      (await socket.request<Message>("no")).error?.code,
      "BID_TOO_LOW",
    );
  } finally {
    await socket.close();
    await server.close();
  }
});
