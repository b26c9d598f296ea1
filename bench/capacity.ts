/**
 * How many sockets one process holds on this machine, measured in steps
 * (`deno task bench:capacity`): raw Deno and duplex take idle connections
 * from a Node + ws client that spreads its source addresses over
 * 127.0.0.1–127.0.0.8 (the client side would otherwise run out of
 * ephemeral ports near 28,000 per destination). Each process runs under
 * the machine's descriptor limit, raised to the hard limit where the
 * kernel lets it (`prlimit`); the last step is just under it. At each step: RSS, descriptors, handshakes per second while
 * opening, the p50/p99 of a ping/pong over a sample of sockets, and one
 * publish fanned out to every socket (all of them members of one topic).
 * Bounded in count and time; loopback only.
 *
 *   deno task bench:capacity            5k, 10k, 15k, then just under the limit
 *   deno task bench:capacity --quick    2k, 5k (CI)
 *
 * Writes bench/results/capacity.{json,md} (capacity-quick.* in quick mode).
 */

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

const results: Record<string, Step[]> = {};
for (const { name, script } of SERVERS) {
  results[name] = await measure(script);
  console.error(name, JSON.stringify(results[name]));
}

const fmt = (n: number | undefined) =>
  n === undefined || !Number.isFinite(n)
    ? "–"
    : n >= 100
    ? n.toFixed(0)
    : n.toFixed(2);
const metrics: [string, string][] = [
  ["connections", "connections held"],
  ["rssMiB", "RSS MiB"],
  ["descriptors", "descriptors"],
  ["handshakesPerSecond", "handshakes/s (opening)"],
  ["pingP50Ms", "ping p50 ms"],
  ["pingP99Ms", "ping p99 ms"],
  ["fanoutP50Ms", "fan-out p50 ms"],
  ["fanoutP99Ms", "fan-out p99 ms"],
  ["fanoutLastMs", "fan-out to the last ms"],
];
const names = SERVERS.map((s) => s.name);
const lines = [
  "# Capacity: idle connections per process, in steps",
  "",
  `${
    new Date().toISOString()
  } · Deno ${Deno.version.deno} · ${navigator.hardwareConcurrency} cores · descriptor limit ${NOFILE} (prlimit) · client: Node + ws over 8 source addresses · ${
    quick ? "quick" : "full"
  } mode`,
  "",
  `| Step | Metric | ${names.join(" | ")} | duplex ÷ raw |`,
  `| --- | --- | ${names.map(() => "---").join(" | ")} | --- |`,
];
for (const [i, step] of STEPS.entries()) {
  for (const [key, label] of metrics) {
    const values = names.map((n) => results[n][i]?.[key]);
    const ratio = values[0] && values[1] ? values[1] / values[0] : undefined;
    lines.push(
      `| ${step.toLocaleString("en")} | ${label} | ${
        values.map(fmt).join(" | ")
      } | ${fmt(ratio)} |`,
    );
  }
}
const md = lines.join("\n") + "\n";
const dir = here("./results/");
const name = quick ? "capacity-quick" : "capacity";
await Deno.writeTextFile(
  `${dir}${name}.json`,
  JSON.stringify(
    { date: new Date().toISOString(), steps: STEPS, results },
    null,
    2,
  ) +
    "\n",
);
await Deno.writeTextFile(`${dir}${name}.md`, md);
console.log(md);
const short = names.filter((n) =>
  (results[n].at(-1)?.connections ?? 0) < STEPS.at(-1)!
);
if (short.length) {
  console.error(
    `capacity: ${short.join(", ")} stopped short of ${STEPS.at(-1)}`,
  );
}
