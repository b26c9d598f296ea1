/**
 * Occupancy hooks, once per transition across the cluster: on one node and
 * on three nodes on Redis, members joining on several nodes at once make
 * one `occupied`, the last one leaving one `vacated`, and the webhook gets
 * each, signed with its secret. Across an engine outage:
 * `outage_test.ts`.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import { createServer, EventRouter, silentLogger } from "@duplex-ws/duplex";
import { RedisBackplane } from "@duplex-ws/redis";
import { delay, eventually, startServer, TestSocket } from "@duplex-ws/testing";
import { NO_REDIS, startRedis } from "./_redis.ts";

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
