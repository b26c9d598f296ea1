/**
 * Streamed replies (`ctx.stream`, `client.stream`, docs/PROTOCOL.md §8):
 * a long stream survives cuts and arrives once, in order; cancel reaches
 * the handler's signal; a second connection of the subject attaches; an
 * ended stream expires after its window; a reader that does not read makes
 * `write` wait; on Redis, a resume lands on the other node.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import {
  createServer,
  EventError,
  EventRouter,
  type ServerOptions,
  silentLogger,
} from "@duplex-ws/duplex";
import { DuplexClient, RequestError } from "@duplex-ws/client";
import { RedisBackplane } from "@duplex-ws/redis";
import {
  delay,
  eventually,
  startProxy,
  startServer,
  TestSocket,
} from "@duplex-ws/testing";
import { NO_REDIS, startRedis } from "./_redis.ts";
import { buildFrame, Opcode, RawPeer } from "./_raw.ts";

/** What the handlers saw, for the assertions. */
const seen = { aborted: 0, abortedAt: 0, written: 0 };

const router = new EventRouter<{ user: string }>()
  .on(
    "count",
    z.object({ n: z.number().int(), every: z.number() }),
    ({ n, every }, ctx) =>
      ctx.stream<number, { total: number }>(async (s) => {
        for (let i = 1; i <= n; i++) {
          await s.write(i);
          if (every > 0) await delay(every);
        }
        return { total: n };
      }),
    { stream: z.number() },
  )
  .on("forever", z.undefined(), (_data, ctx) =>
    ctx.stream(async (s) => {
      while (!s.signal.aborted) {
        await s.write("tick").catch(() => {});
        await delay(5);
      }
      seen.aborted++;
      seen.abortedAt = Date.now();
    }))
  .on("fails", z.undefined(), (_data, ctx) =>
    ctx.stream(async (s) => {
      await s.write(1);
      throw new EventError("OUT_OF_TOKENS", "No more", { data: { left: 0 } });
    }))
  .on(
    "big",
    z.object({ count: z.number().int() }),
    ({ count }, ctx) =>
      ctx.stream(async (s) => {
        const chunk = "x".repeat(16_384);
        for (let i = 0; i < count; i++) {
          await s.write(chunk);
          seen.written = i + 1;
        }
      }),
  );

function app(
  options: Partial<ServerOptions<{ user: string }, Record<never, never>>> = {},
) {
  return createServer({
    router,
    logger: silentLogger,
    auth: {
      authenticate: (request) => {
        const user = new URL(request.url).searchParams.get("user") ?? "anon";
        return { subject: user, state: { user } };
      },
    },
    ...options,
  });
}

Deno.test("a stream of 1,000 chunks with its connection cut three times arrives complete, once, in order, with its result", async () => {
  const server = startServer(app());
  const proxy = startProxy({ port: server.port });
  const client = new DuplexClient<typeof router>({
    url: proxy.wsUrl("/?user=ada"),
    minReconnectDelay: 20,
    maxReconnectDelay: 50,
  });
  try {
    const stream = client.stream("count", { n: 1000, every: 1 });
    const got: number[] = [];
    let cuts = 0;
    for await (const chunk of stream) {
      got.push(chunk);
      if (got.length % 250 === 0 && cuts < 3) {
        cuts++;
        proxy.cut();
      }
    }
    assert.equal(cuts, 3);
    assert.deepEqual(got, Array.from({ length: 1000 }, (_, i) => i + 1));
    assert.deepEqual(await stream.result, { total: 1000 });
  } finally {
    client.close();
    await proxy.close();
    await server.close();
  }
});

Deno.test("cancel stops the handler: its signal fires within a round trip; an error ends the iterator with the handler's code and data", async () => {
  const server = startServer(app());
  const client = new DuplexClient<typeof router>({
    url: `${server.wsUrl}/?user=bo`,
  });
  try {
    const stream = client.stream("forever", undefined);
    const iterator = stream[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).value, "tick");
    const before = seen.aborted;
    const asked = Date.now();
    stream.cancel();
    await eventually(() => seen.aborted === before + 1);
    const rtt = await (async () => {
      const t = Date.now();
      await client.request("count", { n: 0, every: 0 });
      return Date.now() - t;
    })();
    assert.ok(seen.abortedAt - asked <= rtt + 50, "within a round trip");
    await assert.rejects(
      stream.result,
      (e: RequestError) => e.code === "CANCELLED",
    );

    const failing = client.stream("fails", undefined);
    const chunks: unknown[] = [];
    await assert.rejects(
      async () => {
        for await (const chunk of failing) chunks.push(chunk);
      },
      (e: RequestError) =>
        e.code === "OUT_OF_TOKENS" && (e.data as { left: number }).left === 0,
    );
    assert.deepEqual(chunks, [1]);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("a second connection of the subject attaches to a running stream; another subject is refused; an ended stream expires after its window", async () => {
  const server = startServer(app({ streamWindow: 300 }));
  const [ada, tab, eve] = ["ada", "ada", "eve"].map((user) =>
    new DuplexClient<typeof router>({ url: `${server.wsUrl}/?user=${user}` })
  );
  try {
    const stream = ada.stream("count", { n: 40, every: 5 });
    const first = await stream.next();
    assert.equal(first.value, 1);
    const attached = tab.attach(stream.id!);
    const read: unknown[] = [];
    for await (const chunk of attached) read.push(chunk);
    assert.deepEqual(read, Array.from({ length: 40 }, (_, i) => i + 1));
    assert.deepEqual(await attached.result, { total: 40 });
    await assert.rejects(
      eve.attach(stream.id!).result,
      (e: RequestError) => e.code === "FORBIDDEN",
    );
    await delay(700);
    await assert.rejects(
      tab.attach(stream.id!).result,
      (e: RequestError) => e.code === "STREAM_EXPIRED",
    );
    const socket = await TestSocket.open(`${server.wsUrl}/?user=ada`);
    const raw = await socket.request<{ error?: { code: string } }>(
      "stream.resume",
      { stream: stream.id, since: { offset: 1, epoch: "x" } },
    );
    assert.equal(raw.error?.code, "STREAM_EXPIRED");
    await socket.close();
  } finally {
    for (const client of [ada, tab, eve]) client.close();
    await server.close();
  }
});

Deno.test("a reader that does not read makes write wait: the handler stops far short of its chunks, and the server stays up", async () => {
  const server = startServer(app());
  const peer = await RawPeer.connect(server.port);
  try {
    await peer.handshake(server.port, {}, "/?user=slow");
    const ask = { event: "big", data: { count: 2_000 }, id: 1 };
    await peer.write(buildFrame(Opcode.TEXT, JSON.stringify(ask)));
    await delay(1_000);
    const stalled = seen.written;
    await delay(500);
    assert.ok(
      stalled < 2_000,
      `wrote ${stalled} of 2,000 into a reader that reads nothing`,
    );
    assert.equal(seen.written, stalled, "and waits there");
    const other = await TestSocket.open(`${server.wsUrl}/?user=fine`);
    const reply = await other.request<{ data: unknown }>("count", {
      n: 0,
      every: 0,
    });
    assert.ok(reply.data);
    await other.close();
  } finally {
    peer.close();
    await server.close();
  }
});

Deno.test({
  name:
    "on Redis, a stream opened on node A resumes on node B after a cut, complete and in order",
  ignore: NO_REDIS,
  async fn() {
    const redis = await startRedis();
    const [a, b] = [0, 1].map(() =>
      app({ backplane: new RedisBackplane({ url: redis.url }) })
    );
    const [sa, sb] = [startServer(a), startServer(b)];
    await Promise.all([a.ready, b.ready]);
    const proxy = startProxy({ port: sa.port });
    let connects = 0;
    const client = new DuplexClient<typeof router>({
      url: () =>
        connects++ === 0 ? proxy.wsUrl("/?user=ada") : `${sb.wsUrl}/?user=ada`,
      minReconnectDelay: 20,
    });
    try {
      const stream = client.stream("count", { n: 300, every: 2 });
      const got: number[] = [];
      for await (const chunk of stream) {
        got.push(chunk);
        if (got.length === 100) proxy.cut();
      }
      assert.ok(connects >= 2, "resumed on node B");
      assert.deepEqual(got, Array.from({ length: 300 }, (_, i) => i + 1));
      assert.deepEqual(await stream.result, { total: 300 });
    } finally {
      client.close();
      await proxy.close();
      await sa.close();
      await sb.close();
      await redis.close();
    }
  },
});
