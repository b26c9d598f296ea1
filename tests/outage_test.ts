/**
 * What a node changes while its engine cannot be reached reaches the
 * engine once it can, on Redis and on Postgres: a member that left is
 * counted out, decided vacated, and gone from presence on the other nodes
 * (not a member that stays there for good); an outage past `presenceTtl`
 * resyncs the node once.
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
import type {
  Backplane,
  BackplaneEvents,
  BackplaneSink,
} from "@duplex-ws/duplex/engine";
import { RedisBackplane } from "@duplex-ws/redis";
import { PostgresBackplane } from "@duplex-ws/postgres";
import {
  delay,
  eventually,
  startProxy,
  startServer,
  TestSocket,
  within,
} from "@duplex-ws/testing";
import { NO_REDIS, startRedis } from "./_redis.ts";
import { NO_POSTGRES, startPostgres } from "./_postgres.ts";
import { startTestApp } from "./_process.ts";
import {
  healthy,
  occupancyWatcher,
  QUICK,
  SHARED_ENGINES,
} from "./_shared_engines.ts";

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

/** Heartbeats of the cut node's engine (its defaults, or `QUICK`). */
type Beats = Partial<typeof QUICK>;

const ENGINES: [string, boolean, (beats?: Beats) => Promise<Engine>][] = [
  ["Redis", NO_REDIS, async (beats = {}) => {
    const redis = await startRedis();
    // The cut node's way to Redis is cut, for 5 s.
    const link = startProxy({ port: Number(new URL(redis.url).port) });
    const engine = (url: string, quick?: Beats) =>
      new RedisBackplane({ url, logger: silentLogger, ...quick });
    return {
      cut: engine(`redis://127.0.0.1:${link.port}`, beats),
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
  ["Postgres", NO_POSTGRES, async (beats = {}) => {
    const pg = await startPostgres();
    return {
      cut: new PostgresBackplane({ url: pg.url, ...beats }),
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

/**
 * A Redis engine whose presence reloads can be held or made to fail, and
 * whose incoming presence changes can be dropped (as while its subscriber
 * connection is down): what a reload after an outage meets.
 */
class ReloadingEngine extends RedisBackplane {
  events: BackplaneEvents | undefined;
  /** Presence changes received (dropped ones included). */
  received = 0;
  /** Drops incoming presence changes while set. */
  deaf = false;
  /** Loads still to fail. */
  failing = 0;
  /** While set, a load's result waits for it. */
  hold: Promise<void> | undefined;

  override start(sink: BackplaneSink, events?: BackplaneEvents) {
    this.events = events;
    return super.start(sink, {
      ...events!,
      presence: (topic, node, delta) => {
        this.received++;
        if (!this.deaf) events!.presence(topic, node, delta);
      },
    });
  }

  override async loadPresence(topic: string) {
    if (this.failing > 0 && this.failing--) throw new Error("engine down");
    const loaded = await super.loadPresence(topic);
    await this.hold;
    return loaded;
  }
}

/** Serves `room` with presence on two Redis nodes: `bob` on the watched one, `ann` on the other. */
async function twoNodes(
  run: (
    engine: ReloadingEngine,
    keys: () => Promise<string>,
    ann: TestSocket,
    join: (key: string) => Promise<void>,
    otherNode: string,
  ) => Promise<void>,
): Promise<void> {
  const redis = await startRedis();
  const options = {
    router,
    logger: silentLogger,
    topics: [{ match: "room", presence: {} }],
    presenceInterval: 50,
    presenceGrace: 0,
  };
  const engine = new ReloadingEngine({ url: redis.url, logger: silentLogger });
  const watched = createServer({ ...options, backplane: engine });
  const otherEngine = new RedisBackplane({
    url: redis.url,
    logger: silentLogger,
  });
  const other = createServer({ ...options, backplane: otherEngine });
  const servers = [startServer(watched), startServer(other)];
  const sockets: TestSocket[] = [];
  const keys = async () =>
    Object.keys((await watched.presence("room")).members ?? {}).sort().join();
  try {
    await Promise.all([watched.ready, other.ready]);
    sockets.push(await TestSocket.open(servers[0].wsUrl));
    sockets.push(await TestSocket.open(servers[1].wsUrl));
    await sockets[0].request("join", { topic: "room", key: "bob" });
    await sockets[1].request("join", { topic: "room", key: "ann" });
    await eventually(async () => (await keys()) === "ann,bob", 5_000);
    await run(engine, keys, sockets[1], async (key) => {
      sockets.push(await TestSocket.open(servers[1].wsUrl));
      await sockets.at(-1)!.request("join", { topic: "room", key });
    }, otherEngine.node);
  } finally {
    for (const socket of sockets) await socket.close();
    for (const served of servers) await served.close();
    await redis.close();
  }
}

/**
 * Holds a reload of the watched node's presence once it has read `ann`,
 * runs `meanwhile`, then lets the reload finish: `bob` alone stays.
 */
async function reloadOvertaken(
  engine: ReloadingEngine,
  keys: () => Promise<string>,
  meanwhile: () => Promise<void>,
): Promise<void> {
  let release = () => {};
  engine.hold = new Promise((resolve) => release = resolve);
  engine.events!.resync(); // reads ann, and waits
  await delay(100);
  await meanwhile();
  engine.hold = undefined;
  release();
  await eventually(async () => (await keys()) === "bob", 5_000);
  await delay(200); // the reload's result has been applied
  assert.equal(await keys(), "bob");
}

Deno.test({
  name:
    "presence reload after an outage: a change that arrives while the reload is under way is not undone by it",
  ignore: NO_REDIS,
  async fn() {
    await twoNodes(async (engine, keys, ann) => {
      await reloadOvertaken(engine, keys, async () => {
        const before = engine.received;
        await ann.request("leave", { topic: "room" });
        await eventually(() => engine.received > before, 5_000, "ann's leave");
      });
    });
  },
});

Deno.test({
  name:
    "presence reload after an outage: a node the engine reports gone while the reload is under way stays gone",
  ignore: NO_REDIS,
  async fn() {
    await twoNodes(async (engine, keys, _ann, _join, otherNode) => {
      await reloadOvertaken(engine, keys, async () => {
        engine.events!.nodeGone(otherNode); // as its heartbeat would tell
        await eventually(async () => (await keys()) === "bob", 5_000);
      });
    });
  },
});

Deno.test({
  name:
    "presence reload after an outage: a reload that fails is tried again, so a leave the node missed is not kept for good",
  ignore: NO_REDIS,
  async fn() {
    await twoNodes(async (engine, keys, ann, join) => {
      await join("cat"); // the other node stays, with fewer members
      await eventually(async () => (await keys()) === "ann,bob,cat", 5_000);
      engine.deaf = true;
      const before = engine.received;
      await ann.request("leave", { topic: "room" });
      await eventually(() => engine.received > before, 5_000, "ann's leave");
      assert.equal(await keys(), "ann,bob,cat"); // missed
      engine.deaf = false;
      engine.failing = 1;
      engine.events!.resync();
      await eventually(async () => (await keys()) === "bob,cat", 5_000);
    });
  },
});

Deno.test({
  name:
    "outage on Redis: a node cut off longer than presenceTtl has its topics decided vacated by the others, and occupied again once it is back",
  ignore: NO_REDIS,
  async fn() {
    const redis = await startRedis();
    const link = startProxy({ port: Number(new URL(redis.url).port) });
    const events: string[] = [];
    const [cut, other] = [`redis://127.0.0.1:${link.port}`, redis.url].map(
      (url, i) =>
        createServer({
          router,
          logger: silentLogger,
          backplane: new RedisBackplane({
            url,
            logger: silentLogger,
            ...QUICK,
          }),
          occupancy: {
            onOccupied: (topic) => void events.push(`occupied ${topic} ${i}`),
            onVacated: (topic) => void events.push(`vacated ${topic} ${i}`),
          },
        }),
    );
    const servers = [startServer(cut), startServer(other)];
    let socket: TestSocket | undefined;
    try {
      await Promise.all([cut.ready, other.ready]);
      socket = await TestSocket.open(servers[0].wsUrl);
      await socket.request("join", { topic: "room", key: "ann" });
      await eventually(() => events.length === 1, 5_000, "occupied");
      await delay(1_500); // its second look done: nothing left to retry
      link.cut({ refuseFor: 5_000 });
      await eventually(() => events.length === 2, 10_000, "vacated");
      await eventually(() => events.length === 3, 15_000, "occupied again");
      await delay(1_500);
      assert.deepEqual(events, [
        "occupied room 0",
        "vacated room 1",
        "occupied room 0",
      ]);
    } finally {
      await socket?.close();
      for (const served of servers) await served.close();
      await link.close();
      await redis.close();
    }
  },
});

for (const [name, skip, start] of SHARED_ENGINES) {
  Deno.test({
    name:
      `stall on ${name}: a node whose event loop stalls past presenceTtl, its topic decided vacated by the others, decides it occupied again once it runs`,
    ignore: skip,
    async fn() {
      const engine = await start();
      const { server: other, events } = occupancyWatcher(engine);
      const served = startServer(other);
      const node = await startTestApp({ occupancy: {} }, {}, engine.env);
      let socket: TestSocket | undefined;
      const occupied = async () => {
        const { entries } = await other.history("_occ.room", { last: 1 });
        return (entries.at(-1)?.data as { occupied?: boolean })?.occupied;
      };
      try {
        await other.ready;
        await healthy(node);
        socket = await TestSocket.open(`${node.wsUrl}/?user=kim`);
        await socket.request("join", { topic: "room" });
        await eventually(async () => await occupied() === true, 5_000);
        await delay(1_500); // its second look done: nothing left to retry
        socket.json({ event: "stall", data: { ms: 4_500 }, id: 99 });
        await eventually(() => events.length > 0, 8_000, "taken for gone");
        assert.deepEqual(events, ["vacated room"]);
        assert.deepEqual(await socket.next(10_000), { id: 99, data: true });
        await eventually(async () => await occupied() === true, 5_000, "back");
      } finally {
        await socket?.close().catch(() => {});
        await node.stop().catch(() => {});
        await served.close();
        await engine.close();
      }
    },
  });
}

Deno.test({
  name:
    "outage on Redis: while Redis cannot be reached, reading the other nodes' presence rejects (an empty answer would drop their members) and closing ends at once",
  ignore: NO_REDIS,
  async fn() {
    const redis = await startRedis();
    const link = startProxy({ port: Number(new URL(redis.url).port) });
    const engine = new RedisBackplane({
      url: `redis://127.0.0.1:${link.port}`,
      logger: silentLogger,
    });
    try {
      await engine.start(() => {});
      assert.equal((await engine.loadPresence("room")).size, 0);
      link.cut({ refuseFor: 60_000 });
      await eventually(() => engine.health().state !== "ok", 5_000);
      await assert.rejects(engine.loadPresence("room"), /unavailable/);
      // Before, its subscriber's QUIT waited for Redis: for the whole outage.
      await within(engine.close(), 5_000, "closed");
    } finally {
      await link.close();
      await redis.close();
    }
  },
});

for (const [name, skip, start] of ENGINES) {
  Deno.test({
    name:
      `outage on ${name}: an outage past presenceTtl resyncs once when the engine is back, not once more at the next heartbeat`,
    ignore: skip,
    async fn() {
      const engine = await start(QUICK);
      let resyncs = 0;
      try {
        await engine.cut.start(() => {}, {
          presence() {},
          nodeGone() {},
          resync: () => void resyncs++,
        });
        await delay(QUICK.presenceTtl); // started
        assert.equal(resyncs, 0);
        const up = await engine.down();
        await delay(QUICK.presenceTtl + 1_000);
        await up();
        await eventually(() => resyncs > 0, 15_000, "resynced");
        await delay(QUICK.presenceTtl); // heartbeats after the outage
        assert.equal(resyncs, 1);
      } finally {
        await engine.cut.close();
        await engine.close();
      }
    },
  });
}
