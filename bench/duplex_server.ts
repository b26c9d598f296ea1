/**
 * duplex under test, with validation, ids and its protections on: a Zod
 * schema per event, the rate limit (set high enough not to refuse the
 * bench's honest load), the slow-consumer cap, the in-flight cap.
 *
 * Env: PORT; HISTORY=on gives the topic `bench` history (2,000 publishes,
 * so 1,000 can be recovered); REDIS_URL selects the Redis engine. Prints
 * "ready" once listening. The topic `doc` (delta: "fossil") holds a 4 KiB
 * document that `doc.step` edits a little and publishes (`bench/delta.ts`).
 * TRANSPORT=node serves it with `listenNode`, DEFLATE=on with
 * permessage-deflate (`bench/deflate.ts`). The HTTP transport is on
 * (`bench/http_transport.ts`).
 */

import {
  createServer,
  EventRouter,
  listen,
  silentLogger,
  type StandardSchemaV1,
  type StreamPosition,
} from "@duplex-ws/duplex";
import { httpTransport } from "@duplex-ws/http-transport";

type Row = { id: number; name: string; value: number };
type Tick = { symbol: string; value: number; pad: string };
type Pushes = {
  bench: { p: string };
  doc: { rev: number; rows: Row[] };
  tick: Tick;
};

/**
 * The schemas: Zod's, or with `SCHEMAS=plain` two hand-written Standard
 * Schemas, so that the cold start can tell duplex's own cost from a
 * validator library's (Zod costs about 20 ms and 10 MiB to load).
 */
async function schemas(): Promise<{
  text: StandardSchemaV1<string>;
  join: StandardSchemaV1<{ since?: StreamPosition } | undefined>;
}> {
  if (Deno.env.get("SCHEMAS") === "plain") {
    const plain = <T>(ok: (v: unknown) => boolean): StandardSchemaV1<T> => ({
      "~standard": {
        version: 1,
        vendor: "bench",
        validate: (value) =>
          ok(value)
            ? { value: value as T }
            : { issues: [{ message: "invalid" }] },
      },
    });
    return {
      text: plain((v) => typeof v === "string"),
      join: plain((v) => v === undefined || typeof v === "object"),
    };
  }
  const { z } = await import("zod");
  const position = z.object({ offset: z.number(), epoch: z.string() });
  return {
    text: z.string(),
    join: z.object({ since: position.optional() }).optional(),
  };
}

const { text, join } = await schemas();
/** `{n, size}`, checked by hand (the bursts' cost is the server's, not Zod's). */
const burst: StandardSchemaV1<{ n: number; size: number }> = {
  "~standard": {
    version: 1,
    vendor: "bench",
    validate: (value) => {
      const { n, size } = (value ?? {}) as { n?: unknown; size?: unknown };
      return Number.isSafeInteger(n) && Number.isSafeInteger(size)
        ? { value: { n: n as number, size: size as number } }
        : { issues: [{ message: "expected {n, size}" }] };
    },
  },
};
/** `undefined` or `{delta: "fossil"}`, checked by hand. */
const docJoin: StandardSchemaV1<{ delta?: "fossil" } | undefined> = {
  "~standard": {
    version: 1,
    vendor: "bench",
    validate: (value) =>
      value === undefined || (value as { delta?: unknown }).delta === "fossil"
        ? { value: value as { delta?: "fossil" } | undefined }
        : { issues: [{ message: 'expected {delta: "fossil"} or nothing' }] },
  },
};
/** `{topic, n}`, checked by hand. */
const tickBurst: StandardSchemaV1<{ topic: string; n: number }> = {
  "~standard": {
    version: 1,
    vendor: "bench",
    validate: (value) => {
      const { topic, n } = (value ?? {}) as { topic?: unknown; n?: unknown };
      return typeof topic === "string" && Number.isSafeInteger(n)
        ? { value: { topic, n: n as number } }
        : { issues: [{ message: "expected {topic, n}" }] };
    },
  },
};
/** About 4 KiB of JSON; each `doc.step` changes one row's value. */
const doc = {
  rev: 0,
  rows: Array.from({ length: 64 }, (_, id) => ({
    id,
    name: `row ${id} of the quarterly plan`,
    value: 1_000_000 + id * 7_919,
  })),
};
const router = new EventRouter<undefined, Pushes>()
  .on("echo", text, (data) => data)
  .on(
    "join",
    join,
    async (data, ctx) => await ctx.join("bench", { since: data?.since }),
  )
  .on("fanout", text, (data, ctx) => {
    ctx.publish("bench", "bench", { p: data });
  })
  // `n` chunks of `size` bytes: as a streamed reply, or as plain pushes.
  .on("stream", burst, ({ n, size }, ctx) =>
    ctx.stream(async (stream) => {
      const chunk = "x".repeat(size);
      for (let i = 0; i < n; i++) await stream.write(chunk);
      return n;
    }))
  .on("pushes", burst, ({ n, size }, ctx) => {
    const p = "x".repeat(size);
    for (let i = 0; i < n; i++) ctx.emit("bench", { p });
    return n;
  })
  .on("doc.join", docJoin, (data, ctx) => ctx.join("doc", data))
  .on("doc.step", docJoin, async (_data, ctx) => {
    const row = doc.rows[(doc.rev * 37) % doc.rows.length];
    row.value = (row.value * 48_271) % 2_147_483_647;
    doc.rev++;
    await ctx.publish("doc", "doc", doc);
    return doc.rev;
  })
  // `tick.join` / `tick.burst`: the topics `ticks` (conflated per symbol)
  // and `ticks-plain` (not), for `bench/conflation.ts`.
  .on("tick.join", text, (topic, ctx) => ctx.join(topic))
  .on("tick.burst", tickBurst, async ({ topic, n }, ctx) => {
    const pad = "p".repeat(480);
    for (let i = 1; i <= n; i++) {
      const tick = { symbol: `S${i % 10}`, value: i, pad };
      await ctx.publish(topic, "tick", tick);
      if (i % 200 === 0) await new Promise((done) => setTimeout(done, 1));
    }
    return n;
  })
  .on("publish", text, async (data, ctx) => {
    const result = await ctx.publish("bench", "bench", { p: data });
    if (result.remote === "failed") throw new Error("not stored");
    return result.position?.offset ?? null;
  });

const history = Deno.env.get("HISTORY") === "on";
const redisUrl = Deno.env.get("REDIS_URL");
const databaseUrl = Deno.env.get("DATABASE_URL");
const app = createServer({
  router,
  logger: silentLogger,
  // SSE down, POST up, for bench/http_transport.ts.
  httpTransport: httpTransport(),
  maxConnections: 100_000,
  // The load generator is one address with many sockets.
  maxConnectionsPerIp: 0,
  handshakesPerIpPerSecond: 0,
  // Every client shares one address here: no budget per address either.
  addressBudget: 0,
  rateLimit: { messagesPerSecond: 1_000_000, bytesPerSecond: 1_000_000_000 },
  fanoutLimit: {
    deliveriesPerSecond: 100_000_000,
    bytesPerSecond: 10_000_000_000,
  },
  topics: [
    ...(history
      ? [{ match: "bench", history: { size: 2_000, ttl: 600_000 } }]
      : []),
    { match: "doc", delta: "fossil" as const, history: { size: 100 } },
    { match: "ticks", conflate: { key: "symbol" } },
  ],
  // The Redis engine only when asked for, as an app that may not use it
  // should load it (the cold start measures what is loaded).
  backplane: redisUrl
    ? new (await import("@duplex-ws/redis")).RedisBackplane({
      url: redisUrl,
      logger: silentLogger,
    })
    : databaseUrl
    ? new (await import("@duplex-ws/postgres")).PostgresBackplane({
      url: databaseUrl,
    })
    : undefined,
});
await app.ready;
const port = Number(Deno.env.get("PORT"));
if (Deno.env.get("TRANSPORT") === "node") {
  // The ./node transport, with permessage-deflate for clients that offer it.
  const { listenNode } = await import("@duplex-ws/node");
  await listenNode(app, {
    port,
    hostname: "127.0.0.1",
    perMessageDeflate: Deno.env.get("DEFLATE") === "on",
    logger: silentLogger,
  });
  console.log("ready");
} else {
  listen(app, {
    port,
    hostname: "127.0.0.1",
    onListen: () => console.log("ready"),
  });
}
