/**
 * Scale-out for real: several `main.ts` processes on one private Redis, and
 * `deno serve --parallel` with the BroadcastChannel engine.
 */

import assert from "node:assert/strict";
import { startMain } from "./_process.ts";
import { NO_REDIS } from "./_redis.ts";
import { health, member, withCluster } from "./_cluster.ts";
import { delay, eventually, TestSocket } from "@duplex-ws/testing";

type Push = { event: string; data: Record<string, unknown> };

/** Collects `count` chat messages, skipping presence pushes. */
async function messages(
  socket: TestSocket,
  count: number,
): Promise<Push["data"][]> {
  const out: Push["data"][] = [];
  while (out.length < count) {
    const push = await socket.next<Push>(10_000);
    if (push.event === "chat.message") out.push(push.data);
  }
  return out;
}

/** Nothing more arrives within `ms` except presence pushes. */
async function noMoreMessages(socket: TestSocket, ms = 200): Promise<void> {
  for (;;) {
    let push: Push;
    try {
      push = await socket.next<Push>(ms);
    } catch {
      return;
    }
    assert.notEqual(
      push.event,
      "chat.message",
      `unexpected ${JSON.stringify(push)}`,
    );
  }
}

/** Who `chat.who` lists in a room, by name. */
async function whoIs(socket: TestSocket, room: string): Promise<string[]> {
  const reply = await socket.request("chat.who", { room });
  const { members } = reply.data as { members: { name: string }[] };
  return members.map((m) => m.name).sort();
}

Deno.test({
  name:
    "Redis: three processes, every client gets every message once and in publish order",
  ignore: NO_REDIS,
  async fn() {
    await withCluster(3, async (nodes) => {
      const clients = await Promise.all(
        nodes.flatMap((node, n) =>
          [0, 1].map((i) => member(node.wsUrl, `u${n}${i}`))
        ),
      );
      try {
        for (const client of clients) {
          await client.request("chat.join", { room: "all" });
        }
        // Presence lists every member on every node, once each.
        await eventually(
          async () => (await whoIs(clients[0], "all")).length === 6,
          5000,
          "every member in presence",
        );
        assert.deepEqual(await whoIs(clients[0], "all"), [
          "u00",
          "u01",
          "u10",
          "u11",
          "u20",
          "u21",
        ]);
        // Three publishers, one per node, interleaved.
        const publishers = [clients[0], clients[2], clients[4]];
        const perPublisher = 40;
        for (let i = 0; i < perPublisher; i++) {
          for (const [p, publisher] of publishers.entries()) {
            publisher.json({
              event: "chat.say",
              data: { room: "all", text: `${p}:${i}` },
            });
          }
        }
        for (const client of clients) {
          const got = await messages(client, perPublisher * publishers.length);
          for (let p = 0; p < publishers.length; p++) {
            const mine = got.map((m) => m.text as string).filter((t) =>
              t.startsWith(`${p}:`)
            );
            assert.deepEqual(
              mine,
              Array.from({ length: perPublisher }, (_, i) => `${p}:${i}`),
              `publisher ${p} as seen by a client`,
            );
          }
          await noMoreMessages(client);
        }
      } finally {
        for (const client of clients) await client.close();
      }
    });
  },
});

Deno.test({
  name: "Redis: a node that dies stops counting after PRESENCE_TTL",
  ignore: NO_REDIS,
  async fn() {
    await withCluster(3, async (nodes) => {
      const clients = await Promise.all(
        nodes.map((node, n) => member(node.wsUrl, `p${n}`)),
      );
      try {
        for (const client of clients) {
          await client.request("chat.join", { room: "presence" });
        }
        const count = async () => (await whoIs(clients[0], "presence")).length;
        await eventually(async () => await count() === 3, 5000, "3 members");
        await nodes[2].stop("SIGKILL");
        await clients[2].closed;
        const started = Date.now();
        while (await count() !== 2) {
          assert.ok(
            Date.now() - started < 8000,
            "the dead node was still counted",
          );
          await delay(200);
        }
      } finally {
        for (const client of clients) await client.close();
      }
    });
  },
});

Deno.test({
  name:
    "Redis outage: a publish that cannot be stored is refused and reaches no one, degraded health, recovery and resubscribe",
  ignore: NO_REDIS,
  async fn() {
    await withCluster(2, async (nodes, redis) => {
      const [a1, a2, b1] = [
        await member(nodes[0].wsUrl, "a1"),
        await member(nodes[0].wsUrl, "a2"),
        await member(nodes[1].wsUrl, "b1"),
      ];
      try {
        for (const client of [a1, a2, b1]) {
          await client.request("chat.join", { room: "ops" });
        }
        assert.equal(
          (await a1.request("chat.say", { room: "ops", text: "before" })).error,
          undefined,
        );
        for (const client of [a1, a2, b1]) {
          assert.equal((await messages(client, 1))[0].text, "before");
        }

        await redis.stop();
        await eventually(() => true);
        const degradedBy = Date.now() + 5000;
        while ((await health(nodes[0])).status !== "degraded") {
          assert.ok(Date.now() < degradedBy, "health never reported degraded");
          await delay(50);
        }
        const during = await a1.request("chat.say", {
          room: "ops",
          text: "during",
        });
        // Rooms have history: a publish Redis cannot store is an error and
        // reaches no one, not even the sender's own node (no false ack, and
        // no position that the others never get).
        assert.equal((during.error as { code: string }).code, "NOT_DELIVERED");
        for (const client of [a1, a2, b1]) await noMoreMessages(client, 300);

        await redis.restart();
        const recoveredBy = Date.now() + 15_000;
        for (const node of nodes) {
          while ((await health(node)).status !== "ok") {
            assert.ok(Date.now() < recoveredBy, "a node never recovered");
            await delay(100);
          }
        }
        // Subscriptions came back: a publish reaches the other node again.
        let reached = false;
        for (let attempt = 0; attempt < 50 && !reached; attempt++) {
          const reply = await a1.request("chat.say", {
            room: "ops",
            text: `after-${attempt}`,
          });
          assert.equal(reply.error, undefined);
          try {
            const got = await messages(b1, 1).then((m) => m[0].text);
            reached = String(got).startsWith("after-");
          } catch {
            await delay(100);
          }
        }
        assert.ok(
          reached,
          "the other node never received a publish after recovery",
        );
        // Presence came back too, though Redis restarted empty.
        await eventually(
          async () => (await whoIs(b1, "ops")).length === 3,
          10_000,
          "presence after the outage",
        );
      } finally {
        for (const client of [a1, a2, b1]) await client.close();
      }
    });
  },
});

Deno.test("deno serve --parallel with BroadcastChannel: every client gets every message once, in order", async () => {
  const node = await startMain("serve", {
    BACKPLANE: "broadcast-channel",
    LOG_LEVEL: "warn",
  }, [
    "--parallel",
  ]);
  const clients: TestSocket[] = [];
  try {
    for (let i = 0; i < 8; i++) clients.push(await member(node.wsUrl, `c${i}`));
    for (const client of clients) {
      await client.request("chat.join", { room: "par" });
    }
    const publishers = [clients[0], clients[5]];
    for (let i = 0; i < 30; i++) {
      for (const [p, publisher] of publishers.entries()) {
        publisher.json({
          event: "chat.say",
          data: { room: "par", text: `${p}:${i}` },
        });
      }
    }
    for (const client of clients) {
      const got = (await messages(client, 60)).map((m) => m.text as string);
      for (let p = 0; p < publishers.length; p++) {
        assert.deepEqual(
          got.filter((t) => t.startsWith(`${p}:`)),
          Array.from({ length: 30 }, (_, i) => `${p}:${i}`),
        );
      }
      await noMoreMessages(client);
    }
    await eventually(
      async () => (await whoIs(clients[3], "par")).length === 8,
      5000,
      "every isolate's members in presence",
    );
  } finally {
    for (const client of clients) await client.close();
    await node.stop("SIGTERM");
  }
});
