/**
 * Delta compression per topic (`delta: "fossil"`, docs/PROTOCOL.md §10):
 * 10,000 random edits of a 4 KiB document reach typed clients that asked
 * for deltas exactly as published (one cut three times, one joining half
 * way), a client that did not ask gets full pushes, and a raw socket's
 * deltas, applied by hand, give back the full pushes byte for byte while
 * costing a fraction of their bytes.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import { createServer, EventRouter, silentLogger } from "@duplex-ws/duplex";
import { DuplexClient, type RejoinEvent } from "@duplex-ws/client";
import { RedisBackplane } from "@duplex-ws/redis";
import { NO_REDIS, startRedis } from "./_redis.ts";
import {
  applyDeltaPush,
  asciiJson,
  TOPIC_DELTA,
  topicDelta,
} from "@duplex-ws/protocol";
import * as fossil from "npm:fossil-delta@2.0.0";
import { applyFossilDelta, createFossilDelta } from "../lib/protocol/fossil.ts";
import {
  delay,
  eventually,
  startProxy,
  startServer,
  TestSocket,
} from "@duplex-ws/testing";

const Row = z.object({ id: z.number(), name: z.string(), value: z.number() });
const Doc = z.object({
  rev: z.number(),
  title: z.string(),
  rows: z.array(Row),
});
type Doc = z.infer<typeof Doc>;
const position = z.object({ offset: z.number(), epoch: z.string() });

const router = new EventRouter<unknown, { "doc.state": Doc }>()
  .on(
    "doc.join",
    z.object({
      doc: z.string(),
      since: position.optional(),
      delta: z.literal("fossil").optional(),
    }),
    ({ doc, since, delta }, ctx) => ctx.join(`doc:${doc}`, { since, delta }),
  )
  .push("doc.state", Doc);

function app(backplane?: RedisBackplane) {
  return createServer({
    backplane,
    router,
    logger: silentLogger,
    rateLimit: false,
    fanoutLimit: false,
    topics: [
      { match: "doc:*", delta: "fossil", history: { size: 10_000 } },
      { match: "plain:*", history: true },
    ],
  });
}

const WORDS = ["alpha", "beta", "gamma", "délta", "日本語", "🙂 smile", "x"];

/** A document of about 4 KiB, then random small edits of it. */
function* edits(count: number, seed = 7): Generator<Doc> {
  let state = seed;
  const random = () => (state = (state * 48271) % 2147483647) / 2147483647;
  const pick = <T>(list: T[]) => list[Math.floor(random() * list.length)];
  const doc: Doc = {
    rev: 0,
    title: "Quarterly plan",
    rows: Array.from({ length: 60 }, (_, id) => ({
      id,
      name: `${pick(WORDS)} row ${id}`,
      value: Math.floor(random() * 1e6),
    })),
  };
  for (let i = 0; i < count; i++) {
    const row = pick(doc.rows);
    if (random() < 0.5) row.value = Math.floor(random() * 1e6);
    else row.name = `${pick(WORDS)} ${pick(WORDS)}`;
    doc.rev = i + 1;
    yield structuredClone(doc);
  }
}

function typed(url: string) {
  return new DuplexClient<typeof router>({
    url,
    minReconnectDelay: 20,
    maxReconnectDelay: 50,
  });
}

Deno.test("10,000 random edits: delta clients (cut three times, joining half way) see every document as published; a full client too", async () => {
  const duplex = app();
  const server = startServer(duplex);
  const proxy = startProxy({ port: server.port });
  const cut = typed(proxy.wsUrl());
  const full = typed(server.wsUrl);
  const late = typed(server.wsUrl);
  const got = { cut: [] as Doc[], full: [] as Doc[], late: [] as Doc[] };
  cut.on("doc.state", (doc) => got.cut.push(doc));
  const rejoins: RejoinEvent[] = [];
  cut.onRejoin((event) => rejoins.push(event));
  full.on("doc.state", (doc) => got.full.push(doc));
  late.on("doc.state", (doc) => got.late.push(doc));
  const published: Doc[] = [];
  try {
    await cut.join("doc.join", { doc: "d", delta: "fossil" });
    await full.join("doc.join", { doc: "d" });
    const publish = async (doc: Doc) => {
      await duplex.publish("doc:d", "doc.state", doc);
      published.push(doc);
    };
    const source = edits(10_000);
    for (const doc of source) {
      await publish(doc);
      const count = published.length;
      // At the pace the direct client reads (a cut client recovers from
      // history, which a far faster publisher would outrun: recovered false).
      if (count % 100 === 0) {
        await eventually(() => got.full.length === count, 10_000);
      }
      if (count === 5_000) {
        await late.join("doc.join", { doc: "d", delta: "fossil" });
      }
      if ([2_000, 4_000, 7_000].includes(count)) {
        // Cut; publishing goes on until the client is back (bounded).
        const cuts = rejoins.length;
        proxy.cut({ refuseFor: 100 });
        for (let i = 0; i < 300 && rejoins.length === cuts; i++) {
          const next = source.next();
          if (!next.done) await publish(next.value);
          await delay(2);
        }
        await eventually(() => rejoins.length > cuts, 10_000, "a rejoin");
      }
    }
    await eventually(
      () =>
        got.cut.length === 10_000 && got.full.length === 10_000 &&
        got.late.at(-1)?.rev === 10_000,
      30_000,
      "every document",
    ).catch((error) => {
      const { cut, full, late } = got;
      console.error(cut.length, full.length, late.length, late.at(-1)?.rev);
      throw error;
    });
    const strip = (docs: Doc[]) =>
      docs.map(({ rev, title, rows }) => ({ rev, title, rows }));
    assert.deepEqual(strip(got.cut), published);
    assert.deepEqual(strip(got.full), published);
    assert.equal(rejoins.length, 3);
    assert.ok(rejoins.every((r) => r.recovered === true));
    const first = got.late[0].rev;
    assert.ok(first > 5_000 - 1, `the late joiner started at ${first}`);
    assert.deepEqual(strip(got.late), published.slice(first - 1));
  } finally {
    cut.close();
    full.close();
    late.close();
    await proxy.close();
    await server.close();
  }
});

/** Every text frame a raw member gets until `rev` reaches `last`. */
async function frames(socket: TestSocket, last: number): Promise<string[]> {
  const texts: string[] = [];
  for (;;) {
    const text = await socket.nextRaw(5_000) as string;
    texts.push(text);
    if (text.includes(`"offset":${last},`)) return texts;
  }
}

Deno.test("a raw member's deltas, applied by hand, are the full pushes byte for byte, in under a fifth of their bytes", async () => {
  const duplex = app();
  const server = startServer(duplex);
  const deltas = await TestSocket.open(server.wsUrl);
  const fulls = await TestSocket.open(server.wsUrl);
  try {
    const join = (socket: TestSocket, delta?: string) =>
      socket.request("doc.join", { doc: "raw", delta });
    await join(deltas, "fossil");
    await join(fulls);
    const pending = [frames(deltas, 500), frames(fulls, 500)];
    for (const doc of edits(500, 11)) {
      await duplex.publish("doc:raw", "doc.state", doc);
      if (doc.rev % 25 === 0) await delay(1);
    }
    const [small, big] = await Promise.all(pending);
    assert.equal(small.length, 500);
    let base = asciiJson(small[0]);
    const applied = [base];
    let kinds = 0;
    for (const text of small.slice(1)) {
      const push = JSON.parse(text);
      assert.equal(push.event, TOPIC_DELTA);
      kinds++;
      const next = applyDeltaPush(base, topicDelta(push.data)!.delta)!;
      applied.push(next);
      base = next;
    }
    assert.equal(kinds, 499);
    assert.deepEqual(
      applied.map((t) => JSON.parse(t)),
      big.map((t) => JSON.parse(t)),
    );
    assert.deepEqual(applied, big.map(asciiJson));
    const bytes = (texts: string[]) =>
      texts.reduce((sum, t) => sum + new TextEncoder().encode(t).length, 0);
    const ratio = bytes(small) / bytes(big);
    assert.ok(ratio < 0.2, `deltas cost ${ratio.toFixed(3)} of full pushes`);
  } finally {
    deltas.close();
    fulls.close();
    await server.close();
  }
});

Deno.test('delta on join: anything but "fossil" is INVALID_DATA; in a topic without delta it is ignored', async () => {
  const duplex = createServer({
    router: new EventRouter().on(
      "join",
      z.object({ topic: z.string(), delta: z.unknown() }),
      ({ topic, delta }, ctx) =>
        ctx.join(topic, { delta: delta as "fossil" | undefined }),
    ),
    logger: silentLogger,
    topics: [{ match: "plain:*", history: true }],
  });
  const server = startServer(duplex);
  const socket = await TestSocket.open(server.wsUrl);
  try {
    const bad = await socket.request<{ error?: { code: string } }>("join", {
      topic: "plain:a",
      delta: "zstd",
    });
    assert.equal(bad.error?.code, "INVALID_DATA");
    const ok = await socket.request<{ data?: { joined: boolean } }>("join", {
      topic: "plain:a",
      delta: "fossil",
    });
    assert.equal(ok.data?.joined, true);
    await duplex.publish("plain:a", "m", { n: 1 });
    await duplex.publish("plain:a", "m", { n: 2 });
    const pushes = [await socket.next(), await socket.next()];
    assert.deepEqual(pushes.map((p) => p.event), ["m", "m"]);
  } finally {
    socket.close();
    await server.close();
  }
});

Deno.test('a topic policy\'s delta must be "fossil"', () => {
  assert.throws(
    () =>
      createServer({
        router: new EventRouter(),
        logger: silentLogger,
        // deno-lint-ignore no-explicit-any
        topics: [{ match: "x", delta: "zstd" as any }],
      }),
    /delta must be "fossil"/,
  );
});

Deno.test("the Fossil format: our deltas apply with the fossil-delta package, its deltas apply with ours (1,000 random pairs)", () => {
  const bytes = (text: string) => new TextEncoder().encode(text);
  const text = (data: Uint8Array) => new TextDecoder().decode(data);
  let state = 3;
  const random = (n: number) => {
    state = (state * 48271) % 2147483647;
    return state % n;
  };
  const chars = 'abcdefgh{}":,0123456789 \\\n~@;';
  const word = (n: number) =>
    Array.from({ length: n }, () => chars[random(chars.length)]).join("");
  for (let round = 0; round < 1_000; round++) {
    const base = word(random(3_000));
    let target = base;
    for (let edits = random(6); edits >= 0; edits--) {
      const at = random(target.length + 1);
      const cut = random(40);
      target = target.slice(0, at) + word(random(40)) + target.slice(at + cut);
    }
    const ours = createFossilDelta(base, target);
    assert.equal(applyFossilDelta(base, ours), target);
    assert.equal(text(fossil.applyDelta(bytes(base), bytes(ours))), target);
    const theirs = text(fossil.createDelta(bytes(base), bytes(target)));
    assert.equal(applyFossilDelta(base, theirs), target);
  }
  assert.throws(() => applyFossilDelta("abc", "3\n3@1,0;"), SyntaxError);
  assert.throws(
    () => applyFossilDelta("abc", createFossilDelta("abc", "abd") + "x"),
    SyntaxError,
  );
  const base = "0123456789".repeat(4);
  const wrong = createFossilDelta(base, `${base}!`);
  assert.throws(() => applyFossilDelta("z".repeat(40), wrong), SyntaxError);
});

Deno.test({
  name:
    "on Redis, a delta member on node B of publishes made on node A sees every document as published",
  ignore: NO_REDIS,
  async fn() {
    const redis = await startRedis();
    const [a, b] = [0, 1].map(() =>
      app(new RedisBackplane({ url: redis.url }))
    );
    const [sa, sb] = [startServer(a), startServer(b)];
    await Promise.all([a.ready, b.ready]);
    const client = typed(sb.wsUrl);
    const raw = await TestSocket.open(sb.wsUrl);
    const got: Doc[] = [];
    client.on("doc.state", (doc) => got.push(doc));
    try {
      await client.join("doc.join", { doc: "r", delta: "fossil" });
      await raw.request("doc.join", { doc: "r", delta: "fossil" });
      const rawFrames = frames(raw, 500);
      const published: Doc[] = [];
      for (const doc of edits(500, 5)) {
        await a.publish("doc:r", "doc.state", doc);
        published.push(doc);
        if (doc.rev % 50 === 0) {
          await eventually(() => got.length === doc.rev, 10_000);
        }
      }
      assert.deepEqual(
        got.map(({ rev, title, rows }) => ({ rev, title, rows })),
        published,
      );
      const deltas = (await rawFrames).filter((t) =>
        t.startsWith(`{"event":"${TOPIC_DELTA}"`)
      );
      assert.equal(deltas.length, 499, "node B sent deltas after the first");
    } finally {
      client.close();
      raw.close();
      await sa.close();
      await sb.close();
      await redis.close();
    }
  },
});
