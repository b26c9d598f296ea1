/**
 * Occupancy hooks, once per transition across the cluster: on one node and
 * on three nodes on Redis, members joining on several nodes at once make
 * one `occupied`, the last one leaving one `vacated`, and the webhook gets
 * each, signed with its secret; a member that leaves while the engine
 * cannot be reached is counted out, and decided vacated, once it can.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import { createServer, EventRouter, silentLogger } from "@duplex-ws/duplex";
import type { Backplane } from "@duplex-ws/duplex/engine";
import { RedisBackplane } from "@duplex-ws/redis";
import { PostgresBackplane } from "@duplex-ws/postgres";
import {
  delay,
  eventually,
  startProxy,
  startServer,
  TestSocket,
} from "@duplex-ws/testing";
import { NO_REDIS, startRedis } from "./_redis.ts";
import { NO_POSTGRES, startPostgres } from "./_postgres.ts";

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

/** An engine with a real server, that can be made unreachable while it keeps its data. */
interface Engine {
  backplane: Backplane;
  /** Makes it unreachable; resolves with what makes it reachable again. */
  down(): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

const OUTAGES: [string, boolean, () => Promise<Engine>][] = [
  ["Redis", NO_REDIS, async () => {
    const redis = await startRedis();
    // The node's way to Redis is cut, for 5 s.
    const link = startProxy({ port: Number(new URL(redis.url).port) });
    return {
      backplane: new RedisBackplane({
        url: `redis://127.0.0.1:${link.port}`,
        logger: silentLogger,
      }),
      down: () => {
        link.cut({ refuseFor: 5_000 });
        return Promise.resolve(() => Promise.resolve());
      },
      close: async () => {
        await link.close();
        await redis.close();
      },
    };
  }],
  ["Postgres", NO_POSTGRES, async () => {
    const pg = await startPostgres();
    return {
      backplane: new PostgresBackplane({ url: pg.url }),
      down: async () => {
        await pg.stop();
        return () => pg.restart();
      },
      close: () => pg.close(),
    };
  }],
];

for (const [name, skip, start] of OUTAGES) {
  Deno.test({
    name:
      `occupancy on ${name}: a member that leaves while the engine cannot be reached is counted out, and decided vacated, once it can`,
    ignore: skip,
    async fn() {
      const engine = await start();
      const events: string[] = [];
      const app = createServer({
        router,
        logger: silentLogger,
        backplane: engine.backplane,
        occupancy: {
          onOccupied: (topic) => void events.push(`occupied ${topic}`),
          onVacated: (topic) => void events.push(`vacated ${topic}`),
        },
      });
      const served = startServer(app);
      try {
        await app.ready;
        const socket = await TestSocket.open(served.wsUrl);
        await socket.request("join", { topic: "room" });
        await eventually(() => events.length === 1, 5_000, "occupied");
        const up = await engine.down();
        await eventually(() => app.health().status !== "ok", 10_000, "outage");
        await socket.request("leave", { topic: "room" });
        await delay(1_500); // both looks fail: nothing is decided
        assert.deepEqual(events, ["occupied room"]);
        await up();
        await eventually(() => app.health().status === "ok", 20_000, "back");
        await eventually(
          async () => (await app.presence("room")).count === 0,
          20_000,
          "the node's count written as zero",
        );
        await eventually(() => events.length === 2, 15_000, "vacated");
        assert.deepEqual(events, ["occupied room", "vacated room"]);
        await socket.close();
      } finally {
        await served.close();
        await engine.close();
      }
    },
  });
}
