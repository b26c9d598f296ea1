/**
 * `deno task bench`: duplex against raw Deno, every workload for both
 * servers in the same run, interleaved (raw, duplex, raw, duplex…), each
 * run on a fresh server process. Writes bench/results/latest.{json,md,svg}.
 *
 *   deno task bench            3 repetitions, full sizes (a few minutes)
 *   deno task bench --quick    1 repetition, small sizes (about a minute, for CI:
 *                              checks the bench runs and the numbers are sane)
 */

import { parseArgs } from "node:util";
import {
  type BenchReport,
  type MetricSummary,
  toMarkdown,
  toSvg,
} from "./report.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    reps: { type: "string" },
    out: {
      type: "string",
      default: new URL("./results/", import.meta.url).pathname,
    },
  },
});
const quick = flags.quick!;
const REPS = Number(flags.reps ?? (quick ? 1 : 3));
const here = (file: string) => new URL(file, import.meta.url).pathname;

interface Workload {
  name: string;
  kind: string;
  params: Record<string, number>;
  metrics: {
    key: string;
    label: string;
    lowerIsBetter: boolean;
    target?: number;
  }[];
}

const window = quick ? { seconds: 1, warmup: 0.5 } : { seconds: 5, warmup: 1 };
const WORKLOADS: Workload[] = [
  {
    name: "throughput 32 B",
    kind: "throughput",
    params: { size: 32, conns: 50, inflight: 32, ...window },
    metrics: [
      {
        key: "cpuMicrosPerMessage",
        label: "server CPU µs/msg",
        lowerIsBetter: true,
        target: 1.10,
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
        target: 1.15,
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
      { key: "p99Ms", label: "p99 ms", lowerIsBetter: true, target: 1.5 },
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
        target: 1.0,
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

const SERVERS = {
  raw: here("./raw_server.ts"),
  duplex: here("./duplex_server.ts"),
};

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

async function runOnce(server: keyof typeof SERVERS, workload: Workload) {
  const port = freePort();
  const child = command(0, ["run", "-A", SERVERS[server]], {
    PORT: String(port),
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${server} server exited before it was ready`);
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
    throw new Error(`loadgen failed for ${workload.name} on ${server}`);
  }
  return JSON.parse(
    new TextDecoder().decode(load.stdout).trim().split("\n").at(-1)!,
  ) as Record<string, number>;
}

function summary(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    median: sorted[Math.floor(sorted.length / 2)],
    min: sorted[0],
    max: sorted[sorted.length - 1],
  };
}

const metrics: MetricSummary[] = [];
for (const workload of WORKLOADS) {
  const results: Record<string, Record<string, number>[]> = {
    raw: [],
    duplex: [],
  };
  for (let rep = 0; rep < REPS; rep++) {
    for (const server of ["raw", "duplex"] as const) {
      const result = await runOnce(server, workload);
      results[server].push(result);
      console.error(
        `${workload.name} · ${server} · rep ${rep + 1}: ${
          JSON.stringify(result)
        }`,
      );
    }
  }
  for (const metric of workload.metrics) {
    const raw = summary(results.raw.map((r) => r[metric.key]));
    const duplex = summary(results.duplex.map((r) => r[metric.key]));
    metrics.push({
      workload: workload.name,
      metric: metric.label,
      lowerIsBetter: metric.lowerIsBetter,
      raw,
      duplex,
      ratio: duplex.median / raw.median,
      target: metric.target,
    });
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
  metrics,
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

// Sanity, never a timing threshold: every number is a positive finite value.
const insane = metrics.filter((m) =>
  ![m.raw.median, m.duplex.median].every((v) => Number.isFinite(v) && v > 0)
);
if (insane.length) {
  console.error(
    `bench: implausible numbers for ${
      insane.map((m) => `${m.workload} ${m.metric}`).join(", ")
    }`,
  );
  Deno.exit(1);
}
