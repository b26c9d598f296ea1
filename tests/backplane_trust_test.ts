/**
 * Redis is shared infrastructure: whatever another client of it publishes
 * on duplex's channels or writes into duplex's keys must never reach a
 * duplex client as a push, a reply or a presence change, and must never
 * disturb a member. Real processes on a private Redis; the injections go
 * through `redis-cli`, as an attacker with Redis access would send them.
 */

import assert from "node:assert/strict";
import { startMain } from "./_process.ts";
import { NO_REDIS, redisCli, startRedis } from "./_redis.ts";
import { RedisBackplane } from "@duplex-ws/redis";
import { delay, eventually, TestSocket } from "@duplex-ws/testing";
import { tokenFor } from "./_auth.ts";

type Push = { event?: string; id?: number; data?: Record<string, unknown> };

async function member(url: string, user: string): Promise<TestSocket> {
  const socket = await TestSocket.open(`${url}/`, {
    token: await tokenFor(user),
  });
  assert.equal((await socket.next()).event, "welcome");
  return socket;
}

/** Everything a socket receives within `ms`. */
async function drain(socket: TestSocket, ms = 300): Promise<Push[]> {
  const got: Push[] = [];
  for (;;) {
    try {
      got.push(await socket.next<Push>(ms));
    } catch {
      return got;
    }
  }
}

const NODE = "00000000-0000-4000-8000-000000000000";

Deno.test({
  name:
    "Redis injection: forged pushes, replies, junk and giant frames never reach a client",
  ignore: NO_REDIS,
  async fn() {
    const redis = await startRedis();
    const node = await startMain("listen", {
      REDIS_URL: redis.url,
      LOG_LEVEL: "warn",
    });
    const ada = await member(node.wsUrl, "ada");
    try {
      await ada.request("chat.join", { room: "lobby" });
      await drain(ada);
      const channel = "duplex:{lobby}:t";
      // (A well-formed push is indistinguishable from a node's without a
      // shared secret: BACKPLANE_SECRET closes that, next test.)
      const injections = [
        `${NODE}\n\n{"id":1,"data":"forged reply"}`, // a reply: never
        `${NODE}\n\nnot json at all`,
        "",
        "no newline",
        `short\n\n{"event":"x"}`,
        `${NODE}\nsig\n{"event":"x"}`, // a signature where none is expected
        `${NODE}\n\n{"event":"big","data":"${"x".repeat(2_000_000)}"}`, // over the frame cap
      ];
      for (const frame of injections) {
        await redisCli(redis, "PUBLISH", channel, frame);
      }
      const got = await drain(ada, 500);
      assert.deepEqual(got, [], JSON.stringify(got).slice(0, 300));
      // The member is undisturbed: still open, still answered.
      assert.equal((await ada.request("echo", "fine")).data, "fine");
      const health = await (await fetch(`${node.url}/healthz`)).json();
      assert.equal(health.status, "ok");
      // Every one of them was counted as dropped.
      const metrics = await (await fetch(`${node.url}/metrics`)).text();
      const dropped = Number(
        /duplex_backplane_dropped_frames_total\{kind="redis"\} (\d+)/.exec(
          metrics,
        )?.[1],
      );
      assert.equal(dropped, injections.length);
    } finally {
      await ada.close();
      await node.stop();
      await redis.close();
    }
  },
});

Deno.test({
  name:
    "Redis injection with BACKPLANE_SECRET: only frames signed by the cluster get through",
  ignore: NO_REDIS,
  async fn() {
    const redis = await startRedis();
    const env = {
      REDIS_URL: redis.url,
      BACKPLANE_SECRET: "a shared secret",
      LOG_LEVEL: "warn",
    };
    const [a, b] = [
      await startMain("listen", env),
      await startMain("listen", env),
    ];
    const ada = await member(a.wsUrl, "ada");
    const bob = await member(b.wsUrl, "bob");
    try {
      await ada.request("chat.join", { room: "lobby" });
      await bob.request("chat.join", { room: "lobby" });
      await drain(ada);
      await drain(bob);
      // A well-formed push, unsigned: dropped.
      await redisCli(
        redis,
        "PUBLISH",
        "duplex:{lobby}:t",
        `${NODE}\n\n{"event":"chat.message","data":{"from":"mallory","text":"hi"}}`,
      );
      // A signed publish from the other node: delivered.
      await bob.request("chat.say", { room: "lobby", text: "signed" });
      const got = (await drain(ada, 500)).filter((p) =>
        p.event === "chat.message"
      );
      assert.deepEqual(got.map((p) => p.data?.text), ["signed"]);
    } finally {
      await ada.close();
      await bob.close();
      await a.stop();
      await b.stop();
      await redis.close();
    }
  },
});

Deno.test({
  name:
    "Redis injection: forged presence counts and entries are clamped, checked and expire",
  ignore: NO_REDIS,
  async fn() {
    const redis = await startRedis();
    const node = await startMain("listen", {
      REDIS_URL: redis.url,
      PRESENCE_TTL: "1000",
      LOG_LEVEL: "warn",
    });
    const ada = await member(node.wsUrl, "ada");
    try {
      await ada.request("chat.join", { room: "lobby" });
      const names = async () =>
        ((await ada.request("chat.who", { room: "lobby" })).data as {
          members: { name: string }[];
        }).members.map((m) => m.name).join();
      const pr = "duplex:{lobby}:pr";
      // Junk presence changes are dropped outright.
      await redisCli(redis, "PUBLISH", pr, `${NODE}\n\n[1,2,3]`);
      await redisCli(redis, "PUBLISH", pr, `${NODE}\n\n{"x":{"meta":1}}`);
      assert.equal(await names(), "ada");
      // A well-formed one from a node that never beats: gone at the next
      // heartbeat (with BACKPLANE_SECRET it would not get in at all).
      await redisCli(
        redis,
        "PUBLISH",
        pr,
        `${NODE}\n\n{"x":{"meta":1,"at":1}}`,
      );
      await eventually(async () => await names() === "ada", 3000, "x dropped");
      // Keys carry an expiry: a crashed cluster's keys go by themselves.
      await eventually(
        async () =>
          Number(await redisCli(redis, "PTTL", "duplex:{lobby}:pm")) > 0,
        3000,
        "the presence hash and its expiry",
      );
      const ttl = Number(await redisCli(redis, "PTTL", "duplex:{lobby}:pm"));
      assert.ok(ttl <= 6_000, `PTTL ${ttl}`);
      assert.ok(Number(await redisCli(redis, "PTTL", "duplex:{lobby}:c")) > 0);
    } finally {
      await ada.close();
      await node.stop();
      await redis.close();
    }
  },
});

Deno.test({
  name:
    "Redis: a node killed with SIGKILL leaves presence on the others (members and count)",
  ignore: NO_REDIS,
  async fn() {
    const redis = await startRedis();
    const env = {
      REDIS_URL: redis.url,
      PRESENCE_TTL: "1000",
      LOG_LEVEL: "warn",
    };
    const a = await startMain("listen", env);
    const b = await startMain("listen", env);
    const ada = await member(a.wsUrl, "ada");
    const bob = await member(b.wsUrl, "bob");
    const names = async () =>
      ((await ada.request("chat.who", { room: "r" })).data as {
        members: { name: string }[];
      }).members.map((m) => m.name).sort().join();
    try {
      await ada.request("chat.join", { room: "r" });
      await bob.request("chat.join", { room: "r" });
      await eventually(async () => await names() === "ada,bob", 5000, "both");
      await b.stop("SIGKILL");
      await bob.closed;
      const started = Date.now();
      await eventually(async () => await names() === "ada", 8000, "bob gone");
      assert.ok(Date.now() - started < 8000);
      await delay(10);
    } finally {
      await ada.close();
      await a.stop();
      await b.stop();
      await redis.close();
    }
  },
});

Deno.test({
  name:
    "RedisBackplane counts only live nodes, each count clamped, and deletes the rest",
  ignore: NO_REDIS,
  async fn() {
    const redis = await startRedis();
    const engine = new RedisBackplane({ url: redis.url, presenceTtl: 1000 });
    try {
      await engine.start(() => {});
      engine.setLocalCount("news", 3);
      await delay(100);
      // A node that never beat claims a million members: not counted.
      await redisCli(redis, "HSET", "duplex:{news}:c", NODE, "1000000");
      // A live node (it beats) with an absurd count: clamped.
      const liar = "11111111-1111-4111-8111-111111111111";
      await redisCli(
        redis,
        "ZADD",
        "duplex:nodes",
        String(Date.now() + 60_000),
        liar,
      );
      await redisCli(redis, "HSET", "duplex:{news}:c", liar, "1e99");
      const { count } = await engine.presence("news", 3);
      assert.equal(count, 3 + 10_000_000);
      assert.equal(
        await redisCli(redis, "HEXISTS", "duplex:{news}:c", NODE),
        "0",
      );
    } finally {
      await engine.close();
      await redis.close();
    }
  },
});
