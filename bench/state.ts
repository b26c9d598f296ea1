/**
 * The cost of deciding on shared state: a conditional publish
 * (`ifPosition`, checked in the engine's atomic step) against a plain one,
 * on the local engine and on Redis, in the same run, interleaved. Each
 * publish is awaited before the next (one decision after another, as a
 * topic's decisions are), so the figure is the time one publish takes.
 *
 *   deno run -A bench/state.ts [--quick]
 */

import { createServer, EventRouter, silentLogger } from "@duplex-ws/duplex";
import type { Backplane } from "@duplex-ws/duplex/engine";
import { RedisBackplane } from "@duplex-ws/redis";
import { type Comparison, type MetricRow, writeOwnRecord } from "./report.ts";
import { startRedis } from "../tests/_redis.ts";

const quick = Deno.args.includes("--quick");
const PUBLISHES = quick ? 300 : 3_000;
const REPETITIONS = quick ? 1 : 5;

/** µs per publish of `count` publishes, each awaited, conditional or not. */
async function run(
  backplane: Backplane,
  conditional: boolean,
): Promise<number> {
  const app = createServer({
    router: new EventRouter(),
    logger: silentLogger,
    backplane,
    topics: [{ match: "*", history: { size: 100 } }],
  });
  await app.ready;
  const topic = `t${crypto.randomUUID().slice(0, 8)}`;
  let position = (await app.publish(topic, "m", { n: 0 })).position ?? null;
  const started = performance.now();
  for (let n = 1; n <= PUBLISHES; n++) {
    const options = conditional ? { ifPosition: position } : {};
    position = (await app.publish(topic, "m", { n }, options)).position ??
      null;
  }
  const micros = (performance.now() - started) * 1000 / PUBLISHES;
  await app.shutdown();
  return micros;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Runs both engines, plain and conditional interleaved; the comparison. */
export async function stateComparison(): Promise<Comparison> {
  // A free port, answering PING before it is used (a random port once
  // clashed after the capacity suite and left the suite waiting forever).
  const redis = await startRedis();
  const engines: [string, () => Backplane][] = [
    ["local", () => undefined as unknown as Backplane],
    ["Redis", () => new RedisBackplane({ url: redis.url })],
  ];
  const rows: MetricRow[] = [];
  try {
    for (const [name, make] of engines) {
      const plain: number[] = [];
      const conditional: number[] = [];
      for (let rep = 0; rep < REPETITIONS; rep++) {
        plain.push(await run(make(), false));
        conditional.push(await run(make(), true));
      }
      const summary = (values: number[]) => ({
        median: median(values),
        min: Math.min(...values),
        max: Math.max(...values),
      });
      rows.push({
        workload: `${name}: ${
          PUBLISHES.toLocaleString("en")
        } publishes, each awaited`,
        metric: "µs per publish",
        lowerIsBetter: true,
        values: { plain: summary(plain), conditional: summary(conditional) },
        ratios: { conditional: median(conditional) / median(plain) },
        target: { server: "conditional", ratio: 1.1 },
      });
    }
  } finally {
    await redis.close();
  }
  const comparison: Comparison = {
    suite: "state",
    title: "A conditional publish (ifPosition) against a plain one",
    baseline: "plain",
    servers: ["plain", "conditional"],
    rows,
    notes: [
      `In process, ${REPETITIONS} interleaved repetitions, medians: the engine's one step decides (the local ring; the Redis Lua script that numbers the publish).`,
    ],
  };
  await writeOwnRecord("state", comparison, quick, {});
  return comparison;
}

if (import.meta.main) {
  const comparison = await stateComparison();
  for (const row of comparison.rows) {
    console.log(row.workload, JSON.stringify(row.values), row.ratios);
  }
}
