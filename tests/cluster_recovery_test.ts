/**
 * Recovery across processes, for real: nodes on one private Redis, a member
 * that moves to another node after a cut or after its node was SIGKILLed,
 * `deno serve --parallel` on Redis, and Redis restarted without its data.
 * The members are typed clients, exactly as an app would use them.
 */

import assert from "node:assert/strict";
import { DuplexClient, type RejoinEvent } from "@duplex-ws/client";
import { eventually, startProxy } from "@duplex-ws/testing";
import type { ExampleRouter } from "../routes/events.ts";
import { withCluster } from "./_cluster.ts";
import { tokenFor } from "./_auth.ts";
import { startMain } from "./_process.ts";
import { NO_REDIS, redisCli, startRedis } from "./_redis.ts";

type Client = DuplexClient<ExampleRouter>;

/** A client whose every connection goes to the next of `urls` (the last one repeats). */
function client(urls: string[], user: string): Client {
  let attempt = 0;
  return new DuplexClient<ExampleRouter>({
    url: () => `${urls[Math.min(attempt++, urls.length - 1)]}/`,
    getToken: () => tokenFor(user),
    minReconnectDelay: 20,
    maxReconnectDelay: 200,
  });
}

function record(c: Client): string[] {
  const seen: string[] = [];
  c.on("chat.message", (m) => seen.push(m.text));
  return seen;
}

const texts = (n: number) => Array.from({ length: n }, (_, i) => `m${i}`);

/** No more messages than `expected` within a short while, and exactly those. */
async function exactly(seen: string[], expected: string[]): Promise<void> {
  await eventually(
    () => seen.length >= expected.length,
    15_000,
    `${expected.length} messages (have ${seen.length})`,
  );
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(seen, expected);
}

const LIMITS = { RATE_LIMIT_MESSAGES: "0", RATE_LIMIT_BYTES: "0" };

Deno.test({
  name:
    "Redis, three processes: a member cut off reconnects to another node and gets exactly the 200 it missed, then live",
  ignore: NO_REDIS,
  async fn() {
    await withCluster(3, async (nodes) => {
      const proxy = startProxy({ port: nodes[0].port });
      const ada = client([proxy.wsUrl(""), nodes[1].wsUrl], "ada");
      const bob = client([nodes[2].wsUrl], "bob");
      const seen = record(ada);
      const rejoins: RejoinEvent[] = [];
      ada.onRejoin((event) => rejoins.push(event));
      try {
        await ada.join("chat.join", { room: "r" });
        await bob.join("chat.join", { room: "r" });
        await bob.request("chat.say", { room: "r", text: "seen" });
        await eventually(() => seen.length === 1, 5000, "the first message");
        proxy.cut({ refuseFor: 60_000 });
        for (const text of texts(200)) {
          await bob.request("chat.say", { room: "r", text });
        }
        await ada.ready();
        await bob.request("chat.say", { room: "r", text: "live" });
        await exactly(seen, ["seen", ...texts(200), "live"]);
        assert.equal(rejoins.at(-1)?.recovered, true);
      } finally {
        ada.close();
        bob.close();
        await proxy.close();
      }
    }, LIMITS);
  },
});

Deno.test({
  name:
    "Redis: a node SIGKILLed mid-stream; its member moves to another node and recovers everything acknowledged",
  ignore: NO_REDIS,
  async fn() {
    await withCluster(3, async (nodes) => {
      const ada = client([nodes[0].wsUrl, nodes[1].wsUrl], "ada");
      const bob = client([nodes[2].wsUrl], "bob");
      const seen = record(ada);
      try {
        await ada.join("chat.join", { room: "k" });
        await bob.join("chat.join", { room: "k" });
        const acked: string[] = [];
        const publishing = (async () => {
          for (const text of texts(300)) {
            await bob.request("chat.say", { room: "k", text });
            acked.push(text);
          }
        })();
        await eventually(() => seen.length >= 100, 10_000, "100 delivered");
        await nodes[0].stop("SIGKILL");
        await publishing;
        await ada.ready();
        await exactly(seen, acked);
      } finally {
        ada.close();
        bob.close();
      }
    }, LIMITS);
  },
});

Deno.test({
  name:
    "Redis restarted without its data: members are told (stream.reset → recovered false) and live delivery goes on in the new epoch",
  ignore: NO_REDIS,
  async fn() {
    await withCluster(2, async (nodes, redis) => {
      const ada = client([nodes[0].wsUrl], "ada");
      const bob = client([nodes[1].wsUrl], "bob");
      const seen = record(ada);
      const rejoins: RejoinEvent[] = [];
      ada.onRejoin((event) => rejoins.push(event));
      try {
        await ada.join("chat.join", { room: "x" });
        await bob.join("chat.join", { room: "x" });
        await bob.request("chat.say", { room: "x", text: "before" });
        await eventually(() => seen.length === 1, 5000, "before");
        const epoch = ada.position("x")!.epoch;
        await redis.stop();
        await redis.restart();
        let sent = false;
        for (let i = 0; i < 100 && !sent; i++) {
          sent = await bob.request("chat.say", { room: "x", text: "after" })
            .then(() => true, () => false);
          if (!sent) await new Promise((r) => setTimeout(r, 100));
        }
        assert.ok(sent, "publishing never worked again");
        await eventually(
          () => rejoins.some((r) => r.recovered === false),
          10_000,
          "recovered false",
        );
        await eventually(() => seen.includes("after"), 5000, "after");
        assert.notEqual(ada.position("x")!.epoch, epoch, "a new epoch");
        await bob.request("chat.say", { room: "x", text: "later" });
        await eventually(() => seen.at(-1) === "later", 5000, "later");
        assert.deepEqual(seen, ["before", "after", "later"]);
      } finally {
        ada.close();
        bob.close();
      }
    });
  },
});

Deno.test({
  name:
    "Redis: a node whose subscription dropped catches up from history by itself, in order, without a reset",
  ignore: NO_REDIS,
  async fn() {
    await withCluster(2, async (nodes, redis) => {
      const ada = client([nodes[0].wsUrl], "ada");
      const bob = client([nodes[1].wsUrl], "bob");
      const seen = record(ada);
      const rejoins: RejoinEvent[] = [];
      ada.onRejoin((event) => rejoins.push(event));
      try {
        await ada.join("chat.join", { room: "s" });
        await bob.join("chat.join", { room: "s" });
        await bob.request("chat.say", { room: "s", text: "m0" });
        await eventually(() => seen.length === 1, 5000, "m0");
        // Every subscriber connection is dropped; publishing goes on at
        // once, before the nodes have subscribed again.
        await redisCli(redis, "CLIENT", "KILL", "TYPE", "pubsub");
        for (const text of texts(6).slice(1)) {
          await bob.request("chat.say", { room: "s", text });
        }
        await exactly(seen, texts(6));
        assert.deepEqual(rejoins, [], "no rejoin was needed");
      } finally {
        ada.close();
        bob.close();
      }
    }, LIMITS);
  },
});

Deno.test({
  name:
    "deno serve --parallel on Redis: isolates agree on positions; a member cut off gets exactly what it missed",
  ignore: NO_REDIS,
  async fn() {
    const redis = await startRedis();
    const node = await startMain("serve", {
      REDIS_URL: redis.url,
      LOG_LEVEL: "warn",
      ...LIMITS,
    }, ["--parallel"]);
    const proxy = startProxy({ port: node.port });
    const ada = client([proxy.wsUrl("")], "ada");
    const bobs = [client([node.wsUrl], "bob"), client([node.wsUrl], "cy")];
    const seen = record(ada);
    try {
      await ada.join("chat.join", { room: "p" });
      for (const bob of bobs) await bob.join("chat.join", { room: "p" });
      proxy.cut({ refuseFor: 300 });
      // Two publishers, likely on two isolates, one position sequence.
      await Promise.all(bobs.map(async (bob, b) => {
        for (let i = 0; i < 100; i++) {
          await bob.request("chat.say", { room: "p", text: `${b}:${i}` });
        }
      }));
      await ada.ready();
      await eventually(() => seen.length >= 200, 15_000, "200 messages");
      for (const b of [0, 1]) {
        assert.deepEqual(
          seen.filter((t) => t.startsWith(`${b}:`)),
          Array.from({ length: 100 }, (_, i) => `${b}:${i}`),
        );
      }
      assert.equal(new Set(seen).size, 200, "none twice");
      assert.equal(ada.position("p")?.offset, 200);
    } finally {
      ada.close();
      for (const bob of bobs) bob.close();
      await proxy.close();
      await node.stop("SIGTERM");
      await redis.close();
    }
  },
});
