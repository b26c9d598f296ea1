/**
 * The cluster soak: `deno task soak cluster`. Past one process's 20,000
 * descriptors capacity means several processes, so this runs three duplex
 * nodes on one Redis (or, with `--engine postgres`, one Postgres) (`soak_node.ts`) and client processes
 * (`soak_worker.ts`) holding 50,000 sockets in all, spread over loopback
 * source addresses, for ten minutes: a tick a second published to `all`,
 * which every socket has joined; a tenth of the members reconnecting every
 * minute with their position (each must be recovered); 1 % slow readers
 * that never read. It reports RSS and descriptors per node (after the ramp
 * and at the end), the fan-out's latency (per delivery, and per tick until
 * every socket had it), ticks lost or duplicated, and exits 1 on any loss,
 * duplicate or unrecovered return.
 *
 *   deno task soak cluster                         50,000 sockets, 10 minutes
 *   deno task soak cluster --engine postgres       the same on one Postgres
 *   deno task soak cluster --sockets 3000 --minutes 1 --workers 2
 */

import { parseArgs } from "node:util";
import { startPostgres } from "../tests/_postgres.ts";
import { startRedis } from "../tests/_redis.ts";

const NODE = new URL("./soak_node.ts", import.meta.url).pathname;
const WORKER = new URL("./soak_worker.ts", import.meta.url).pathname;
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** RSS (MiB) and open descriptors of a process. */
function usage(pid: number): { rssMiB: number; fds: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
  const fds = [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
  return { rssMiB: Math.round(rss), fds };
}

/** Bun, when the bench's peers are installed: its sockets cost less than Deno's `node:net`. */
const BUN = new URL("./peers/node_modules/.bin/bun", import.meta.url).pathname;

function hasBun(): boolean {
  try {
    Deno.statSync(BUN);
    return true;
  } catch {
    return false;
  }
}

/** A child whose stdout lines are collected. */
function spawn(
  args: string[],
  env: Record<string, string> = {},
  command = Deno.execPath(),
) {
  const child = new Deno.Command(command, {
    args,
    env,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines: string[] = [];
  const exited = { yes: false };
  child.status.then(() => exited.yes = true);
  const reading = (async () => {
    let rest = "";
    for await (
      const chunk of child.stdout.pipeThrough(new TextDecoderStream())
    ) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
    }
  })();
  return { child, lines, reading, exited };
}

async function until(what: string, check: () => boolean, ms: number) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await delay(200);
  }
}

/** The engine the nodes share, started: its variables for the nodes and how to stop it. */
async function startEngine(
  kind: string,
): Promise<{ env: Record<string, string>; close(): Promise<void> }> {
  if (kind === "postgres") {
    const pg = await startPostgres();
    return { env: { DATABASE_URL: pg.url }, close: () => pg.close() };
  }
  if (kind !== "redis") throw new Error(`--engine is redis or postgres`);
  const redis = await startRedis();
  return { env: { REDIS_URL: redis.url }, close: () => redis.close() };
}

function percentile(histogram: Map<number, number>, q: number): number {
  const total = [...histogram.values()].reduce((a, b) => a + b, 0);
  let seen = 0;
  for (const [ms, n] of [...histogram].sort((a, b) => a[0] - b[0])) {
    seen += n;
    if (seen >= total * q) return ms;
  }
  return NaN;
}

/** Runs the cluster soak with `argv`; resolves with the exit code. */
export async function runClusterSoak(argv: string[]): Promise<number> {
  const { values: flags } = parseArgs({
    args: argv,
    options: {
      sockets: { type: "string", default: "50000" },
      nodes: { type: "string", default: "3" },
      workers: { type: "string", default: "4" },
      minutes: { type: "string", default: "10" },
      churn: { type: "string", default: "0.1" },
      slow: { type: "string", default: "0.01" },
      rate: { type: "string", default: "600" },
      interval: { type: "string", default: "1000" },
      engine: { type: "string", default: "redis" },
      json: { type: "string" },
    },
  });
  const sockets = Number(flags.sockets);
  const nodes = Number(flags.nodes);
  const workers = Number(flags.workers);
  const seconds = Number(flags.minutes) * 60;
  const slow = Math.round(sockets * Number(flags.slow));
  const members = sockets - slow;

  const engine = await startEngine(flags.engine!);
  const ports = Array.from({ length: nodes }, () => freePort());
  const servers = ports.map((port, i) =>
    spawn(["run", "--allow-all", NODE], {
      PORT: String(port),
      ...engine.env,
      TICKER: i === 0 ? "1" : "0",
      TICK_EVERY: flags.interval!,
    })
  );
  const report: Record<string, unknown> = {
    engine: flags.engine,
    sockets,
    nodes,
    workers,
    seconds,
  };
  let code = 1;
  const clients: ReturnType<typeof spawn>[] = [];
  try {
    await until(
      "nodes listening",
      () =>
        servers.every((s) => s.lines.some((l) => l.startsWith("listening"))),
      30_000,
    );
    const started = Date.now();
    for (let w = 0; w < workers; w++) {
      const share = (total: number) =>
        Math.floor(total / workers) + (w < total % workers ? 1 : 0);
      const [runtime, ...run] = hasBun()
        ? [BUN, "run", WORKER]
        : [Deno.execPath(), "run", "--allow-all", WORKER];
      clients.push(spawn(
        [
          ...run,
          JSON.stringify({
            ports,
            count: share(members),
            slow: share(slow),
            sourceBase: 10 + w * 20,
            sources: 20,
            churn: Number(flags.churn),
            rate: Number(flags.rate) / workers,
          }),
        ],
        {},
        runtime,
      ));
    }
    await until(
      "clients ready",
      () => {
        if (clients.some((c) => c.exited.yes)) {
          throw new Error("a client process died");
        }
        return clients.every((c) => c.lines.some((l) => l.includes('"ready"')));
      },
      600_000,
    );
    const ramp = (Date.now() - started) / 1000;
    await delay(10_000);
    const after = servers.map((s) => usage(s.child.pid));
    console.error(
      `ramp ${ramp.toFixed(0)} s; nodes after it: ${JSON.stringify(after)}`,
    );
    const samples: ReturnType<typeof usage>[][] = [];
    const end = Date.now() + seconds * 1000;
    while (Date.now() < end) {
      await delay(Math.min(30_000, end - Date.now()));
      samples.push(servers.map((s) => usage(s.child.pid)));
      console.error(
        `${Math.round((Date.now() - started) / 1000)} s: ${
          JSON.stringify(samples.at(-1))
        }`,
      );
    }
    servers[0].child.kill("SIGUSR1"); // the last tick
    await delay(5_000);
    const atEnd = servers.map((s) => usage(s.child.pid));
    const connected = await Promise.all(ports.map(async (port) => {
      const health = await fetch(`http://127.0.0.1:${port}/healthz`);
      return (await health.json()).connections as number;
    }));
    report.serverConnectionsAtEnd = connected.reduce((a, b) => a + b, 0);
    for (const c of clients) c.child.kill("SIGUSR2");
    await Promise.all(clients.map((c) => c.child.status));
    await Promise.all(clients.map((c) => c.reading));
    const results = clients.map((c) =>
      JSON.parse(c.lines.find((l) => l.includes('"report"'))!)
    );
    code = summarise(report, results, { ramp, after, atEnd, members });
  } finally {
    for (const c of clients) {
      try {
        c.child.kill("SIGKILL");
      } catch { /* gone */ }
    }
    for (const s of servers) s.child.kill("SIGTERM");
    await Promise.all(servers.map((s) => s.child.status));
    await engine.close();
  }
  console.log(JSON.stringify(report, null, 2));
  if (flags.json) {
    await Deno.writeTextFile(
      flags.json,
      JSON.stringify(report, null, 2) + "\n",
    );
  }
  return code;
}

interface WorkerReport {
  open: number;
  lost: number;
  duplicates: number;
  unrecovered: number;
  reconnects: number;
  failures: number;
  lastOffsets: Record<string, number>;
  histogram: [number, number][];
  ticks: [number, [number, number]][];
}

function summarise(
  report: Record<string, unknown>,
  results: WorkerReport[],
  at: {
    ramp: number;
    after: ReturnType<typeof usage>[];
    atEnd: ReturnType<typeof usage>[];
    members: number;
  },
): number {
  const sum = (key: keyof WorkerReport) =>
    results.reduce((a, r) => a + (r[key] as number), 0);
  const histogram = new Map<number, number>();
  const ticks = new Map<number, [number, number]>();
  const offsets = new Map<number, number>();
  for (const r of results) {
    for (const [ms, n] of r.histogram) {
      histogram.set(ms, (histogram.get(ms) ?? 0) + n);
    }
    for (const [n, [count, max]] of r.ticks) {
      const seen = ticks.get(n) ?? [0, 0];
      ticks.set(n, [seen[0] + count, Math.max(seen[1], max)]);
    }
    for (const [offset, n] of Object.entries(r.lastOffsets)) {
      offsets.set(Number(offset), (offsets.get(Number(offset)) ?? 0) + n);
    }
  }
  const final = Math.max(...offsets.keys());
  const behind = [...offsets].filter(([o]) => o < final).reduce(
    (a, [, n]) => a + n,
    0,
  );
  // Ticks every member had live (none of its members coming back then).
  const full = [...ticks.values()].filter(([count]) =>
    count >= at.members * 0.85
  );
  const toAll = full.map(([, max]) => max).sort((a, b) => a - b);
  const q = (list: number[], p: number) =>
    list[Math.min(list.length - 1, Math.floor(list.length * p))];
  Object.assign(report, {
    rampSeconds: Math.round(at.ramp),
    openAtEnd: sum("open"),
    ticks: final,
    lost: sum("lost"),
    duplicates: sum("duplicates"),
    behindAtEnd: behind,
    lastOffsetsAtEnd: Object.fromEntries(
      [...offsets].sort((a, b) => b[1] - a[1]).slice(0, 5),
    ),
    reconnects: sum("reconnects"),
    unrecovered: sum("unrecovered"),
    unexpectedCloses: sum("failures"),
    deliveryMs: {
      p50: percentile(histogram, 0.5),
      p99: percentile(histogram, 0.99),
      max: Math.max(...histogram.keys()),
    },
    tickToAllMs: {
      ticks: toAll.length,
      p50: q(toAll, 0.5),
      p99: q(toAll, 0.99),
      max: toAll.at(-1),
    },
    nodes: at.after.map((a, i) => ({
      rssMiBAfterRamp: a.rssMiB,
      rssMiBAtEnd: at.atEnd[i].rssMiB,
      fdsAfterRamp: a.fds,
      fdsAtEnd: at.atEnd[i].fds,
    })),
  });
  const failed = sum("lost") + sum("duplicates") + sum("unrecovered") + behind;
  return failed > 0 ? 1 : 0;
}
