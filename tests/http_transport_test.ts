/**
 * The HTTP transport (PROTOCOL.md §7): the chat between a WebSocket member
 * and an HTTP member, both ways; a stream cut and resumed; the client
 * falling back by itself behind a proxy that refuses upgrades; every bad
 * `POST` answered; a query token never logged; shutdown closing the
 * stream; and, on Redis, a `POST` to the other node forwarded to the
 * session's own.
 */

import assert from "node:assert/strict";
import {
  BroadcastChannelBackplane,
  type Logger,
  silentLogger,
} from "@duplex-ws/duplex";
import { DuplexClient } from "@duplex-ws/client";
import { SseReader } from "@duplex-ws/protocol";
import {
  delay,
  eventually,
  startProxy,
  startServer,
  type TestServer,
} from "@duplex-ws/testing";
import { type AppOptions, createApp } from "../routes/app.ts";
import type { ExampleRouter } from "../routes/events.ts";
import { TEST_IDENTITY, tokenFor } from "./_auth.ts";
import { startMain } from "./_process.ts";
import { createTestApp } from "./_app.ts";
import { reachedEngine } from "./_cluster.ts";
import { NO_REDIS, startRedis } from "./_redis.ts";

type Chat = DuplexClient<ExampleRouter>;

function serve(options: AppOptions = {}): TestServer {
  return startServer(createApp({
    identity: TEST_IDENTITY,
    logger: silentLogger,
    presenceGrace: 0,
    ...options,
  }));
}

function member(
  url: string,
  user: string,
  transports: ("websocket" | "sse")[],
): Chat {
  return new DuplexClient<ExampleRouter>({
    url,
    transports,
    minReconnectDelay: 50,
    getToken: () => tokenFor(user),
  });
}

/** Every chat message a client gets, as `from: text`. */
function heard(client: Chat): string[] {
  const lines: string[] = [];
  client.on("chat.message", (m) => lines.push(`${m.from}: ${m.text}`));
  return lines;
}

/** An open SSE stream read by hand: its events, as they come. */
async function stream(url: string, headers: Record<string, string> = {}) {
  const abort = new AbortController();
  const response = await fetch(url, {
    headers: { accept: "text/event-stream", ...headers },
    signal: abort.signal,
  });
  const events: { event: string; data: string; id?: string }[] = [];
  const reader = new SseReader();
  const reading = (async () => {
    try {
      const text = response.body!.pipeThrough(new TextDecoderStream());
      for await (const chunk of text) events.push(...reader.feed(chunk));
    } catch {
      // aborted
    }
  })();
  await eventually(() => events.length > 0, 5000, "the first event");
  const session = JSON.parse(events[0].data).data.session as string;
  return {
    response,
    events,
    session,
    async close() {
      abort.abort();
      await reading;
    },
  };
}

function post(url: string, session: string, body: BodyInit): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "duplex-session": session },
    body,
  });
}

/**
 * A real HTTP proxy in front of `port` that answers 403 to every upgrade and
 * forwards the rest, unless `answer` answers a request itself.
 */
function blockingProxy(
  port: number,
  answer: (request: Request) => Promise<Response | undefined> = () =>
    Promise.resolve(undefined),
): Deno.HttpServer<Deno.NetAddr> {
  return Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    async (request) => {
      if (request.headers.get("upgrade")) {
        return new Response("no websockets here", { status: 403 });
      }
      const own = await answer(request);
      if (own) return own;
      const target = new URL(request.url);
      target.port = String(port);
      return fetch(target, {
        method: request.method,
        headers: request.headers,
        body: request.body,
      });
    },
  );
}

Deno.test("HTTP transport: a WebSocket member and an HTTP member chat both ways; the stream resumes after a cut", async () => {
  const server = serve();
  const proxy = startProxy({ port: server.port });
  const ws = member(`${server.wsUrl}/`, "ada", ["websocket"]);
  const http = member(proxy.wsUrl("/"), "bob", ["sse"]);
  const [adaHeard, bobHeard] = [heard(ws), heard(http)];
  try {
    await ws.join("chat.join", { room: "r" });
    await http.join("chat.join", { room: "r" });
    assert.equal(http.transport, "sse");
    assert.equal(ws.transport, "websocket");
    await ws.request("chat.say", { room: "r", text: "hi bob" });
    await http.request("chat.say", { room: "r", text: "hi ada" });
    await eventually(() => adaHeard.length === 2 && bobHeard.length === 2);
    assert.deepEqual(bobHeard, ["ada: hi bob", "bob: hi ada"]);
    // The stream is cut; what is said meanwhile arrives once it resumes.
    proxy.cut({ refuseFor: 300 });
    await ws.request("chat.say", { room: "r", text: "while you were away" });
    await eventually(() => bobHeard.length === 3, 10_000, "the resumed stream");
    assert.equal(bobHeard[2], "ada: while you were away");
    assert.equal(new Set(bobHeard).size, 3, "each once");
  } finally {
    ws.close();
    http.close();
    await proxy.close();
    await server.close();
  }
});

Deno.test("HTTP transport: behind a proxy that refuses upgrades the typed client falls back to SSE by itself (and refuses to send binary frames up)", async () => {
  const server = serve();
  const blocker = blockingProxy(server.port);
  const url = `ws://127.0.0.1:${blocker.addr.port}/`;
  const client = member(url, "cy", ["websocket", "sse"]);
  try {
    const reply = await client.request("echo", "through HTTP");
    assert.equal(reply, "through HTTP");
    assert.equal(client.transport, "sse");
    // Binary frames do not go up over HTTP: refused, not thrown.
    assert.equal(client.sendBinary(new Uint8Array([1, 2])), false);
  } finally {
    client.close();
    await blocker.shutdown();
    await server.close();
  }
});

Deno.test("HTTP transport: the typed client's POSTs stay within the body the server takes: three messages, each under maxMessageSize and together over it, all answered on one stream", async () => {
  const server = serve();
  let streams = 0;
  const bodies: number[] = [];
  const counting = blockingProxy(server.port, async (request) => {
    if (request.method === "GET") streams++;
    if (request.method !== "POST") return undefined;
    const body = await request.text();
    bodies.push(new TextEncoder().encode(body).length);
    const target = new URL(request.url);
    target.port = String(server.port);
    return fetch(target, { method: "POST", headers: request.headers, body });
  });
  const client = member(`ws://127.0.0.1:${counting.addr.port}/`, "eve", [
    "sse",
  ]);
  try {
    assert.equal(await client.request("echo", "first"), "first");
    const big = "é".repeat(300_000); // 600,000 bytes
    const replies = await Promise.all(
      [1, 2, 3].map((i) => client.request("echo", `${i}${big}`)),
    );
    assert.deepEqual(replies.map((reply) => String(reply)[0]), ["1", "2", "3"]);
    assert.equal(streams, 1, "the session was lost and opened again");
    assert.ok(bodies.every((bytes) => bytes <= 1_048_576), `${bodies}`);
  } finally {
    client.close();
    await counting.shutdown();
    await server.close();
  }
});

Deno.test("HTTP transport: a stream a proxy stops passing on, without closing it, is given up after three missed heartbeats, and the client opens another", async () => {
  const server = serve({ idleTimeout: 1 }); // a comment line every 500 ms
  let streams = 0;
  const upstreams: ReadableStreamDefaultReader<Uint8Array>[] = [];
  // The first stream's welcome is passed on, then nothing more, ever.
  const stalling = blockingProxy(server.port, async (request) => {
    if (request.method !== "GET" || ++streams > 1) return undefined;
    const target = new URL(request.url);
    target.port = String(server.port);
    const upstream = await fetch(target, { headers: request.headers });
    const reader = upstream.body!.getReader();
    upstreams.push(reader);
    const first = await reader.read();
    return new Response(
      new ReadableStream({
        start: (controller) => controller.enqueue(first.value),
        cancel: () => reader.cancel(),
      }),
      { headers: upstream.headers },
    );
  });
  const client = member(`ws://127.0.0.1:${stalling.addr.port}/`, "fay", [
    "sse",
  ]);
  try {
    await eventually(() => streams === 2 && client.state === "open", 10_000);
    assert.equal(
      await client.request("echo", "through the second"),
      "through the second",
    );
    assert.equal(streams, 2);
    assert.equal(client.lastClose?.reason, "the stream went silent");
  } finally {
    client.close();
    for (const reader of upstreams) await reader.cancel().catch(() => {});
    await stalling.shutdown();
    await server.close();
  }
});

Deno.test("HTTP transport: a client that sends nothing, not even its keepalive, for twice IDLE_TIMEOUT is closed 1001 as a socket that answers no ping; the typed client's keepalives hold its session", async () => {
  const server = serve({ idleTimeout: 1 }); // comment lines every 500 ms
  const silent = await stream(`${server.url}/`);
  let streams = 0;
  const counting = blockingProxy(server.port, (request) => {
    if (request.method === "GET") streams++;
    return Promise.resolve(undefined);
  });
  const client = member(`ws://127.0.0.1:${counting.addr.port}/`, "gus", [
    "sse",
  ]);
  try {
    await eventually(
      () => silent.events.some((e) => e.event === "close"),
      5_000,
      "the silent client closed",
    );
    const close = silent.events.find((e) => e.event === "close")!;
    assert.deepEqual(JSON.parse(close.data), {
      code: 1001,
      reason: "No response from ping frame.",
    });
    assert.equal(await client.request("echo", "first"), "first");
    await delay(3_000); // more than the 2 s a silent client is given
    assert.equal(await client.request("echo", "still"), "still");
    assert.equal(streams, 1, "the typed client's session was closed");
  } finally {
    client.close();
    await silent.close();
    await counting.shutdown();
    await server.close();
  }
});

Deno.test("HTTP transport: the typed client sends a POST answered 503 again after its Retry-After, on the same stream", async () => {
  const server = serve();
  let streams = 0, refused = 0;
  // The first POST is answered 503.
  const busy = blockingProxy(server.port, async (request) => {
    if (request.method === "GET") streams++;
    if (request.method !== "POST" || refused > 0) return undefined;
    refused++;
    await request.body?.cancel();
    return new Response(null, { status: 503, headers: { "retry-after": "1" } });
  });
  const client = member(`ws://127.0.0.1:${busy.addr.port}/`, "di", [
    "websocket",
    "sse",
  ]);
  try {
    await eventually(() => client.transport === "sse" && streams === 1);
    const started = Date.now();
    assert.equal(await client.request("echo", "once refused"), "once refused");
    assert.equal(refused, 1);
    assert.ok(Date.now() - started >= 900, "sent again before Retry-After");
    assert.equal(streams, 1, "the session was dropped and opened again");
  } finally {
    client.close();
    await busy.shutdown();
    await server.close();
  }
});

Deno.test("HTTP transport: POST answers 202, 404 for an unknown session, 413 past the size; a query token is never logged; shutdown closes the stream", async () => {
  const lines: string[] = [];
  const logger: Logger = {
    debug() {},
    info: (m, f) => void lines.push(m + JSON.stringify(f ?? {})),
    warn: (m, f) => void lines.push(m + JSON.stringify(f ?? {})),
    error: (m, f) => void lines.push(m + JSON.stringify(f ?? {})),
  };
  const server = serve({ logger, maxMessageSize: 4096 });
  const token = await tokenFor("dee");
  const open = await stream(`${server.url}/?access_token=${token}`);
  try {
    assert.equal(
      open.response.headers.get("content-type"),
      "text/event-stream; charset=utf-8",
    );
    const ok = await post(
      server.url,
      open.session,
      '{"event":"whoami","id":1}\n',
    );
    assert.equal(ok.status, 202);
    await ok.body?.cancel();
    await eventually(() => open.events.some((e) => e.data.includes('"id":1')));
    const who = open.events.find((e) => e.data.includes('"id":1'))!;
    assert.equal(JSON.parse(who.data).data.user, "dee", "the query token's");
    const unknown = await post(server.url, "nope.nope", '{"event":"echo"}');
    assert.equal(unknown.status, 404);
    await unknown.body?.cancel();
    const big = await post(server.url, open.session, "x".repeat(5000));
    assert.equal(big.status, 413);
    await big.body?.cancel();
    const bad = await post(
      server.url,
      open.session,
      new Uint8Array([0xff, 0xfe]),
    );
    assert.equal(bad.status, 400);
    await bad.body?.cancel();
    assert.ok(
      !lines.some((l) => l.includes(token)),
      "the token is in a log line",
    );
    await server.close();
    await eventually(() => open.events.some((e) => e.event === "close"));
    const close = JSON.parse(
      open.events.find((e) => e.event === "close")!.data,
    );
    assert.equal(close.code, 1001);
  } finally {
    await open.close();
    await server.close();
  }
});

Deno.test("HTTP transport: a server not given httpTransport answers a stream's requests as plain HTTP; a client whose stream is refused tries WebSocket again", async () => {
  const server = startServer(createTestApp().app);
  const proxy = startProxy({ port: server.port });
  const client = new DuplexClient({
    url: proxy.wsUrl("/"),
    transports: ["websocket", "sse"],
    minReconnectDelay: 50,
  });
  try {
    const get = await fetch(server.url, {
      headers: { accept: "text/event-stream" },
    });
    assert.equal(get.status, 404);
    assert.equal(get.headers.get("content-type"), "application/json");
    await get.body?.cancel();
    const sent = await post(server.url, "a.b", '{"event":"echo"}');
    assert.equal(sent.status, 404);
    await sent.body?.cancel();
    assert.equal(await client.request("echo", "still here"), "still here");
    // Refused for a while: the stream it then tries is a 404, so the next
    // attempt is a WebSocket again, not a minute of streams.
    proxy.cut({ refuseFor: 300 });
    await eventually(() => client.state === "reconnecting");
    await eventually(() => client.state === "open", 5_000, "a WebSocket again");
    assert.equal(await client.request("echo", "back"), "back");
    assert.equal(client.transport, "websocket");
  } finally {
    client.close();
    await proxy.close();
    await server.close();
  }
});

/** A `POST` whose body does not end until `end` (which aborts it too): what the server decides without reading it. */
function hanging(url: string, session: string) {
  const abort = new AbortController();
  let body!: ReadableStreamDefaultController<Uint8Array>;
  const response = fetch(url, {
    method: "POST",
    headers: { "duplex-session": session },
    body: new ReadableStream<Uint8Array>({
      start(controller) {
        body = controller;
        controller.enqueue(new TextEncoder().encode("{"));
      },
    }),
    signal: abort.signal,
  }).then(async (r) => (await r.body?.cancel(), r), () => undefined);
  return {
    response,
    end() {
      body.close();
      abort.abort();
    },
  };
}

Deno.test("HTTP transport: what a POST may cost is decided before its body is read: 404 for a session that can be nowhere, two at once per session, 32 forwards at once per address, forwarded bytes charged to it (4 KiB at least per forward)", async () => {
  const channel = `duplex-post-${crypto.randomUUID()}`;
  const local = serve();
  const [a, b] = [0, 1].map(() =>
    serve({ backplane: new BroadcastChannelBackplane({ channel }) })
  );
  const open = await stream(`${local.url}/`);
  const far = await stream(`${a.url}/`);
  const held: ReturnType<typeof hanging>[] = [];
  try {
    // One node: an unknown session, or no session id at all, while the body still comes.
    for (const id of ["nope.nope", "nope", `${open.session}x`]) {
      held.push(hanging(local.url, id));
      assert.equal((await held.at(-1)!.response)?.status, 404, id);
    }
    // A session's own client sends one POST at a time: a third at once is 429.
    for (const request of held.splice(0)) request.end();
    held.push(
      hanging(local.url, open.session),
      hanging(local.url, open.session),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    const third = await post(local.url, open.session, '{"event":"echo"}');
    assert.equal(third.status, 429);
    assert.equal(third.headers.get("retry-after"), "5");
    await third.body?.cancel();
    // Forwards to another node's session: 32 at once from one address.
    for (let i = 0; i < 32; i++) held.push(hanging(b.url, far.session));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const over = await post(b.url, far.session, '{"event":"echo"}');
    assert.equal(over.status, 429);
    await over.body?.cancel();
    // Their places come back when they end.
    for (const request of held.splice(0)) request.end();
    await eventually(async () => {
      const sent = await post(b.url, far.session, '{"event":"echo","id":7}');
      await sent.body?.cancel();
      return sent.status === 202;
    });
    await eventually(() => far.events.some((e) => e.data.includes('"id":7')));
    const sent = await post(local.url, open.session, '{"event":"echo"}');
    assert.equal(sent.status, 202);
    await sent.body?.cancel();
    // Forwarded bytes are charged to the address: 4 MiB/s, a burst of 8.
    const mebibyte = "x".repeat(1_048_000);
    const statuses: number[] = [];
    while (statuses.length < 16 && statuses.at(-1) !== 429) {
      const forwarded = await post(b.url, `${far.session}x`, mebibyte);
      statuses.push(forwarded.status);
      await forwarded.body?.cancel();
    }
    assert.equal(statuses.at(-1), 429, `${statuses}`);
    assert.ok(statuses.length >= 9, "refused before the burst was spent");
    assert.ok(statuses.slice(0, -1).every((status) => status === 404));
    // An empty POST (a keepalive) is not free: each counts 4 KiB, so 2,000
    // of them, once the address may forward again, are over what it earns.
    await eventually(async () => {
      const again = await post(b.url, `${far.session}x`, "");
      await again.body?.cancel();
      return again.status === 404;
    });
    const empties: number[] = [];
    for (let round = 0; round < 2_000 / 32; round++) {
      const batch = await Promise.all(
        Array.from({ length: 32 }, () => post(b.url, `${far.session}x`, "")),
      );
      for (const response of batch) {
        empties.push(response.status);
        await response.body?.cancel();
      }
    }
    assert.ok(empties.includes(429), "empty forwards were free");
  } finally {
    for (const request of held) request.end();
    await Promise.all(held.map((request) => request.response));
    await open.close();
    await far.close();
    for (const server of [local, a, b]) await server.close();
  }
});

Deno.test({
  name:
    "HTTP transport on Redis: a POST to the other node reaches the session's own, in order; an unknown session is 404 there too, and one of a node that is not alive (or has died) at once",
  ignore: NO_REDIS,
  async fn() {
    const redis = await startRedis();
    // A node is dead a second after its last heartbeat.
    const env = {
      REDIS_URL: redis.url,
      LOG_LEVEL: "error",
      PRESENCE_TTL: "1000",
    };
    const [a, b] = [
      await startMain("listen", env),
      await startMain("listen", env),
    ];
    for (const node of [a, b]) await reachedEngine(node);
    const open = await stream(`${a.url}/`);
    try {
      const lines = Array.from(
        { length: 20 },
        (_, i) => JSON.stringify({ event: "echo", data: i, id: i + 1 }),
      );
      for (let i = 0; i < lines.length; i += 5) {
        const sent = await post(
          b.url,
          open.session,
          lines.slice(i, i + 5).join("\n"),
        );
        assert.equal(sent.status, 202);
        await sent.body?.cancel();
      }
      await eventually(() =>
        open.events.filter((e) => e.data.startsWith('{"id"')).length === 20
      );
      const replies = open.events.filter((e) => e.data.startsWith('{"id"'))
        .map((e) => JSON.parse(e.data).data);
      assert.deepEqual(replies, Array.from({ length: 20 }, (_, i) => i));
      const unknown = await post(b.url, `${open.session}x`, '{"event":"echo"}');
      assert.equal(unknown.status, 404);
      await unknown.body?.cancel();
      // A node that is not alive is not asked: 404 at once, not after the
      // forward's 5 s wait (during which the POST would hold a place).
      const started = performance.now();
      const ghost = await post(b.url, "ghost.session", '{"event":"echo"}');
      assert.equal(ghost.status, 404);
      await ghost.body?.cancel();
      assert.ok(performance.now() - started < 2_500, "waited for no answer");
      // The session's node dies: once what b knew of the live nodes is old,
      // a POST for it is 404 at once too, not held for the forward's wait.
      await a.stop("SIGKILL");
      await new Promise((resolve) => setTimeout(resolve, 5_500));
      const since = performance.now();
      const orphan = await post(b.url, open.session, '{"event":"echo"}');
      assert.equal(orphan.status, 404);
      await orphan.body?.cancel();
      assert.ok(performance.now() - since < 2_500, "asked a dead node");
    } finally {
      await open.close();
      await a.stop();
      await b.stop();
      await redis.close();
    }
  },
});
