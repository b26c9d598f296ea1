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
 *   deno task bench --suite core --workload "throughput 4 KiB" \
 *     --server "raw Deno echo" --server duplex
 *   deno task bench --suite core --base ../duplex-before
 *                                    adds an older checkout's duplex as
 *                                    "duplex (base)", to measure a change
 *                                    one cell (or a few) again, by name
 *
 * Suites: `core` (duplex against the floor, raw JSON and the peers: Node +
 * ws, Socket.IO, Bun; cold start too), `scale` (fan-out across three
 * nodes on one Redis against Socket.IO's Redis adapter), `history` (history
 * on against off, on the local and the Redis engine; needs redis-server),
 * `capacity` (idle connections in steps to the descriptor limit:
 * capacity.ts), `channels` (sharded channels per topic against partitions
 * on a real Redis Cluster: cluster_channels.ts).
 */

import { parseArgs } from "node:util";
import {
  type BenchReport,
  type Comparison,
  cpuModel,
  type MetricRow,
  type Summary,
  toMarkdown,
  toSvg,
} from "./report.ts";
import { startRedis } from "../tests/_redis.ts";
import { startPostgres } from "../tests/_postgres.ts";
import { capacityComparison } from "./capacity.ts";
import { within } from "./pair.ts";
import { channelsComparison } from "./cluster_channels.ts";
import { conflationComparison } from "./conflation.ts";
import { deltaComparison } from "./delta.ts";
import { deflateComparison } from "./deflate.ts";
import { stateComparison } from "./state.ts";
import { httpComparison } from "./http_transport.ts";
import { streamComparison } from "./reply_stream.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    reps: { type: "string" },
    suite: { type: "string", multiple: true },
    workload: { type: "string", multiple: true },
    server: { type: "string", multiple: true },
    base: { type: "string" },
    "without-peers": { type: "boolean", default: false },
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
  /**
   * The target for the ratio of this server to the baseline, and
   * the servers it must be ahead of.
   */
  target?: { server: string; ratio: number; aheadOf?: string[] };
}

interface Workload {
  name: string;
  kind: string;
  params: Record<string, number>;
  metrics: Metric[];
  /** Servers that run it (default: all of the comparison's). */
  only?: string[];
  /** Processes per server, on one Redis (a cross-node workload). */
  nodes?: number;
  /** Repetitions, when not the run's (cold start needs more). */
  reps?: number;
}

/** A server under test: a program, its script and environment, its wire. */
interface Server {
  name: string;
  /** What runs the script. */
  runtime: "deno" | "node" | "bun";
  script: string;
  env?: Record<string, string>;
  /** Arguments after the script. */
  args?: string[];
  /** Its wire, when not duplex's envelope. */
  protocol?: "socketio";
  /** The directory it runs in (its `deno.json`), when not this checkout. */
  cwd?: string;
}

/**
 * A suite: comparisons of servers on workloads, run here (with a Redis when
 * `redis` says so), or a program that measures in its own way and hands
 * back its comparison (`measure`).
 */
interface Suite {
  name: string;
  redis?: boolean;
  postgres?: boolean;
  comparisons?: (services: Services) => ComparisonSpec[];
  measure?: () => Promise<Comparison>;
}

interface ComparisonSpec {
  title: string;
  baseline: string;
  servers: Server[];
  workloads: Workload[];
  /** Said under the table: how the servers differ, what was skipped and why. */
  notes?: string[];
}

interface Services {
  redis?: { url: string; pid: number };
  postgres?: { url: string };
}

const window = quick ? { seconds: 1, warmup: 0.5 } : { seconds: 5, warmup: 1 };
const RAW = here("./raw_server.ts");
const ECHO = here("./raw_echo_server.ts");
const DUPLEX = here("./duplex_server.ts");
const CORE = here("./core_server.ts");
const MAIN = here("../main.ts");
// BENCH_PEERS: another peers directory (the suite checks the message
// a machine without them gets).
const PEERS = Deno.env.get("BENCH_PEERS") ?? here("./peers/");
const BUN = `${PEERS}node_modules/.bin/bun`;

const FLOOR = "raw Deno echo";

/** Why a runtime cannot run here, or undefined when it can. */
function unavailable(runtime: Server["runtime"]): string | undefined {
  const runs = (program: string, args: string[]) => {
    try {
      return new Deno.Command(program, { args, stdout: "null", stderr: "null" })
        .outputSync().success;
    } catch {
      return false;
    }
  };
  if (runtime === "deno") return undefined;
  try {
    Deno.statSync(`${PEERS}node_modules`);
  } catch {
    return "bench/peers has no node_modules: run scripts/setup.sh (npm ci there)";
  }
  if (runtime === "node") {
    return runs("node", ["--version"]) ? undefined : "no `node` on PATH";
  }
  return runs(BUN, ["--version"])
    ? undefined
    : "the `bun` npm package's binary does not run on this machine";
}

/** Every server of the core comparison that can run here, and notes on the rest. */
function coreServers(): { servers: Server[]; notes: string[] } {
  const all: Server[] = [
    { name: FLOOR, runtime: "deno", script: ECHO },
    { name: "raw Deno JSON", runtime: "deno", script: RAW },
    { name: "duplex", runtime: "deno", script: DUPLEX },
    ...(flags.base
      ? [{
        name: "duplex (base)",
        runtime: "deno" as const,
        script: `${flags.base}/bench/duplex_server.ts`,
        cwd: flags.base,
      }]
      : []),
    {
      name: "Node + ws",
      runtime: "node",
      script: `${PEERS}node_ws_server.mjs`,
    },
    {
      name: "Socket.IO",
      runtime: "node",
      script: `${PEERS}socketio_server.mjs`,
      protocol: "socketio",
    },
    { name: "Bun", runtime: "bun", script: `${PEERS}bun_server.ts` },
  ];
  const notes = [
    `${FLOOR} sends every frame back as it came (no JSON parse; the floor on Deno), so its replies are the request's bytes; raw Deno JSON, duplex, Node + ws and Bun answer the same \`{"id","data"}\` bytes.`,
    'Socket.IO speaks its own framing (Engine.IO 4 over a WebSocket: `42<id>["echo",data]` answered `43<id>[data]`, an acknowledgement; the fan-out is a room emit). The bench\'s one client speaks it by hand, so every server meets the same client; a Socket.IO connection also costs the `40` namespace exchange.',
  ];
  const servers = all.filter((server) => {
    const why = unavailable(server.runtime);
    if (why) notes.push(`${server.name} skipped: ${why}.`);
    return !why;
  });
  return { servers, notes };
}

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
        target: {
          server: "duplex",
          ratio: 1.10,
          aheadOf: ["Node + ws", "Socket.IO"],
        },
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
        target: {
          server: "duplex",
          ratio: 1.15,
          aheadOf: ["Node + ws", "Socket.IO"],
        },
      },
      { key: "messagesPerSecond", label: "msg/s", lowerIsBetter: false },
    ],
  },
  {
    name: "latency 5k msg/s",
    kind: "latency",
    params: { rate: 5000, conns: 50, ...window },
    metrics: [
      {
        key: "p50Ms",
        label: "p50 ms",
        lowerIsBetter: true,
        target: { server: "duplex", ratio: 1.3 },
      },
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
    name: "cold start",
    kind: "coldstart",
    params: {},
    reps: quick ? 3 : 10,
    metrics: [
      {
        key: "healthMs",
        label: "ms to first /healthz",
        lowerIsBetter: true,
      },
      {
        key: "upgradeMs",
        label: "ms to first 101",
        lowerIsBetter: true,
      },
      {
        key: "replyMs",
        label: "ms to first reply",
        lowerIsBetter: true,
      },
      { key: "rssMiB", label: "RSS MiB then", lowerIsBetter: true },
    ],
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

/** The engines side by side, history on: the same server, the same workloads. */
function engineComparison(
  redis: { url: string },
  postgres: { url: string },
): ComparisonSpec {
  const engines: [string, Record<string, string>][] = [
    ["Redis", { REDIS_URL: redis.url }],
    ["Postgres", { DATABASE_URL: postgres.url }],
    ["local", {}],
  ];
  return {
    title: "The engines side by side (history on)",
    baseline: "Redis",
    servers: engines.map(([name, env]) => ({
      name,
      runtime: "deno" as const,
      script: DUPLEX,
      env: { ...env, HISTORY: "on" },
    })),
    workloads: [{
      name: "publish to 100 members",
      kind: "publish",
      params: { members: 100, publishers: 4, inflight: 8, ...window },
      metrics: [
        {
          key: "publishesPerSecond",
          label: "publishes/s",
          lowerIsBetter: false,
        },
        {
          key: "cpuMicrosPerPublish",
          label: "server CPU µs/publish",
          lowerIsBetter: true,
        },
      ],
    }, {
      name: `fan-out ${quick ? 200 : 1000} clients`,
      kind: "fanout",
      params: { clients: quick ? 200 : 1000, publishes: quick ? 10 : 30 },
      metrics: [{ key: "p99Ms", label: "p99 ms to all", lowerIsBetter: true }],
    }, {
      name: "recovery of 1,000 missed publishes",
      kind: "recover",
      params: { missed: 1000, rounds: quick ? 2 : 5 },
      metrics: [{
        key: "recoverMs",
        label: "ms to recover",
        lowerIsBetter: true,
      }],
    }],
    notes: [
      "One node per engine (the engine still numbers and stores every publish, and notifies it): what one database or one Redis costs a publish. Postgres's figure is one private PostgreSQL 15 with fsync off on the same 2 cores; docs/SCALING.md has the sizing.",
    ],
  };
}

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
      { name: off, runtime: "deno", script: DUPLEX, env },
      {
        name: on,
        runtime: "deno",
        script: DUPLEX,
        env: { ...env, HISTORY: "on" },
      },
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

/** Fan-out across three nodes on one Redis: duplex against Socket.IO's Redis adapter. */
function scaleComparison(redis: { url: string; pid: number }): ComparisonSpec {
  const socketIo = "Socket.IO + Redis adapter";
  const servers: Server[] = [
    {
      name: socketIo,
      runtime: "node",
      script: `${PEERS}socketio_server.mjs`,
      env: { REDIS_URL: redis.url },
      protocol: "socketio",
    },
    {
      name: "duplex + Redis",
      runtime: "deno",
      script: DUPLEX,
      env: { REDIS_URL: redis.url },
    },
  ];
  const why = unavailable("node");
  const clients = quick ? 300 : 1000;
  return {
    title: "Fan-out across three nodes on one Redis",
    baseline: why ? "duplex + Redis" : socketIo,
    servers: why ? servers.slice(1) : servers,
    notes: why ? [`${socketIo} skipped: ${why}.`] : [
      "Three processes per server, one Redis; members spread evenly over the three; every publish from a member on the first. CPU is summed over the three processes (Redis's apart).",
    ],
    workloads: [{
      name: `${clients} members on 3 nodes`,
      kind: "crossfanout",
      nodes: 3,
      params: { clients, publishes: quick ? 10 : 30, redisPid: redis.pid },
      metrics: [
        {
          key: "cpuMicrosPerDelivery",
          label: "nodes' CPU µs/delivery",
          lowerIsBetter: true,
          target: { server: "duplex + Redis", ratio: 1.0 },
        },
        {
          key: "redisCpuMicrosPerDelivery",
          label: "Redis CPU µs/delivery",
          lowerIsBetter: true,
        },
        { key: "p50Ms", label: "p50 ms to all", lowerIsBetter: true },
        {
          key: "p99Ms",
          label: "p99 ms to all",
          lowerIsBetter: true,
          target: { server: "duplex + Redis", ratio: 1.0 },
        },
      ],
    }],
  };
}

const SUITES: Suite[] = [
  {
    name: "core",
    comparisons: () => {
      const { servers, notes } = coreServers();
      const names = servers.map((server) => server.name);
      return [{
        title: "duplex against the floor and the peers",
        baseline: FLOOR,
        servers: [
          ...servers,
          {
            name: "duplex core alone",
            runtime: "deno" as const,
            script: CORE,
          },
          {
            name: "core alone, bundled",
            runtime: "deno" as const,
            script: bundled(CORE, "core alone, bundled"),
          },
          {
            name: "duplex, no Zod",
            runtime: "deno" as const,
            script: DUPLEX,
            env: { SCHEMAS: "plain" },
          },
          {
            name: "example app",
            runtime: "deno" as const,
            script: MAIN,
            args: ["--listen"],
            env: { LOG_LEVEL: "error" },
          },
          {
            name: "example app, bundled",
            runtime: "deno" as const,
            script: bundled(MAIN, "example app, bundled"),
            args: ["--listen"],
            env: { LOG_LEVEL: "error" },
          },
        ],
        workloads: CORE_WORKLOADS.map((workload) =>
          workload.kind === "coldstart"
            ? workload
            : { ...workload, only: names }
        ),
        notes: [
          ...notes,
          "duplex core alone is the smallest app on the core package (bench/core_server.ts: one event, a hand-written schema, listen), and bundled the same app made one minified module by `deno bundle --minify`, as an app would be for the edge (the example app too); duplex, no Zod is the duplex server with two hand-written Standard Schemas instead of Zod, and example app is main.ts (the chat: Zod, jose, the page, two endpoints): all measured for cold start only, to tell duplex's own start-up from a validator library's and from a whole app's.",
        ],
      }];
    },
  },
  {
    name: "scale",
    redis: true,
    comparisons: ({ redis }) => [scaleComparison(redis!)],
  },
  { name: "capacity", measure: capacityComparison },
  { name: "channels", measure: channelsComparison },
  { name: "state", measure: stateComparison },
  { name: "http", measure: httpComparison },
  { name: "streams", measure: streamComparison },
  { name: "delta", measure: deltaComparison },
  { name: "conflation", measure: conflationComparison },
  { name: "deflate", measure: deflateComparison },
  {
    name: "engines",
    redis: true,
    postgres: true,
    comparisons: ({ redis, postgres }) => [engineComparison(redis!, postgres!)],
  },
  {
    name: "history",
    redis: true,
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
  program: string = Deno.execPath(),
  cwd?: string,
) {
  const [run, argv] = PINNED
    ? ["taskset", ["-c", String(core), program, ...args]]
    : [program, args];
  return new Deno.Command(run, {
    args: argv,
    env,
    cwd,
    stdout: "piped",
    stderr: "inherit",
  });
}

/** The command line that starts `server`'s script. */
function serverCommand(server: Server): [program: string, args: string[]] {
  const extra = server.args ?? [];
  switch (server.runtime) {
    case "deno":
      return [Deno.execPath(), [
        "run",
        "-A",
        "--lock=deno.dev.lock",
        server.script,
        ...extra,
      ]];
    case "node":
      return ["node", [server.script, ...extra]];
    case "bun":
      return [BUN, ["run", server.script, ...extra]];
  }
}

/**
 * `script` bundled and minified by `deno bundle` (the core suite's cold
 * start measures apps bundled for the edge): the entry's path, in the
 * checkout's ignored `.tmp/` (inside the workspace, so that it runs with the
 * same configuration and lockfile as every other server), made once per run
 * and only when the run measures `server`'s cold start.
 */
function bundled(script: string, server: string): string {
  const name = script.replace(/.*\//, "").replace(/\.ts$/, "");
  // Code splitting keeps what an app imports on first use in a chunk of
  // its own, as a deployed app's bundle would.
  const dir = here(`../.tmp/bundle-${name}`);
  const entry = `${dir}/${name}.js`;
  const measured = (!flags.server?.length || flags.server.includes(server)) &&
    (!flags.workload?.length || flags.workload.includes("cold start"));
  if (!measured) return entry;
  const { success, stderr } = new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--no-lock",
      "--quiet",
      "--minify",
      "--code-splitting",
      "--outdir",
      dir,
      script,
    ],
    stdout: "null",
  }).outputSync();
  if (!success) {
    throw new Error(
      `deno bundle ${script}: ${new TextDecoder().decode(stderr)}`,
    );
  }
  return entry;
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** A server process, started and ready. */
interface Started {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

function spawnServer(server: Server, port: number, core = 0) {
  const [program, args] = serverCommand(server);
  return command(
    core,
    args,
    {
      ...server.env,
      PORT: String(port),
    },
    program,
    server.cwd,
  ).spawn();
}

async function startServer(server: Server, core = 0): Promise<Started> {
  const port = freePort();
  const child = spawnServer(server, port, core);
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
  return {
    port,
    // Under taskset the child is taskset's exec: the same pid.
    pid: child.pid,
    async stop() {
      child.kill("SIGKILL");
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  };
}

async function runLoad(
  workload: Workload,
  server: Server,
  nodes: Started[],
): Promise<Record<string, number>> {
  const [first] = nodes;
  const load = await command(1, [
    "run",
    "-A",
    "--lock=deno.dev.lock",
    here("./loadgen.ts"),
    workload.kind,
    String(first.port),
    String(first.pid),
    JSON.stringify({
      ...workload.params,
      clkTck: CLK_TCK,
      protocol: server.protocol,
      nodes: nodes.map(({ port, pid }) => ({ port, pid })),
    }),
  ]).output();
  if (!load.success) {
    throw new Error(`loadgen failed for ${workload.name} on ${server.name}`);
  }
  return JSON.parse(
    new TextDecoder().decode(load.stdout).trim().split("\n").at(-1)!,
  ) as Record<string, number>;
}

/**
 * Cold start: from spawning the process to its first answered `/healthz`,
 * its first WebSocket 101 and the reply to the first request on that socket
 * (an `echo`), and its RSS at the 101.
 */
async function coldStart(server: Server): Promise<Record<string, number>> {
  const port = freePort();
  const t0 = performance.now();
  const child = spawnServer(server, port);
  child.stdout.cancel().catch(() => {});
  const deadline = t0 + 30_000;
  let healthMs = NaN;
  try {
    while (performance.now() < deadline) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/healthz`);
        await response.body?.cancel();
        healthMs = performance.now() - t0;
        break;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
    }
    const path = server.protocol === "socketio"
      ? "/socket.io/?EIO=4&transport=websocket"
      : "/";
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = () => reject(new Error(`${server.name}: no 101`));
    });
    const upgradeMs = performance.now() - t0;
    const status = Deno.readTextFileSync(`/proc/${child.pid}/status`);
    const rss = Number(status.match(/^VmRSS:\s+(\d+) kB/m)![1]) / 1024;
    await firstReply(ws, server.protocol === "socketio");
    const replyMs = performance.now() - t0;
    await new Promise<void>((resolve) => {
      ws.onclose = () => resolve();
      ws.close();
    });
    return { healthMs, upgradeMs, replyMs, rssMiB: rss };
  } finally {
    child.kill("SIGKILL");
    await child.status;
  }
}

/**
 * Sends one `echo` on an open socket and resolves at its reply: the JSON
 * envelope (which the raw echo sends back as it came), or Socket.IO's
 * `421["echo",…]` after its `40` namespace exchange (its `0` open packet,
 * which may come before the handler is set, is not needed).
 */
function firstReply(ws: WebSocket, socketIo: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no first reply")), 10_000);
    ws.onmessage = ({ data }) => {
      const text = String(data);
      if (socketIo && text.startsWith("40")) {
        return ws.send('421["echo","first"]');
      }
      if (socketIo ? text.startsWith("431") : text.includes('"id":1')) {
        clearTimeout(timer);
        resolve();
      }
    };
    ws.send(socketIo ? "40" : '{"event":"echo","data":"first","id":1}');
  });
}

async function runOnce(server: Server, workload: Workload) {
  if (workload.kind === "coldstart") return await coldStart(server);
  const nodes: Started[] = [];
  try {
    for (let i = 0; i < (workload.nodes ?? 1); i++) {
      nodes.push(await startServer(server));
    }
    return await runLoad(workload, server, nodes);
  } finally {
    for (const node of nodes) await node.stop();
  }
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
  const workloads = flags.workload?.length
    ? spec.workloads.filter((w) => flags.workload!.includes(w.name))
    : spec.workloads;
  for (const workload of workloads) {
    const servers = spec.servers.filter((s) =>
      (!workload.only || workload.only.includes(s.name)) &&
      (!flags.server?.length || flags.server.includes(s.name) ||
        s.name === spec.baseline)
    );
    const results = new Map<string, Record<string, number>[]>(
      servers.map((s) => [s.name, []]),
    );
    for (let rep = 0; rep < (workload.reps ?? REPS); rep++) {
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
    notes: spec.notes,
  };
}

const chosen =
  (flags.suite?.length
    ? SUITES.filter((s) => flags.suite!.includes(s.name))
    : SUITES)
    // Its load generator is a Node program from the peers.
    .filter((s) => !(flags["without-peers"] && s.name === "capacity"));
if (chosen.length === 0) {
  throw new Error(
    `no such suite; suites: ${SUITES.map((s) => s.name).join(", ")}`,
  );
}
// The suites with peers need their npm packages: say what to run, do not
// let Node fail with a stack trace (or pass --without-peers).
const PEER_SUITES = ["core", "scale", "capacity"];
if (
  !flags["without-peers"] &&
  chosen.some((s) => PEER_SUITES.includes(s.name)) &&
  !(await Deno.stat(`${PEERS}node_modules`).catch(() => undefined))
) {
  console.error(
    "bench: the peers (Node + ws, Socket.IO, Bun) are not installed: run scripts/setup.sh first, or pass --without-peers to measure duplex against raw Deno only.",
  );
  Deno.exit(1);
}
const comparisons: Comparison[] = [];
for (const suite of chosen) {
  if (suite.measure) {
    comparisons.push(await watched(suite.name, suite.measure));
    continue;
  }
  const redis = suite.redis ? await startRedis() : undefined;
  const postgres = suite.postgres ? await startPostgres() : undefined;
  try {
    const services: Services = {
      redis: redis && { url: redis.url, pid: redis.pid },
      postgres: postgres && { url: postgres.url },
    };
    for (const spec of suite.comparisons!(services)) {
      comparisons.push(await compare(suite.name, spec));
    }
  } finally {
    await redis?.close();
    await postgres?.close();
  }
}

/**
 * A suite that measures itself, within a deadline (`within`: its timer keeps
 * the process alive), so a suite stuck on an event that never comes fails
 * naming itself, and is run once more.
 */
async function watched(
  name: string,
  measure: () => Promise<Comparison>,
): Promise<Comparison> {
  const minutes = quick ? 5 : 60;
  for (let attempt = 1;; attempt++) {
    console.error(`bench: suite ${name}${attempt > 1 ? ", once more" : ""}`);
    try {
      return await within(minutes * 60_000, `suite ${name}`, measure());
    } catch (error) {
      if (attempt === 2) throw error;
      console.error(`bench: ${(error as Error).message}`);
    }
  }
}

function commit(): string {
  const git = (...args: string[]) =>
    new TextDecoder().decode(
      new Deno.Command("git", { args, stdout: "piped", stderr: "null" })
        .outputSync().stdout,
    ).trim();
  try {
    const head = git("rev-parse", "--short", "HEAD");
    return git("status", "--porcelain", "--untracked-files=no")
      ? `${head}+dirty`
      : head;
  } catch {
    return "unknown";
  }
}

const report: BenchReport = {
  date: new Date().toISOString(),
  commit: commit(),
  deno: Deno.version.deno,
  machine: {
    cpu: cpuModel(),
    cores: navigator.hardwareConcurrency,
    pinned: PINNED,
  },
  mode: quick ? "quick" : "full",
  repetitions: REPS,
  comparisons,
};
// A run of some workloads or servers only (`--workload`, `--server`) is
// `partial`: it never replaces the recorded full run.
const partial = Boolean(flags.workload?.length || flags.server?.length);
// Some suites only (`--suite`): kept in runs/, but latest.* stays the full run.
const subset = chosen.length < SUITES.length;
const name = quick ? "quick" : partial || subset ? "partial" : "latest";
await Deno.mkdir(flags.out!, { recursive: true });
await Deno.writeTextFile(
  `${flags.out}/${name}.json`,
  JSON.stringify(report, null, 2) + "\n",
);
await Deno.writeTextFile(`${flags.out}/${name}.md`, toMarkdown(report));
await Deno.writeTextFile(`${flags.out}/${name}.svg`, toSvg(report));
if (!quick && !partial) {
  // Every full run is kept, named by its date, suites and commit, so that a
  // regression shows in bench/results/runs/.
  const runs = `${flags.out}/runs`;
  await Deno.mkdir(runs, { recursive: true });
  const stamp = `${report.date.slice(0, 16).replace(":", "")}-${
    chosen.map((s) => s.name).join("+")
  }-${report.commit}`;
  await Deno.writeTextFile(
    `${runs}/${stamp}.json`,
    JSON.stringify(report, null, 2) + "\n",
  );
  await Deno.writeTextFile(`${runs}/${stamp}.md`, toMarkdown(report));
}
console.log(toMarkdown(report));

// Sanity, never a timing threshold: every number measured is a positive
// finite value (Redis CPU may be absent; nothing else), or finite where a
// row says zero is a real measurement.
const insane = comparisons.flatMap((c) =>
  c.rows.flatMap((row) =>
    Object.entries(row.values)
      .filter(([, s]) =>
        !(s && Number.isFinite(s.median) && (row.mayBeZero || s.median > 0))
      )
      .map(([server]) =>
        `${c.title}: ${row.workload} ${row.metric} (${server})`
      )
  )
);
if (insane.length) {
  console.error(`bench: implausible numbers for ${insane.join(", ")}`);
  Deno.exit(1);
}
