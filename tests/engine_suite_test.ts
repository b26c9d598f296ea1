/**
 * One conformance suite for every engine (local, Redis, Postgres): what
 * `append` numbers and keeps (size, keys, `ifPosition`, `latest`), what a
 * history read answers, and, for engines with several nodes, that a
 * numbered publish, a plain one, a control message, a member count and a
 * keyed reply reach the other node. An engine passes what the core relies
 * on, or it is not an engine.
 */

import assert from "node:assert/strict";
import {
  type Backplane,
  type BackplaneEvents,
  MemoryReplies,
  type ReplyStore,
} from "@duplex-ws/duplex/engine";
import { LocalBackplane, silentLogger } from "@duplex-ws/duplex";
import { RedisBackplane } from "@duplex-ws/redis";
import { PostgresBackplane } from "@duplex-ws/postgres";
import { eventually } from "@duplex-ws/testing";
import { NO_REDIS, startRedis } from "./_redis.ts";
import { NO_POSTGRES, startPostgres } from "./_postgres.ts";

interface Received {
  topic: string;
  text: string;
  offset?: number;
}

interface Node {
  engine: Backplane;
  received: Received[];
  controls: string[];
}

/** Starts `engines`, each with a sink and events that record what comes. */
async function nodes(engines: Backplane[]): Promise<Node[]> {
  const started: Node[] = [];
  for (const engine of engines) {
    const node: Node = { engine, received: [], controls: [] };
    const events: BackplaneEvents = {
      presence: () => {},
      nodeGone: () => {},
      resync: () => {},
      control: (message) => node.controls.push(message),
    };
    await engine.start(
      (topic, text, position) =>
        node.received.push({ topic, text, offset: position?.offset }),
      events,
    );
    await eventually(() => engine.health().state === "ok");
    started.push(node);
  }
  return started;
}

const POLICY = { size: 3, ttl: 60_000, keyTtl: 60_000 };
const head = (n: number) => `{"event":"m","topic":"t","data":{"n":${n}`;

async function single(engine: Backplane): Promise<void> {
  const append = engine.append!.bind(engine);
  const first = await append("t", head(1), { ...POLICY, ifPosition: null });
  assert.equal(first.offset, 1);
  assert.ok(first.text.endsWith(`"offset":1,"epoch":"${first.epoch}"}}`));
  const conflict = await append("t", head(9), { ...POLICY, ifPosition: null });
  assert.equal(conflict.conflict, true);
  assert.equal(conflict.offset, 1, "the position now");
  for (let n = 2; n <= 5; n++) await append("t", head(n), POLICY);
  const read = await engine.readHistory!("t", undefined, 10, 60_000);
  assert.equal(read.top, 5);
  assert.equal(read.epoch, first.epoch);
  assert.deepEqual(read.entries.map((e) => e.offset), [3, 4, 5], "size 3");
  assert.equal(read.first, 3);
  const since = await engine.readHistory!("t", 3, 10, 60_000);
  assert.deepEqual(since.entries.map((e) => e.offset), [4, 5]);
  const keyed = await append("t", head(6), { ...POLICY, key: "k" });
  const again = await append("t", head(7), { ...POLICY, key: "k" });
  assert.deepEqual([again.offset, again.duplicate], [keyed.offset, true]);
  const stale = await append("t", head(8), {
    ...POLICY,
    ifPosition: { offset: 5, epoch: first.epoch },
  });
  assert.deepEqual([stale.conflict, stale.offset], [true, 6]);
  const latest = { key: "a", maxKeys: 2 };
  await append("l", head(1), { ...POLICY, latest });
  await append("l", head(2), { ...POLICY, latest: { key: "b", maxKeys: 2 } });
  await append("l", head(3), { ...POLICY, latest });
  const full = await append("l", head(4), {
    ...POLICY,
    latest: { key: "c", maxKeys: 2 },
  });
  assert.equal(full.full, true);
  const values = await engine.readLatest!("l");
  assert.deepEqual(values.map((v) => v.offset), [2, 3]);
  const empty = await engine.readHistory!("never", undefined, 10, 60_000);
  assert.deepEqual([empty.top, empty.entries.length], [0, 0]);
  const still = await engine.readHistory!("never", undefined, 10, 60_000);
  assert.equal(still.epoch, empty.epoch, "a read keeps the epoch it made");
}

/**
 * History reads while appends go on (one node appends, the other reads, as
 * a join with `since` does under a live topic): every read is whole up to
 * its `top`, never with a hole or an entry past it (the Postgres engine's
 * read once took `top` and the entries in separate statements: a publish
 * between them left the soak's rejoins `recovered: false`).
 */
async function racing([a, b]: Node[]): Promise<void> {
  let appending = true;
  const appends = (async () => {
    for (let n = 1; appending && n < 5_000; n++) {
      await a.engine.append!("race", head(n), { ...POLICY, size: 1_000 });
    }
  })();
  try {
    for (let i = 0; i < 200; i++) {
      const read = await b.engine.readHistory!("race", 0, 1_000, 60_000);
      const offsets = read.entries.map((e) => e.offset);
      const whole = Array.from({ length: read.top }, (_, k) => k + 1);
      assert.deepEqual(offsets, whole.slice(-offsets.length || whole.length));
      assert.equal(offsets.at(-1) ?? 0, read.top, `read ${i}: up to its top`);
    }
  } finally {
    appending = false;
    await appends;
  }
}

async function across([a, b]: Node[]): Promise<void> {
  b.engine.subscribe("x");
  // Subscribing is the engine's to finish (the core catches up from history).
  await new Promise((resolve) => setTimeout(resolve, 300));
  await a.engine.append!("x", head(1), POLICY);
  await a.engine.publish("x", '{"event":"plain","topic":"x","data":1}');
  await a.engine.publish("other", '{"event":"plain","data":2}');
  await eventually(() => b.received.length >= 2, 3000, "publishes on b");
  assert.equal(b.received[0].offset, 1);
  assert.ok(b.received[0].text.includes('"offset":1'));
  assert.equal(b.received[1].text, '{"event":"plain","topic":"x","data":1}');
  assert.ok(!b.received.some((r) => r.topic === "other"), "not subscribed");
  assert.equal(a.received.length, 0, "a node does not hear itself");

  await a.engine.control!(b.engine.node!, "to b");
  await a.engine.control!("*", "to all");
  await eventually(() => b.controls.length === 2, 3000, "control on b");
  assert.deepEqual(b.controls, ["to b", "to all"]);
  assert.equal(a.controls.length, 0);
  // Both nodes' ids, and no other: an ask of a node not among them is not sent.
  assert.deepEqual(
    [...await a.engine.liveNodes!()].sort(),
    [a.engine.node!, b.engine.node!].sort(),
  );

  a.engine.setLocalCount("room", 2);
  await eventually(
    async () => (await b.engine.presence("room", 0)).count === 2,
    5000,
    "a's count on b",
  );
  // The topics where a counts members, for occupancy once a is gone.
  if (b.engine.topicsOf) {
    await eventually(async () =>
      (await b.engine.topicsOf!(a.engine.node!)).includes("room")
    );
    a.engine.setLocalCount("room", 0);
    await eventually(async () =>
      !(await b.engine.topicsOf!(a.engine.node!)).includes("room")
    );
  }

  const [ra, rb] = [a.engine.replies!, b.engine.replies!];
  assert.equal(await ra.claim("req", 10_000), undefined, "a claims it");
  assert.equal(await rb.claim("req", 10_000), null, "b waits: running");
  await ra.settle("req", '{"data":1}', 10_000);
  assert.equal(await rb.claim("req", 10_000), '{"data":1}');
  await holds(ra, rb);
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A running claim is held past its first lease while its node holds it, a
 * claim no one holds lapses (its node died), and holding a key that has a
 * reply does nothing to the reply.
 */
async function holds(ra: ReplyStore, rb: ReplyStore): Promise<void> {
  assert.equal(await ra.claim("held", 300), undefined);
  assert.equal(await ra.claim("dropped", 300), undefined);
  await ra.hold!("held", 3_000);
  await pause(600);
  assert.equal(await rb.claim("held", 300), null, "held past its lease");
  assert.equal(await rb.claim("dropped", 300), undefined, "lapsed");
  await ra.settle("held", '"done"', 10_000);
  await ra.hold!("held", 1);
  await pause(50);
  assert.equal(await rb.claim("held", 300), '"done"', "the reply stays");
}

Deno.test("engine conformance, local: a keyed request's running claim is held while its run goes on, and lapses when not", async () => {
  const store = new MemoryReplies();
  await holds(store, store);
});

type Engines = () => Promise<{ engines: Backplane[]; close(): Promise<void> }>;

const ENGINES: [string, boolean, Engines][] = [
  ["local", false, () =>
    Promise.resolve({
      engines: [new LocalBackplane()],
      close: () => Promise.resolve(),
    })],
  ["Redis", NO_REDIS, async () => {
    const redis = await startRedis();
    const make = () =>
      new RedisBackplane({ url: redis.url, logger: silentLogger });
    return { engines: [make(), make()], close: () => redis.close() };
  }],
  ["Postgres", NO_POSTGRES, async () => {
    const pg = await startPostgres();
    const make = () => new PostgresBackplane({ url: pg.url });
    return { engines: [make(), make()], close: () => pg.close() };
  }],
];

for (const [name, skip, make] of ENGINES) {
  Deno.test({
    name:
      `engine conformance, ${name}: append numbers, trims, keys, conditions and latest values; history reads; across nodes, publishes, control, live nodes, counts and keyed replies; reads whole while appends go on`,
    ignore: skip,
    async fn(t) {
      const { engines, close } = await make();
      const started = await nodes(engines);
      try {
        await t.step("one node", () => single(started[0].engine));
        if (started.length > 1) {
          await t.step("across nodes", () => across(started));
          await t.step("reads while appends go on", () => racing(started));
        }
      } finally {
        for (const node of started) await node.engine.close();
        await close();
      }
    },
  });
}
