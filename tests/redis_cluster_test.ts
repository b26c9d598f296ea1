/**
 * The Redis engine on a real Redis Cluster (3 masters, 1 replica each, from
 * Debian's redis-server on loopback): three `main.ts` processes with
 * `REDIS_CLUSTER_URLS`, sharded pub/sub. Delivery exactly once and in
 * publish order, presence across nodes, history across shards; then the
 * master of a room's shard is killed, its replica takes over, and delivery
 * resumes with no process restarted and no acknowledged message lost.
 */

import assert from "node:assert/strict";
import { type MainProcess, startMain } from "./_process.ts";
import { NO_REDIS } from "./_redis.ts";
import { type RedisCluster, startRedisCluster } from "./_redis_cluster.ts";
import { health, member } from "./_cluster.ts";
import { delay, eventually, TestSocket, within } from "@duplex-ws/testing";
import { silentLogger } from "@duplex-ws/duplex";
import { RedisBackplane } from "@duplex-ws/redis";

type Push = { event: string; data: Record<string, unknown> };

/** The chat messages of `room` a socket gets, until it has `count`. */
async function messages(
  socket: TestSocket,
  room: string,
  count: number,
): Promise<string[]> {
  const out: string[] = [];
  while (out.length < count) {
    const push = await socket.next<Push>(15_000);
    if (push.event === "chat.message" && push.data.room === room) {
      out.push(push.data.text as string);
    }
    if (push.event === "error") {
      throw new Error(`error push: ${JSON.stringify(push.data)}`);
    }
  }
  return out;
}

/** The next `count` chat messages a socket gets, of any room. */
async function chatMessages(
  socket: TestSocket,
  count: number,
): Promise<{ room: string; text: string }[]> {
  const out: { room: string; text: string }[] = [];
  while (out.length < count) {
    const push = await socket.next<Push>(15_000);
    if (push.event === "error") {
      throw new Error(`error push: ${JSON.stringify(push.data)}`);
    }
    if (push.event === "chat.message") {
      out.push({
        room: push.data.room as string,
        text: push.data.text as string,
      });
    }
  }
  return out;
}

/** Three nodes on a fresh cluster; everything stopped at the end. */
async function withRedisCluster(
  fn: (nodes: MainProcess[], cluster: RedisCluster) => Promise<void>,
): Promise<void> {
  const cluster = await startRedisCluster();
  const nodes: MainProcess[] = [];
  try {
    for (let i = 0; i < 3; i++) {
      nodes.push(
        await startMain("listen", {
          REDIS_CLUSTER_URLS: cluster.urls.join(","),
          PRESENCE_TTL: "1500",
          LOG_LEVEL: "warn",
          DRAIN_TIMEOUT: "500",
        }),
      );
    }
    for (const node of nodes) {
      await eventually(
        async () => (await health(node)).status === "ok",
        10_000,
        "the node reaches the cluster",
      );
      const { backplane } = await health(node) as {
        backplane: { kind: string };
      };
      assert.equal(backplane.kind, "redis-cluster");
    }
    await fn(nodes, cluster);
  } finally {
    for (const node of nodes) await node.stop("SIGTERM");
    await cluster.close();
  }
}

Deno.test({
  name:
    "Redis Cluster: three nodes, rooms on every shard, every message once and in publish order, presence across nodes",
  ignore: NO_REDIS,
  async fn() {
    await withRedisCluster(async (nodes, cluster) => {
      // Rooms whose slots are on three different masters.
      const rooms: string[] = [];
      const masters = new Set<number>();
      for (let i = 0; rooms.length < 3 && i < 200; i++) {
        const master = await cluster.masterOf(`{room${i}}`);
        if (!masters.has(master)) {
          masters.add(master);
          rooms.push(`room${i}`);
        }
      }
      assert.equal(rooms.length, 3, "three rooms on three shards");
      const clients = await Promise.all(
        nodes.map((node, n) => member(node.wsUrl, `u${n}`)),
      );
      try {
        for (const client of clients) {
          for (const room of rooms) {
            const reply = await client.request("chat.join", { room });
            assert.equal(reply.error, undefined, JSON.stringify(reply));
          }
        }
        // Presence counts every node's member.
        await eventually(
          async () => {
            const reply = await clients[0].request("chat.who", {
              room: rooms[0],
            });
            return (reply.data as { count: number }).count === 3;
          },
          5000,
          "three members in presence",
        );
        // Each node publishes to each room, interleaved.
        const per = 20;
        for (let i = 0; i < per; i++) {
          for (const [n, client] of clients.entries()) {
            for (const room of rooms) {
              client.json({
                event: "chat.say",
                data: { room, text: `${n}:${i}` },
              });
            }
          }
        }
        for (const client of clients) {
          const all = await chatMessages(
            client,
            per * clients.length * rooms.length,
          );
          for (const room of rooms) {
            const got = all.filter((m) => m.room === room).map((m) => m.text);
            for (let n = 0; n < clients.length; n++) {
              assert.deepEqual(
                got.filter((t) => t.startsWith(`${n}:`)),
                Array.from({ length: per }, (_, i) => `${n}:${i}`),
                `${room}: node ${n}'s messages, once and in order`,
              );
            }
          }
        }
        // History lives on the room's shard: a late joiner gets it.
        const late = await member(nodes[1].wsUrl, "late");
        const joined = await late.request("chat.join", {
          room: rooms[2],
          last: 5,
        });
        assert.equal(joined.error, undefined);
        const replayed = await messages(late, rooms[2], 5);
        assert.equal(replayed.length, 5);
        await late.close();
      } finally {
        for (const client of clients) await client.close();
      }
    });
  },
});

Deno.test({
  name:
    "Redis Cluster failover: the master of a room's shard is killed, its replica takes over, delivery resumes without a restart and nothing acknowledged is lost",
  ignore: NO_REDIS,
  async fn() {
    await withRedisCluster(async (nodes, cluster) => {
      const room = "lobby";
      const speaker = await member(nodes[0].wsUrl, "speaker");
      const listeners = await Promise.all(
        nodes.map((node, n) => member(node.wsUrl, `l${n}`)),
      );
      try {
        for (const socket of [speaker, ...listeners]) {
          await socket.request("chat.join", { room });
        }
        const say = async (text: string) =>
          await speaker.request("chat.say", { room, text });
        const acked: string[] = [];
        for (let i = 0; i < 5; i++) {
          if (!(await say(`before ${i}`)).error) acked.push(`before ${i}`);
        }
        assert.equal(acked.length, 5);

        await cluster.kill(await cluster.masterOf(`{${room}}`));
        // While the shard has no master, a publish is refused (never a
        // false ack) or, once a replica serves the slot, goes through.
        const outageEnds = Date.now() + 20_000;
        let refused = 0;
        for (let i = 0; Date.now() < outageEnds; i++) {
          const reply = await say(`during ${i}`);
          if (reply.error) {
            refused++;
            assert.equal(
              (reply.error as { code: string }).code,
              "NOT_DELIVERED",
            );
          } else {
            acked.push(`during ${i}`);
            if (refused > 0 || i > 20) break;
          }
          await delay(100);
        }
        console.log(
          `failover: ${refused} publishes refused with NOT_DELIVERED, ${acked.length} acknowledged so far`,
        );
        await cluster.healthy();
        // After the failover: delivery resumes on every node, no restart.
        await eventually(
          async () => {
            const reply = await say(`after`);
            if (reply.error) return false;
            acked.push("after");
            return true;
          },
          20_000,
          "a publish goes through after the failover",
        );
        for (const listener of listeners) {
          const got = await messages(listener, room, acked.length);
          // Everything acknowledged arrived, once, in order (a resend after
          // a refusal is a new message, never a duplicate of an ack).
          assert.deepEqual(
            got.filter((t) => acked.includes(t)),
            acked,
          );
        }
        for (const node of nodes) {
          await eventually(
            async () => (await health(node)).status === "ok",
            10_000,
            "the node is healthy again",
          );
        }
      } finally {
        for (const socket of [speaker, ...listeners]) await socket.close();
      }
    });
  },
});

Deno.test({
  name:
    "Redis Cluster: an engine closing while every node of the cluster is down ends at once (its QUITs would wait for the cluster)",
  ignore: NO_REDIS,
  async fn() {
    const cluster = await startRedisCluster();
    const engine = new RedisBackplane({
      clusterUrls: cluster.urls,
      logger: silentLogger,
    });
    try {
      await engine.start(() => {});
      await eventually(() => engine.health().state === "ok", 10_000);
      for (const node of cluster.nodes) await cluster.kill(node.port);
      await eventually(() => engine.health().state !== "ok", 10_000);
      await within(engine.close(), 5_000, "closed");
      // ioredis's sharded subscribers end their sockets 2 s after a disconnect.
      await delay(2_100);
    } finally {
      await cluster.close();
    }
  },
});
