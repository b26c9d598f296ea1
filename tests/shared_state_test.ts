/**
 * Deciding on shared state across nodes (the auction example as two
 * processes): on Redis and on a Redis Cluster, two connections on two nodes
 * racing conditional publishes from one position see exactly one win each
 * round; bids decided concurrently on both nodes are accepted in the order
 * a single owner would have accepted them; a bid whose reply was lost is
 * resent to the other node and answered with the first reply, the handler
 * having run once. The local engine's version is
 * `examples/auction/app_test.ts`.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import { createServer, EventRouter, silentLogger } from "@duplex-ws/duplex";
import { DuplexClient } from "@duplex-ws/client";
import { RedisBackplane } from "@duplex-ws/redis";
import {
  eventually,
  startProxy,
  startServer,
  TestSocket,
} from "@duplex-ws/testing";
import { type MainProcess, startMain, startTestApp } from "./_process.ts";
import { healthy } from "./_shared_engines.ts";
import { NO_REDIS, startRedis } from "./_redis.ts";
import { startRedisCluster } from "./_redis_cluster.ts";
import { reachedEngine } from "./_cluster.ts";
import {
  MAX_MEMORY_REPLY_BYTES,
  MemoryReplies,
} from "../lib/core/pubsub/reply_store.ts";
import {
  type AuctionRouter,
  createAuctionApp,
} from "../examples/auction/app.ts";

const AUCTION = new URL("../examples/auction/main.ts", import.meta.url)
  .pathname;

type Reply = {
  data?: { amount: number; position: { offset: number; epoch: string } };
  error?: { code: string; data?: Record<string, unknown> };
};

/** Two auction nodes on an engine; closes everything after `run`. */
async function withNodes(
  engine: "redis" | "cluster",
  run: (a: MainProcess, b: MainProcess) => Promise<void>,
): Promise<void> {
  const redis = engine === "redis" ? await startRedis() : undefined;
  const cluster = engine === "cluster"
    ? await startRedisCluster({ masters: 3, replicas: 0 })
    : undefined;
  const env: Record<string, string> = redis
    ? { REDIS_URL: redis.url }
    : { REDIS_CLUSTER_URLS: cluster!.urls.join(",") };
  const start = () =>
    startMain("listen", { ...env, LOG_LEVEL: "error" }, [], {
      args: ["run", "--allow-net", "--allow-env", AUCTION],
    });
  const [a, b] = [await start(), await start()];
  try {
    for (const node of [a, b]) await reachedEngine(node);
    await run(a, b);
  } finally {
    await a.stop();
    await b.stop();
    await redis?.close();
    await cluster?.close();
  }
}

async function races(a: MainProcess, b: MainProcess): Promise<void> {
  const [x, y] = [
    await TestSocket.open(`${a.wsUrl}/?user=x`),
    await TestSocket.open(`${b.wsUrl}/?user=y`),
  ];
  try {
    let at: unknown = null;
    for (let round = 1; round <= 30; round++) {
      const [rx, ry] = await Promise.all([
        x.request<Reply>("bid.at", {
          item: "vase",
          amount: round,
          ifPosition: at,
        }),
        y.request<Reply>("bid.at", {
          item: "vase",
          amount: round,
          ifPosition: at,
        }),
      ]);
      const won = [rx, ry].filter((r) => !r.error);
      const lost = [rx, ry].filter((r) => r.error);
      assert.equal(
        won.length,
        1,
        `round ${round}: ${JSON.stringify([rx, ry])}`,
      );
      assert.equal(lost[0].error!.code, "CONFLICT");
      assert.deepEqual(lost[0].error!.data!.position, won[0].data!.position);
      at = won[0].data!.position;
    }
  } finally {
    await x.close();
    await y.close();
  }
}

async function owner(a: MainProcess, b: MainProcess): Promise<void> {
  const [x, y] = [
    new DuplexClient<AuctionRouter>({ url: `${a.wsUrl}/?user=x` }),
    new DuplexClient<AuctionRouter>({ url: `${b.wsUrl}/?user=y` }),
  ];
  try {
    const accepted: { amount: number; offset: number }[] = [];
    let refused = 0;
    const bidder = async (client: typeof x, seed: number) => {
      for (let i = 0; i < 40; i++) {
        const amount = 1 + ((seed * 7919 + i * 104_729) % 500);
        try {
          const done = await client.request("bid", { item: "lamp", amount });
          accepted.push({ amount, offset: done.position.offset });
        } catch (error) {
          if (!client.isError(error, "bid", "BID_TOO_LOW")) throw error;
          assert.ok(error.data.price >= amount, "refused only when not higher");
          refused++;
        }
      }
    };
    await Promise.all([bidder(x, 1), bidder(y, 2)]);
    // In the order they were accepted, every bid beats the one before:
    // what one owner deciding alone would have accepted.
    accepted.sort((p, q) => p.offset - q.offset);
    for (let i = 1; i < accepted.length; i++) {
      assert.ok(
        accepted[i].amount > accepted[i - 1].amount,
        JSON.stringify(accepted),
      );
      assert.equal(accepted[i].offset, accepted[i - 1].offset + 1, "no gaps");
    }
    assert.equal(accepted.length + refused, 80);
    const joined = await x.request("auction.join", { item: "lamp" });
    assert.equal(joined.price, accepted.at(-1)!.amount);
  } finally {
    x.close();
    y.close();
  }
}

async function retried(a: MainProcess, b: MainProcess): Promise<void> {
  const proxy = startProxy({ port: a.port });
  let connects = 0;
  // The first connection goes through the proxy to node A, the next ones to node B.
  const ada = new DuplexClient<AuctionRouter>({
    url: () =>
      connects++ === 0 ? proxy.wsUrl("/?user=ada") : `${b.wsUrl}/?user=ada`,
    minReconnectDelay: 50,
  });
  const viewer = new DuplexClient<AuctionRouter>({ url: `${b.wsUrl}/?user=v` });
  try {
    await ada.request("auction.join", { item: "rug" });
    proxy.muteDownstream();
    const bid = ada.request("bid", { item: "rug", amount: 7 }, {
      resend: true,
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    proxy.cut();
    const reply = await bid;
    assert.ok(connects >= 2, "resent on another connection, to node B");
    const now = await viewer.request("auction.join", { item: "rug" });
    assert.equal(
      now.position?.offset,
      1,
      "the handler ran once: one bid stored",
    );
    assert.deepEqual(reply.position, now.position);
  } finally {
    ada.close();
    viewer.close();
    await proxy.close();
  }
}

for (const engine of ["redis", "cluster"] as const) {
  const name = engine === "redis" ? "Redis" : "Redis Cluster";
  Deno.test({
    name:
      `${name}: conditional publishes raced from two nodes, one winner a round; concurrent bids accepted as one owner would; a resent bid answered once across nodes`,
    ignore: NO_REDIS,
    async fn(t) {
      await withNodes(engine, async (a, b) => {
        await t.step("races", () => races(a, b));
        await t.step("one owner's order", () => owner(a, b));
        await t.step("a resend to the other node", () => retried(a, b));
      });
    },
  });
}

/** A server whose topic keeps the latest price per symbol, at most 2. */
function latestApp(backplane?: RedisBackplane) {
  return createServer({
    router: new EventRouter().on(
      "watch",
      z.undefined(),
      async (_data, ctx) => (await ctx.join("prices")).latest,
    ),
    logger: silentLogger,
    backplane,
    topics: [{ match: "prices", latest: { key: "symbol", maxKeys: 2 } }],
  });
}

async function latestPerKey(backplane?: RedisBackplane): Promise<void> {
  const app = latestApp(backplane);
  const server = startServer(app);
  try {
    await app.ready;
    await app.publish("prices", "price", { symbol: "A", price: 1 });
    await app.publish("prices", "price", { symbol: "B", price: 2 });
    await app.publish("prices", "price", { symbol: "A", price: 3 });
    await assert.rejects(
      () => app.publish("prices", "price", { symbol: "C", price: 4 }),
      /at most 2 keys/,
    );
    await assert.rejects(
      () => app.publish("prices", "price", { price: 5 }),
      /data.symbol must name/,
    );
    const socket = await TestSocket.open(server.wsUrl);
    const reply = await socket.request<{ data: { data: unknown }[] }>("watch");
    assert.deepEqual(reply.data.map((item) => item.data), [
      { symbol: "B", price: 2 },
      { symbol: "A", price: 3 },
    ]);
    await socket.close();
  } finally {
    await server.close();
  }
}

Deno.test("latest per key: a joiner gets the latest value of each key, at most maxKeys of them (local engine)", () =>
  latestPerKey());

Deno.test({
  name:
    "latest per key on Redis, signed: a joiner gets the latest value of each key, at most maxKeys of them",
  ignore: NO_REDIS,
  async fn() {
    const redis = await startRedis();
    try {
      await latestPerKey(
        new RedisBackplane({ url: redis.url, secret: "latest values' secret" }),
      );
    } finally {
      await redis.close();
    }
  },
});

Deno.test({
  name:
    "Redis down: a conditional publish is refused BUSY (nothing published), a plain one answers remote failed; both work again once Redis is back",
  ignore: NO_REDIS,
  async fn() {
    const redis = await startRedis();
    const app = createAuctionApp({
      logger: silentLogger,
      backplane: new RedisBackplane({ url: redis.url }),
    });
    const server = startServer(app);
    try {
      await app.ready;
      const socket = await TestSocket.open(`${server.wsUrl}/?user=x`);
      try {
        await redis.stop();
        const refused = await socket.request<Reply>("bid.at", {
          item: "cup",
          amount: 1,
          ifPosition: null,
        });
        assert.equal(refused.error?.code, "BUSY");
        const plain = await app.publish("auction:cup", "bid", {
          amount: 1,
          by: "x",
        });
        assert.equal(plain.remote, "failed");
        await redis.restart();
        await eventually(() => app.health().status === "ok");
        const won = await socket.request<Reply>("bid.at", {
          item: "cup",
          amount: 2,
          ifPosition: null,
        });
        assert.equal(
          won.data?.position.offset,
          1,
          "the refused bid left no trace",
        );
      } finally {
        await socket.close();
      }
    } finally {
      await server.close();
      await redis.close();
    }
  },
});

Deno.test({
  name:
    "keyed requests on Redis: the node running the first copy is SIGKILLed; the copy sent to the other node runs there within the wait, not BUSY for the key's time to live",
  ignore: NO_REDIS,
  async fn() {
    const redis = await startRedis();
    const env = { REDIS_URL: redis.url };
    // A retry waits 2 s for a first run: the claim is a lease that long.
    const options = { requestTimeout: 2_000, addressBudget: 0 };
    const nodes = [
      await startTestApp(options, {}, env),
      await startTestApp(options, {}, env),
    ];
    const sockets: TestSocket[] = [];
    try {
      for (const node of nodes) {
        await healthy(node);
        sockets.push(await TestSocket.open(`${node.wsUrl}/?user=kim`));
      }
      const request = (id: number) => ({
        event: "async",
        data: { ms: 1_500 },
        id,
        key: "k",
      });
      sockets[0].json(request(1));
      await new Promise((resolve) => setTimeout(resolve, 300));
      await nodes[0].stop("SIGKILL");
      sockets[1].json(request(2));
      const reply = await sockets[1].next(10_000);
      assert.deepEqual(reply, { id: 2, data: { aborted: false } });
    } finally {
      for (const socket of sockets) await socket.close().catch(() => {});
      for (const node of nodes) await node.stop().catch(() => {});
      await redis.close();
    }
  },
});

Deno.test("the local engine keeps keyed replies within 32 MiB: past it the oldest go, a claim of a gone key runs again", async () => {
  const store = new MemoryReplies();
  const reply = "r".repeat(1_048_576); // a handler's reply has no size bound
  for (let i = 0; i < 40; i++) {
    assert.equal(await store.claim(`k${i}`, 60_000), undefined);
    await store.settle(`k${i}`, reply, 60_000);
  }
  assert.ok(store.bytes <= MAX_MEMORY_REPLY_BYTES, `${store.bytes} bytes`);
  assert.ok(store.size < 40 && store.size >= 30, `${store.size} kept`);
  assert.equal(await store.claim("k39", 60_000), reply, "the newest is kept");
  assert.equal(await store.claim("k0", 60_000), undefined, "the oldest went");
});
