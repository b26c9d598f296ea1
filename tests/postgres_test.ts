/**
 * The Postgres engine as apps use it, on a private PostgreSQL: three
 * `main.ts` processes on one database (`DATABASE_URL`); publishes made in
 * the app's own transaction, delivered if and only if it commits (and from
 * plain SQL, for another driver); the database restarting under load with
 * nothing acknowledged lost. The engine's own conformance is
 * `engine_suite_test.ts`.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import { createServer, EventRouter, silentLogger } from "@duplex-ws/duplex";
import { DuplexClient } from "@duplex-ws/client";
import { PostgresBackplane } from "@duplex-ws/postgres";
import { delay, eventually, startServer, TestSocket } from "@duplex-ws/testing";
import { postgres } from "../lib/postgres/_postgres.ts";
import { member, reachedEngine } from "./_cluster.ts";
import { type MainProcess, startMain } from "./_process.ts";
import { NO_POSTGRES, startPostgres } from "./_postgres.ts";

type Pushes = { bid: { amount: number } };

const router = new EventRouter<undefined, Pushes>().on(
  "watch",
  z.object({
    topic: z.string(),
    since: z.object({ offset: z.number(), epoch: z.string() }).optional(),
  }),
  ({ topic, since }, ctx) => ctx.join(topic, { since }),
);

function node(url: string) {
  return createServer({
    router,
    logger: silentLogger,
    backplane: new PostgresBackplane({ url }),
    topics: [{ match: "bids", history: { size: 1_000, ttl: 600_000 } }],
  });
}

Deno.test({
  name:
    "Postgres: three main.ts processes on one DATABASE_URL, presence lists every member, every client gets every message once and in publish order",
  ignore: NO_POSTGRES,
  async fn() {
    const pg = await startPostgres();
    const nodes: MainProcess[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        nodes.push(
          await startMain("listen", {
            DATABASE_URL: pg.url,
            LOG_LEVEL: "warn",
            DRAIN_TIMEOUT: "500",
          }),
        );
      }
      for (const each of nodes) await reachedEngine(each);
      const clients = await Promise.all(
        nodes.map((each, n) => member(each.wsUrl, `p${n}`)),
      );
      try {
        for (const client of clients) {
          await client.request("chat.join", { room: "pg" });
        }
        // Presence with members across nodes: each sees all three.
        await eventually(
          async () => {
            const reply = await clients[0].request("chat.who", { room: "pg" });
            const { members } = reply.data as { members: { name: string }[] };
            return members.map((m) => m.name).sort().join() === "p0,p1,p2";
          },
          5_000,
          "every member in presence",
        );
        for (let i = 0; i < 30; i++) {
          for (const [p, client] of clients.entries()) {
            client.json({
              event: "chat.say",
              data: { room: "pg", text: `${p}:${i}` },
            });
          }
        }
        for (const client of clients) {
          const texts: string[] = [];
          while (texts.length < 90) {
            const push = await client.next<
              { event: string; data: { text: string } }
            >(10_000);
            if (push.event === "chat.message") texts.push(push.data.text);
          }
          for (let p = 0; p < 3; p++) {
            assert.deepEqual(
              texts.filter((t) => t.startsWith(`${p}:`)),
              Array.from({ length: 30 }, (_, i) => `${p}:${i}`),
            );
          }
        }
      } finally {
        for (const client of clients) await client.close();
      }
    } finally {
      for (const each of nodes) await each.stop("SIGTERM");
      await pg.close();
    }
  },
});

Deno.test({
  name:
    "Postgres transactional publish: delivered on every node if and only if the app's transaction commits, with its position; plain SQL publishes too",
  ignore: NO_POSTGRES,
  async fn() {
    const pg = await startPostgres();
    const [a, b] = [node(pg.url), node(pg.url)];
    const [sa, sb] = [startServer(a), startServer(b)];
    const sql = postgres(pg.url, { onnotice: () => {} });
    try {
      await Promise.all([a.ready, b.ready]);
      await sql`create table bids (amount int not null)`;
      const [onA, onB] = [
        await TestSocket.open(sa.wsUrl),
        await TestSocket.open(sb.wsUrl),
      ];
      for (const socket of [onA, onB]) {
        await socket.request("watch", { topic: "bids" });
      }
      const committed = await sql.begin(async (tx) => {
        await tx`insert into bids values (1)`;
        const done = await a.publish("bids", "bid", { amount: 1 }, {
          transaction: tx,
        });
        await delay(200); // not delivered before the commit
        return done.position;
      });
      assert.equal(committed?.offset, 1);
      for (const socket of [onA, onB]) {
        const push = await socket.next<{ data: Record<string, unknown> }>();
        assert.deepEqual(push.data, {
          amount: 1,
          offset: 1,
          epoch: committed!.epoch,
        });
      }
      await assert.rejects(() =>
        sql.begin(async (tx) => {
          await tx`insert into bids values (2)`;
          await a.publish("bids", "bid", { amount: 2 }, { transaction: tx });
          throw new Error("the app changed its mind");
        })
      );
      await sql`select * from duplex.publish('bids', 'bid', '{"amount":3}'::jsonb, 1000, 600000)`;
      for (const socket of [onA, onB]) {
        const push = await socket.next<{ data: Record<string, unknown> }>();
        assert.deepEqual(push.data.amount, 3, "the rolled back bid never came");
        assert.equal(push.data.offset, 2, "and took no position");
      }
      const [{ count }] = await sql`select count(*)::int as count from bids`;
      assert.equal(count, 1);
      await assert.rejects(
        () =>
          createServer({
            router,
            logger: silentLogger,
            topics: [{ match: "t", history: true }],
          })
            .publish("t", "bid", { amount: 1 }, { transaction: {} }),
        /cannot publish in a transaction|Cannot publish in a transaction/,
      );
      await onA.close();
      await onB.close();
    } finally {
      await sql.end();
      await sa.close();
      await sb.close();
      await pg.close();
    }
  },
});

Deno.test({
  name:
    "Postgres restarting under load: every publish that was acknowledged reaches a member on the other node, once and in order",
  ignore: NO_POSTGRES,
  async fn() {
    const pg = await startPostgres();
    const [a, b] = [node(pg.url), node(pg.url)];
    const [sa, sb] = [startServer(a), startServer(b)];
    const client = new DuplexClient<typeof router>({
      url: sb.wsUrl,
      minReconnectDelay: 50,
    });
    const got: number[] = [];
    client.on("bid", (bid) => got.push(bid.amount));
    try {
      await Promise.all([a.ready, b.ready]);
      await client.join("watch", { topic: "bids" });
      const acknowledged: number[] = [];
      let stopped = false;
      const publishing = (async () => {
        for (let n = 1; !stopped && n < 100_000; n++) {
          const done = await a.publish("bids", "bid", { amount: n });
          if (done.position) acknowledged.push(n);
          await delay(10);
        }
      })();
      await delay(500);
      await pg.stop();
      await delay(1_000);
      await pg.restart();
      await eventually(
        () => a.health().status === "ok" && b.health().status === "ok",
        15_000,
        "both nodes back",
      );
      await delay(500);
      stopped = true;
      await publishing;
      assert.ok(acknowledged.length > 50, "published on both sides of it");
      await eventually(
        () => acknowledged.every((n) => got.includes(n)),
        15_000,
        "every acknowledged publish",
      );
      assert.deepEqual(got, [...got].sort((x, y) => x - y), "in order");
      assert.equal(new Set(got).size, got.length, "once");
    } finally {
      client.close();
      await sa.close();
      await sb.close();
      await pg.close();
    }
  },
});
