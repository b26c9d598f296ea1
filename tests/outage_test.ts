/**
 * What a node changes while its engine cannot be reached reaches the
 * engine once it can, on Redis and on Postgres: a member that left is
 * counted out, decided vacated, and gone from presence on the other nodes
 * (not a member that stays there for good).
 */

import assert from "node:assert/strict";
import { z } from "zod";
import {
  createServer,
  type DuplexServer,
  EventRouter,
  type ServerOptions,
  silentLogger,
} from "@duplex-ws/duplex";
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
  .on(
    "join",
    z.object({ topic: z.string(), key: z.string() }),
    ({ topic, key }, ctx) => {
      ctx.join(topic, { presence: { key, meta: {} } });
      return true;
    },
  )
  .on(
    "leave",
    z.object({ topic: z.string() }),
    ({ topic }, ctx) => ctx.leave(topic),
  );

/** An engine with a real server that can be made unreachable while it keeps its data. */
interface Engine {
  /** An engine for the node whose way to it is cut. */
  cut: Backplane;
  /** An engine for a node that reaches it whenever it is up. */
  direct: () => Backplane;
  /** Makes it unreachable for `cut`; resolves with what makes it reachable again. */
  down(): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

const ENGINES: [string, boolean, () => Promise<Engine>][] = [
  ["Redis", NO_REDIS, async () => {
    const redis = await startRedis();
    // The cut node's way to Redis is cut, for 5 s.
    const link = startProxy({ port: Number(new URL(redis.url).port) });
    const engine = (url: string) =>
      new RedisBackplane({ url, logger: silentLogger });
    return {
      cut: engine(`redis://127.0.0.1:${link.port}`),
      direct: () => engine(redis.url),
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
      cut: new PostgresBackplane({ url: pg.url }),
      direct: () => new PostgresBackplane({ url: pg.url }),
      down: async () => {
        await pg.stop();
        return () => pg.restart();
      },
      close: () => pg.close(),
    };
  }],
];

/** What a test does around the outage (`options` for the cut node's server). */
interface Steps {
  options: Partial<Omit<ServerOptions<undefined, never>, "router">>;
  /** Once `ann` has joined, before the outage. */
  before(app: DuplexServer<undefined, never>): Promise<void>;
  /** In the outage, after the leave. */
  during?(): void;
  /** Once the engine is back. */
  after(app: DuplexServer<undefined, never>): Promise<void>;
}

/** Joins `room` as `ann` on the cut node, takes the engine away, leaves, and brings it back. */
async function leaveDuringOutage(engine: Engine, steps: Steps): Promise<void> {
  const { options, before, during, after } = steps;
  const app = createServer({
    router,
    logger: silentLogger,
    backplane: engine.cut,
    ...options,
  });
  const served = startServer(app);
  let socket: TestSocket | undefined;
  try {
    await app.ready;
    socket = await TestSocket.open(served.wsUrl);
    await socket.request("join", { topic: "room", key: "ann" });
    await before(app);
    const up = await engine.down();
    await eventually(() => app.health().status !== "ok", 10_000, "outage");
    await socket.request("leave", { topic: "room" });
    await delay(1_500); // what the node writes now fails
    during?.();
    await up();
    await eventually(() => app.health().status === "ok", 20_000, "back");
    await after(app);
  } finally {
    await socket?.close();
    await served.close();
  }
}

for (const [name, skip, start] of ENGINES) {
  Deno.test({
    name:
      `outage on ${name}: a member that leaves while the engine cannot be reached is counted out, and decided vacated, once it can`,
    ignore: skip,
    async fn() {
      const engine = await start();
      const events: string[] = [];
      try {
        await leaveDuringOutage(engine, {
          options: {
            occupancy: {
              onOccupied: (topic) => void events.push(`occupied ${topic}`),
              onVacated: (topic) => void events.push(`vacated ${topic}`),
            },
          },
          before: () => eventually(() => events.length === 1, 5_000),
          during: () => assert.deepEqual(events, ["occupied room"]),
          after: async (app) => {
            await eventually(
              async () => (await app.presence("room")).count === 0,
              20_000,
              "the node's count written as zero",
            );
            await eventually(() => events.length === 2, 15_000, "vacated");
            assert.deepEqual(events, ["occupied room", "vacated room"]);
          },
        });
      } finally {
        await engine.close();
      }
    },
  });

  Deno.test({
    name:
      `outage on ${name}: a member that leaves while its node cannot reach the engine leaves the other nodes' presence once it can`,
    ignore: skip,
    async fn() {
      const engine = await start();
      const topics = [{ match: "room", presence: {} }];
      const other = createServer({
        router,
        logger: silentLogger,
        backplane: engine.direct(),
        topics,
        presenceInterval: 50,
        presenceGrace: 0,
      });
      const served = startServer(other);
      const watcher = await TestSocket.open(served.wsUrl);
      const keys = async () =>
        Object.keys((await other.presence("room")).members ?? {}).sort();
      try {
        await other.ready;
        await watcher.request("join", { topic: "room", key: "bob" });
        await leaveDuringOutage(engine, {
          options: { topics, presenceInterval: 50, presenceGrace: 0 },
          before: () =>
            eventually(async () => (await keys()).join() === "ann,bob", 5_000),
          after: () =>
            eventually(
              async () => (await keys()).join() === "bob",
              20_000,
              "ann gone from the other node's presence",
            ),
        });
      } finally {
        await watcher.close();
        await served.close();
        await engine.close();
      }
    },
  });
}
