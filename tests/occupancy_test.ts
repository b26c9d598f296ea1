/**
 * Occupancy hooks, once per transition across the cluster: on one node and
 * on three nodes on Redis, members joining on several nodes at once make
 * one `occupied`, the last one leaving one `vacated`, and the webhook gets
 * each, signed with its secret; a node SIGKILLed with a topic's only
 * members has it decided vacated by a live node. Across an engine outage:
 * `outage_test.ts`.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import {
  createServer,
  type DuplexServer,
  EventRouter,
  silentLogger,
} from "@duplex-ws/duplex";
import { RedisBackplane } from "@duplex-ws/redis";
import { delay, eventually, startServer, TestSocket } from "@duplex-ws/testing";
import { NO_REDIS, startRedis } from "./_redis.ts";
import { startTestApp } from "./_process.ts";
import {
  healthy,
  occupancyWatcher,
  QUICK,
  SHARED_ENGINES,
} from "./_shared_engines.ts";

const router = new EventRouter()
  .on("join", z.object({ topic: z.string() }), ({ topic }, ctx) => {
    ctx.join(topic);
    return true;
  })
  .on(
    "leave",
    z.object({ topic: z.string() }),
    ({ topic }, ctx) => ctx.leave(topic),
  );

const SECRET = "the webhook's secret";

async function verify(body: string, signature: string | null) {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(SECRET),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["verify"],
  );
  const hex = signature?.replace(/^sha256=/, "") ?? "";
  const mac = new Uint8Array(
    hex.match(/../g)?.map((byte) => parseInt(byte, 16)) ?? [],
  );
  return await crypto.subtle.verify("HMAC", key, mac, encoder.encode(body));
}

async function transitions(nodes: number, engine?: () => RedisBackplane) {
  const events: string[] = [];
  const hooked: string[] = [];
  const receiver = Deno.serve(
    { port: 0, hostname: "127.0.0.1", onListen() {} },
    async (request) => {
      const body = await request.text();
      const signed = await verify(
        body,
        request.headers.get("x-duplex-signature"),
      );
      const { topic, occupied } = JSON.parse(body);
      hooked.push(`${signed ? "signed" : "UNSIGNED"} ${topic} ${occupied}`);
      return new Response("ok");
    },
  );
  const apps = Array.from({ length: nodes }, () =>
    createServer({
      router,
      logger: silentLogger,
      backplane: engine?.(),
      occupancy: {
        onOccupied: (topic) => void events.push(`occupied ${topic}`),
        onVacated: (topic) => void events.push(`vacated ${topic}`),
        webhook: {
          url: `http://127.0.0.1:${receiver.addr.port}/hook`,
          secret: SECRET,
        },
      },
    }));
  const servers = apps.map((app) => startServer(app));
  try {
    await Promise.all(apps.map((app) => app.ready));
    const sockets = await Promise.all(
      servers.map((server) => TestSocket.open(server.wsUrl)),
    );
    // One member on every node at once: one transition.
    await Promise.all(
      sockets.map((socket) => socket.request("join", { topic: "room" })),
    );
    await eventually(() => events.length >= 1, 5_000, "occupied");
    await delay(1_500); // the second look, on every node
    assert.deepEqual(events, ["occupied room"]);
    // All but one leave: still occupied.
    for (const socket of sockets.slice(1)) {
      await socket.request("leave", { topic: "room" });
    }
    await delay(1_500);
    assert.deepEqual(events, ["occupied room"]);
    await sockets[0].request("leave", { topic: "room" });
    await eventually(() => events.length >= 2, 5_000, "vacated");
    await delay(1_500);
    assert.deepEqual(events, ["occupied room", "vacated room"]);
    await eventually(() => hooked.length === 2, 5_000, "webhook");
    assert.deepEqual(hooked, ["signed room true", "signed room false"]);
    for (const socket of sockets) await socket.close();
  } finally {
    for (const server of servers) await server.close();
    await receiver.shutdown();
  }
}

Deno.test("occupancy on one node: occupied once, vacated once, the webhook signed", () =>
  transitions(1));

Deno.test({
  name:
    "occupancy on three nodes on Redis: members joining on every node at once make one occupied, the last to leave one vacated",
  ignore: NO_REDIS,
  async fn() {
    const redis = await startRedis();
    try {
      await transitions(
        3,
        () => new RedisBackplane({ url: redis.url, logger: silentLogger }),
      );
    } finally {
      await redis.close();
    }
  },
});

for (const [name, skip, start] of SHARED_ENGINES) {
  Deno.test({
    name:
      `occupancy on ${name}: a node SIGKILLed while it holds a topic's only members has the topic decided vacated by a live node`,
    ignore: skip,
    async fn() {
      const engine = await start();
      const { server: survivor, events } = occupancyWatcher(engine);
      const served = startServer(survivor);
      const node = await startTestApp({ occupancy: {} }, {}, engine.env);
      let socket: TestSocket | undefined;
      try {
        await survivor.ready;
        await healthy(node);
        socket = await TestSocket.open(`${node.wsUrl}/?user=kim`);
        await socket.request("join", { topic: "room" });
        await eventually(
          async () => (await survivor.presence("room")).count === 1,
          5_000,
          "the member counted",
        );
        await delay(1_500); // the node decided occupied (and looked again)
        await node.stop("SIGKILL");
        await eventually(() => events.length > 0, 10_000, "vacated");
        await delay(1_500);
        assert.deepEqual(events, ["vacated room"]);
      } finally {
        await socket?.close().catch(() => {});
        await node.stop().catch(() => {});
        await served.close();
        await engine.close();
      }
    },
  });
}

for (const [name, skip, start] of SHARED_ENGINES) {
  Deno.test({
    name:
      `occupancy on ${name}: the only node holding a topic's members stops (SIGTERM): it decides the topic vacated before it exits, webhook included`,
    ignore: skip,
    async fn() {
      const engine = await start();
      const hooked: string[] = [];
      const receiver = Deno.serve(
        { port: 0, hostname: "127.0.0.1", onListen() {} },
        async (request) => {
          const { topic, occupied } = JSON.parse(await request.text());
          hooked.push(`${topic} ${occupied}`);
          return new Response("ok");
        },
      );
      const url = `http://127.0.0.1:${receiver.addr.port}/hook`;
      const occupancy = { webhook: { url, secret: SECRET } };
      const node = await startTestApp({ occupancy }, {}, engine.env);
      try {
        await healthy(node);
        const socket = await TestSocket.open(`${node.wsUrl}/?user=kim`);
        await socket.request("join", { topic: "room" });
        await eventually(() => hooked.length === 1, 5_000, "occupied");
        await node.stop("SIGTERM");
        await socket.closed;
        assert.deepEqual(hooked, ["room true", "room false"]);
      } finally {
        await node.stop().catch(() => {});
        await receiver.shutdown();
        await engine.close();
      }
    },
  });

  Deno.test({
    name:
      `occupancy on ${name}: the only node holding a topic's members is SIGKILLed; the next node to start, past presenceTtl, decides the topic vacated`,
    ignore: skip,
    async fn() {
      const engine = await start();
      const node = await startTestApp({ occupancy: {} }, {}, engine.env);
      let next: DuplexServer<undefined, never> | undefined;
      try {
        await healthy(node);
        const socket = await TestSocket.open(`${node.wsUrl}/?user=kim`);
        await socket.request("join", { topic: "room" });
        await delay(1_500); // the node decided occupied (and looked again)
        await node.stop("SIGKILL");
        await socket.closed;
        await delay(QUICK.presenceTtl + 500); // no node left alive to decide
        const watcher = occupancyWatcher(engine);
        next = watcher.server;
        await next.ready;
        await eventually(() => watcher.events.length > 0, 10_000, "vacated");
        assert.deepEqual(watcher.events, ["vacated room"]);
      } finally {
        await node.stop().catch(() => {});
        await next?.shutdown();
        await engine.close();
      }
    },
  });
}

Deno.test({
  name:
    "occupancy on Redis: a node stops and its members reconnect to another node within its first retry: the topic stays occupied (no vacated)",
  ignore: NO_REDIS,
  async fn() {
    const redis = await startRedis();
    const events: string[] = [];
    const apps = [0, 1].map(() =>
      createServer({
        router,
        logger: silentLogger,
        backplane: new RedisBackplane({ url: redis.url, logger: silentLogger }),
        occupancy: {
          onOccupied: (topic) => void events.push(`occupied ${topic}`),
          onVacated: (topic) => void events.push(`vacated ${topic}`),
        },
      })
    );
    const [stopping, staying] = apps.map((app) => startServer(app));
    try {
      await Promise.all(apps.map((app) => app.ready));
      const first = await TestSocket.open(stopping.wsUrl);
      await first.request("join", { topic: "room" });
      await eventually(() => events.length === 1, 5_000, "occupied");
      await delay(1_500); // the second look
      const stopped = apps[0].shutdown();
      await first.closed;
      await delay(250); // the client's first retry, at most
      const again = await TestSocket.open(staying.wsUrl);
      await again.request("join", { topic: "room" });
      await stopped;
      await delay(1_500); // the staying node's second look
      assert.deepEqual(events, ["occupied room"]);
      await again.close();
    } finally {
      await stopping.close();
      await staying.close();
      await redis.close();
    }
  },
});
