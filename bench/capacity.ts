/**
 * How many sockets one process holds on this machine, measured in steps
 * (`deno task bench --suite capacity`): raw Deno and duplex take idle connections
 * from a Node + ws client that spreads its source addresses over
 * 127.0.0.1–127.0.0.8 (the client side would otherwise run out of
 * ephemeral ports near 28,000 per destination). Each process runs under
 * the machine's descriptor limit, raised to the hard limit where the
 * kernel lets it (`prlimit`); the last step is just under it. At each step: RSS, descriptors, handshakes per second while
 * opening, the p50/p99 of a ping/pong over a sample of sockets, and one
 * publish fanned out to every socket (all of them members of one topic).
 * Bounded in count and time; loopback only.
 *
 *   deno task bench --suite capacity            5k, 10k, 15k, then just
 *                                               under the limit
 *   deno task bench --suite capacity --quick    2k, 5k (CI)
 *
 * Also writes bench/results/capacity.{json,md} (capacity-quick.* in quick
 * mode). `deno run -A bench/capacity.ts` runs it alone.
 */

import { type Comparison, type MetricRow, writeOwnRecord } from "./report.ts";

const quick = Deno.args.includes("--quick");
/** The hard descriptor limit: as high as an unprivileged process may go. */
const NOFILE = Number(
  new TextDecoder().decode(
    new Deno.Command("sh", { args: ["-c", "ulimit -Hn"], stdout: "piped" })
      .outputSync().stdout,
  ).trim(),
) || 1024;
const STEPS = quick
  ? [2_000, 5_000]
  : [5_000, 10_000, 15_000, 25_000, 50_000].filter((n) => n < NOFILE - 100)
    .concat(NOFILE - 500 > 15_000 && NOFILE < 50_000 ? [NOFILE - 500] : []);
const here = (file: string) => new URL(file, import.meta.url).pathname;

const SERVERS = [
  { name: "raw Deno JSON", script: here("./raw_server.ts") },
  { name: "duplex", script: here("./duplex_server.ts") },
];

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

type Step = Record<string, number>;

async function measure(script: string): Promise<Step[]> {
  const port = freePort();
  const server = new Deno.Command("prlimit", {
    args: [
      `--nofile=${NOFILE}:${NOFILE}`,
      Deno.execPath(),
      "run",
      "-A",
      "--lock=deno.dev.lock",
      script,
    ],
    env: { PORT: String(port) },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = server.stdout.pipeThrough(new TextDecoderStream())
    .getReader();
  let out = "";
  while (!out.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${script} exited before it was ready`);
    out += value;
  }
  reader.releaseLock();
  try {
    const client = await new Deno.Command("prlimit", {
      args: [
        `--nofile=${NOFILE}:${NOFILE}`,
        "node",
        "--max-old-space-size=8192",
        here("./peers/capacity_client.mjs"),
        JSON.stringify({
          port,
          pid: server.pid,
          steps: STEPS,
          sources: 8,
          pingSample: 1000,
          fanouts: 3,
          deadlineMs: quick ? 60_000 : 300_000,
        }),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    if (!client.success) throw new Error("capacity client failed");
    return new TextDecoder().decode(client.stdout).trim().split("\n")
      .filter((line) => line.startsWith("{")).map((line) => JSON.parse(line));
  } finally {
    server.kill("SIGKILL");
    await server.status;
    await server.stdout.cancel().catch(() => {});
  }
}

const METRICS: [key: string, label: string, lowerIsBetter: boolean][] = [
  ["connections", "connections held", false],
  ["rssMiB", "RSS MiB", true],
  ["descriptors", "descriptors", true],
  ["handshakesPerSecond", "handshakes/s (opening)", false],
  ["pingP50Ms", "ping p50 ms", true],
  ["pingP99Ms", "ping p99 ms", true],
  ["fanoutP50Ms", "fan-out p50 ms", true],
  ["fanoutP99Ms", "fan-out p99 ms", true],
  ["fanoutLastMs", "fan-out to the last ms", true],
];

/**
 * Runs both servers through every step (one repetition: a step takes tens
 * of seconds) and writes `results/capacity{,-quick}.{json,md}`.
 * @returns The steps as a comparison to raw Deno, for `bench/run.ts`.
 */
export async function capacityComparison(): Promise<Comparison> {
  const results: Record<string, Step[]> = {};
  for (const { name, script } of SERVERS) {
    results[name] = await measure(script);
    console.error(`capacity · ${name}: ${JSON.stringify(results[name])}`);
  }
  const [raw, duplex] = SERVERS.map((s) => s.name);
  const rows: MetricRow[] = [];
  for (const [i, step] of STEPS.entries()) {
    for (const [key, label, lowerIsBetter] of METRICS) {
      const of = (name: string) => {
        const value = results[name][i]?.[key];
        return value === undefined ? undefined : {
          median: value,
          min: value,
          max: value,
        };
      };
      const values = { [raw]: of(raw), [duplex]: of(duplex) };
      const base = values[raw]?.median;
      const mine = values[duplex]?.median;
      rows.push({
        workload: `${step.toLocaleString("en")} connections`,
        metric: label,
        lowerIsBetter,
        values,
        ratios: {
          [duplex]: base && mine !== undefined ? mine / base : undefined,
        },
      });
    }
  }
  const comparison: Comparison = {
    suite: "capacity",
    title: "Capacity: idle connections per process, in steps",
    baseline: raw,
    servers: [raw, duplex],
    rows,
    notes: [
      `One repetition. Each server runs under the descriptor limit ${NOFILE} (the hard limit here; prlimit cannot raise it); a Node + ws client opens connections 500 at a time from 127.0.0.1–127.0.0.8 and joins each to one topic; at each step, after 1.5 s: RSS and descriptors from /proc, a ping/pong over 1,000 random sockets, and one publish fanned out to every socket (the median of three).`,
      "duplex keeps a tenth of the descriptor limit back (its socket budget) and answers 503 past it: the last step stops there, by design.",
    ],
  };
  await writeOwnRecord("capacity", comparison, quick, {
    steps: STEPS,
    results,
  });
  return comparison;
}

if (import.meta.main) {
  await capacityComparison();
  console.log(
    await Deno.readTextFile(
      here(`./results/capacity${quick ? "-quick" : ""}.md`),
    ),
  );
}
