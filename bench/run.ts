/**
 * `deno task bench`: every comparison's servers on the same workloads in
 * the same run, interleaved (baseline, subject, baseline, subject…), each
 * run on a fresh server process; ratios to the comparison's baseline.
 * Writes bench/results/latest.{json,md,svg}.
 *
 *   deno task bench                  every suite, 3 repetitions, full sizes
 *   deno task bench --suite history  one suite (repeatable)
 *   deno task bench --quick          1 repetition, small sizes (for CI:
 *                                    checks the bench runs and the numbers
 *                                    are sane)
 *
 * Suites: `core` (duplex against raw Deno), `history` (history on against
 * off, on the local and the Redis engine; needs redis-server).
 */

import { parseArgs } from "node:util";
import {
  type BenchReport,
  type Comparison,
  type MetricRow,
  type Summary,
  toMarkdown,
  toSvg,
} from "./report.ts";
import { startRedis } from "../tests/_redis.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    reps: { type: "string" },
    suite: { type: "string", multiple: true },
    out: {
      type: "string",
      default: new URL("./results/", import.meta.url).pathname,
    },
  },
});
const quick = flags.quick!;
const REPS = Number(flags.reps ?? (quick ? 1 : 3));
const here = (file: string) => new URL(file, import.meta.url).pathname;

/** One metric a workload reports, by its key in the load generator's result. */
interface Metric {
  key: string;
  label: string;
  lowerIsBetter: boolean;
  /** The target for the ratio of this server to the baseline. */
  target?: { server: string; ratio: number };
}

interface Workload {
  name: string;
  kind: string;
  params: Record<string, number>;
  metrics: Metric[];
  /** Servers that run it (default: all of the comparison's). */
  only?: string[];
}

/** A server under test: a Deno script and its environment. */
interface Server {
  name: string;
  script: string;
  env?: Record<string, string>;
}

/** What a suite needs running while it runs (a Redis), and its comparisons. */
interface Suite {
  name: string;
  comparisons: (services: Services) => ComparisonSpec[];
}

interface ComparisonSpec {
  title: string;
  baseline: string;
  servers: Server[];
  workloads: Workload[];
}

interface Services {
  redis?: { url: string; pid: number };
}

const window = quick ? { seconds: 1, warmup: 0.5 } : { seconds: 5, warmup: 1 };
const RAW = here("./raw_server.ts");
const DUPLEX = here("./duplex_server.ts");

const CORE_WORKLOADS: Workload[] = [
  {
    name: "throughput 32 B",
    kind: "throughput",
    params: { size: 32, conns: 50, inflight: 32, ...window },
    metrics: [
      {
        key: "cpuMicrosPerMessage",
        label: "server CPU µs/msg",
        lowerIsBetter: true,
        target: { server: "duplex", ratio: 1.10 },
      },
      { key: "messagesPerSecond", label: "msg/s", lowerIsBetter: false },
    ],
  },
  {
    name: "throughput 4 KiB",
    kind: "throughput",
    params: { size: 4096, conns: 50, inflight: 32, ...window },
    metrics: [
      {
        key: "cpuMicrosPerMessage",
        label: "server CPU µs/msg",
        lowerIsBetter: true,
        target: { server: "duplex", ratio: 1.15 },
      },
      { key: "messagesPerSecond", label: "msg/s", lowerIsBetter: false },
    ],
  },
  {
    name: "latency 5k msg/s",
    kind: "latency",
    params: { rate: 5000, conns: 50, ...window },
    metrics: [
      { key: "p50Ms", label: "p50 ms", lowerIsBetter: true },
      {
        key: "p99Ms",
        label: "p99 ms",
        lowerIsBetter: true,
        target: { server: "duplex", ratio: 1.5 },
      },
      { key: "p999Ms", label: "p99.9 ms", lowerIsBetter: true },
    ],
  },
  {
    name: `idle ${quick ? 500 : 5000} connections`,
    kind: "idle",
    params: { count: quick ? 500 : 5000 },
    metrics: [{
      key: "kibPerConnection",
      label: "RSS KiB/conn",
      lowerIsBetter: true,
    }],
  },
  {
    name: `fan-out ${quick ? 200 : 1000} clients`,
    kind: "fanout",
    params: { clients: quick ? 200 : 1000, publishes: quick ? 10 : 30 },
    metrics: [
      {
        key: "cpuMicrosPerDelivery",
        label: "server CPU µs/delivery",
        lowerIsBetter: true,
        target: { server: "duplex", ratio: 1.0 },
      },
      { key: "p50Ms", label: "p50 ms to all", lowerIsBetter: true },
      { key: "p99Ms", label: "p99 ms to all", lowerIsBetter: true },
    ],
  },
  {
    name: "handshakes",
    kind: "handshakes",
    params: { concurrency: 16, seconds: window.seconds },
    metrics: [{
      key: "handshakesPerSecond",
      label: "opened+closed/s",
      lowerIsBetter: false,
    }],
  },
];

/** History on against off: the same server, the same workloads. */
function historyComparison(
  engine: string,
  env: Record<string, string>,
  redisPid?: number,
): ComparisonSpec {
  const off = `${engine}, history off`;
  const on = `${engine}, history on`;
  const extra: Record<string, number> = redisPid ? { redisPid } : {};
  const metrics: Metric[] = [
    { key: "publishesPerSecond", label: "publishes/s", lowerIsBetter: false },
    {
      key: "cpuMicrosPerPublish",
      label: "server CPU µs/publish",
      lowerIsBetter: true,
    },
  ];
  if (redisPid) {
    metrics.push({
      key: "redisCpuMicrosPerPublish",
      label: "Redis CPU µs/publish",
      lowerIsBetter: true,
    });
  }
  return {
    title: `History on the ${engine} engine`,
    baseline: off,
    servers: [
      { name: off, script: DUPLEX, env },
      { name: on, script: DUPLEX, env: { ...env, HISTORY: "on" } },
    ],
    workloads: [
      {
        name: "publish to 100 members",
        kind: "publish",
        params: {
          members: 100,
          publishers: 4,
          inflight: 8,
          ...window,
          ...extra,
        },
        metrics,
      },
      {
        name: "publish, 4 members (the publishers)",
        kind: "publish",
        params: { members: 4, publishers: 4, inflight: 8, ...window, ...extra },
        metrics,
      },
      {
        name: `fan-out ${quick ? 200 : 1000} clients`,
        kind: "fanout",
        params: { clients: quick ? 200 : 1000, publishes: quick ? 10 : 30 },
        metrics: [
          {
            key: "cpuMicrosPerDelivery",
            label: "server CPU µs/delivery",
            lowerIsBetter: true,
          },
          { key: "p99Ms", label: "p99 ms to all", lowerIsBetter: true },
        ],
      },
      {
        name: "recover 1,000 missed",
        kind: "recover",
        params: { missed: 1000, rounds: quick ? 2 : 5 },
        metrics: [{
          key: "recoverMs",
          label: "ms to recover",
          lowerIsBetter: true,
        }],
        only: [on],
      },
    ],
  };
}

const SUITES: Suite[] = [
  {
    name: "core",
    comparisons: () => [{
      title: "duplex against raw Deno",
      baseline: "raw Deno",
      servers: [
        { name: "raw Deno", script: RAW },
        { name: "duplex", script: DUPLEX },
      ],
      workloads: CORE_WORKLOADS,
    }],
  },
  {
    name: "history",
    comparisons: ({ redis }) => [
      historyComparison("local", {}),
      historyComparison("Redis", { REDIS_URL: redis!.url }, redis!.pid),
    ],
  },
];

function hasTaskset(): boolean {
  try {
    return new Deno.Command("taskset", { args: ["-c", "0", "true"] })
      .outputSync().success;
  } catch {
    return false;
  }
}
const PINNED = hasTaskset() && navigator.hardwareConcurrency >= 2;
const CLK_TCK = Number(
  new TextDecoder().decode(
    new Deno.Command("getconf", { args: ["CLK_TCK"] }).outputSync().stdout,
  )
    .trim(),
) || 100;

function command(
  core: number,
  args: string[],
  env: Record<string, string> = {},
) {
  const [program, argv] = PINNED
    ? ["taskset", ["-c", String(core), Deno.execPath(), ...args]]
    : [Deno.execPath(), args];
  return new Deno.Command(program, {
    args: argv,
    env,
    stdout: "piped",
    stderr: "inherit",
  });
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function runOnce(server: Server, workload: Workload) {
  const port = freePort();
  const child = command(0, ["run", "-A", server.script], {
    ...server.env,
    PORT: String(port),
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) {
      throw new Error(`${server.name} server exited before it was ready`);
    }
    out += value;
  }
  reader.releaseLock();
  // Under taskset the child is taskset's exec: the same pid.
  const load = await command(1, [
    "run",
    "-A",
    here("./loadgen.ts"),
    workload.kind,
    String(port),
    String(child.pid),
    JSON.stringify({ ...workload.params, clkTck: CLK_TCK }),
  ]).output();
  child.kill("SIGKILL");
  await child.status;
  await child.stdout.cancel().catch(() => {});
  if (!load.success) {
    throw new Error(`loadgen failed for ${workload.name} on ${server.name}`);
  }
  return JSON.parse(
    new TextDecoder().decode(load.stdout).trim().split("\n").at(-1)!,
  ) as Record<string, number>;
}

function summary(values: number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    median: sorted[Math.floor(sorted.length / 2)],
    min: sorted[0],
    max: sorted[sorted.length - 1],
  };
}

/** Runs one comparison: every workload, every server, interleaved. */
async function compare(
  suite: string,
  spec: ComparisonSpec,
): Promise<Comparison> {
  const rows: MetricRow[] = [];
  for (const workload of spec.workloads) {
    const servers = spec.servers.filter((s) =>
      !workload.only || workload.only.includes(s.name)
    );
    const results = new Map<string, Record<string, number>[]>(
      servers.map((s) => [s.name, []]),
    );
    for (let rep = 0; rep < REPS; rep++) {
      for (const server of servers) {
        const result = await runOnce(server, workload);
        results.get(server.name)!.push(result);
        console.error(
          `${spec.title} · ${workload.name} · ${server.name} · rep ${
            rep + 1
          }: ${JSON.stringify(result)}`,
        );
      }
    }
    for (const metric of workload.metrics) {
      const values: MetricRow["values"] = {};
      for (const [name, runs] of results) {
        values[name] = summary(runs.map((r) => r[metric.key]));
      }
      const base = values[spec.baseline]?.median;
      const ratios: MetricRow["ratios"] = {};
      for (const server of spec.servers) {
        const value = values[server.name]?.median;
        if (server.name !== spec.baseline && value !== undefined && base) {
          ratios[server.name] = value / base;
        }
      }
      rows.push({
        workload: workload.name,
        metric: metric.label,
        lowerIsBetter: metric.lowerIsBetter,
        values,
        ratios,
        target: metric.target,
      });
    }
  }
  return {
    suite,
    title: spec.title,
    baseline: spec.baseline,
    servers: spec.servers.map((s) => s.name),
    rows,
  };
}

const chosen = flags.suite?.length
  ? SUITES.filter((s) => flags.suite!.includes(s.name))
  : SUITES;
if (chosen.length === 0) {
  throw new Error(
    `no such suite; suites: ${SUITES.map((s) => s.name).join(", ")}`,
  );
}
const comparisons: Comparison[] = [];
for (const suite of chosen) {
  const redis = suite.name === "history" ? await startRedis() : undefined;
  try {
    const services: Services = redis
      ? { redis: { url: redis.url, pid: redis.pid } }
      : {};
    for (const spec of suite.comparisons(services)) {
      comparisons.push(await compare(suite.name, spec));
    }
  } finally {
    await redis?.close();
  }
}

const cpu =
  Deno.readTextFileSync("/proc/cpuinfo").match(/^model name\s*:\s*(.+)$/m)
    ?.[1] ?? "unknown CPU";
const report: BenchReport = {
  date: new Date().toISOString(),
  deno: Deno.version.deno,
  machine: { cpu, cores: navigator.hardwareConcurrency, pinned: PINNED },
  mode: quick ? "quick" : "full",
  repetitions: REPS,
  comparisons,
};
const name = quick ? "quick" : "latest";
await Deno.mkdir(flags.out!, { recursive: true });
await Deno.writeTextFile(
  `${flags.out}/${name}.json`,
  JSON.stringify(report, null, 2) + "\n",
);
await Deno.writeTextFile(`${flags.out}/${name}.md`, toMarkdown(report));
await Deno.writeTextFile(`${flags.out}/${name}.svg`, toSvg(report));
console.log(toMarkdown(report));

// Sanity, never a timing threshold: every number measured is a positive
// finite value (Redis CPU may be absent; nothing else).
const insane = comparisons.flatMap((c) =>
  c.rows.flatMap((row) =>
    Object.entries(row.values)
      .filter(([, s]) => !(s && Number.isFinite(s.median) && s.median > 0))
      .map(([server]) =>
        `${c.title}: ${row.workload} ${row.metric} (${server})`
      )
  )
);
if (insane.length) {
  console.error(`bench: implausible numbers for ${insane.join(", ")}`);
  Deno.exit(1);
}
