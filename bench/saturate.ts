/**
 * `deno task bench --suite saturated` (or run alone): server CPU per echoed
 * message with the server saturated, as an outside harness measures it:
 * the server pinned to core 0, Bun clients on core 1 keeping many requests
 * in flight, the servers interleaved run by run, medians, ratios to the
 * naive JSON router and to the raw echo floor.
 *
 *   deno run -A bench/saturate.ts [--reps 3] [--seconds 5] [--size 32]
 *     [--base /path/to/an/older/checkout] [--out bench/results/]
 *
 * `--base` adds that checkout's duplex bench server as "duplex (base)", so a
 * change is measured against what it replaced in the same run.
 */

import { parseArgs } from "node:util";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    reps: { type: "string", default: "3" },
    seconds: { type: "string", default: "5" },
    warmup: { type: "string", default: "2" },
    size: { type: "string", default: "32" },
    connections: { type: "string", default: "64" },
    inflight: { type: "string", default: "16" },
    base: { type: "string" },
    out: { type: "string" },
    quick: { type: "boolean", default: false },
  },
});
const here = (file: string) => new URL(file, import.meta.url).pathname;
const ROOT = here("../");
const BUN = here("peers/node_modules/.bin/bun");

interface ServerSpec {
  name: string;
  /** The repository whose `deno.json` and bench server to use. */
  root: string;
  script: string;
  env?: Record<string, string>;
}

/** The servers, in the order each run interleaves them. */
export function saturatedServers(base?: string): ServerSpec[] {
  const servers: ServerSpec[] = [
    { name: "raw Deno echo", root: ROOT, script: "bench/raw_echo_server.ts" },
    { name: "naive JSON router", root: ROOT, script: "bench/raw_server.ts" },
    { name: "duplex", root: ROOT, script: "bench/duplex_server.ts" },
    {
      name: "duplex, plain schemas",
      root: ROOT,
      script: "bench/duplex_server.ts",
      env: { SCHEMAS: "plain" },
    },
  ];
  if (base) {
    servers.push({
      name: "duplex (base)",
      root: base.endsWith("/") ? base : `${base}/`,
      script: "bench/duplex_server.ts",
    });
  }
  return servers;
}

function cpuTicks(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[11]) + Number(fields[12]); // utime + stime
}

async function lines(
  stream: ReadableStream<Uint8Array<ArrayBuffer>>,
  each: (line: string) => void,
): Promise<void> {
  let buffer = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buffer += chunk;
    let at;
    while ((at = buffer.indexOf("\n")) >= 0) {
      each(buffer.slice(0, at));
      buffer = buffer.slice(at + 1);
    }
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** One run of one server: µs of server CPU per reply, and replies per second. */
export async function saturatedRun(
  spec: ServerSpec,
  load: {
    seconds: number;
    warmup: number;
    size: number;
    connections: number;
    inflight: number;
  },
): Promise<{ usPerMessage: number; perSecond: number }> {
  const port = freePort();
  const server = new Deno.Command("taskset", {
    args: ["-c", "0", Deno.execPath(), "run", "-A", spec.script],
    cwd: spec.root,
    env: { ...spec.env, PORT: String(port) },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let ready!: () => void;
  const started = new Promise<void>((resolve) => ready = resolve);
  const serverOut = lines(server.stdout, (line) => line === "ready" && ready());
  try {
    await started;
    const client = new Deno.Command("taskset", {
      args: [
        "-c",
        "1",
        BUN,
        here("peers/saturate_client.mjs"),
        ...[
          port,
          load.connections,
          load.inflight,
          load.size,
          load.seconds,
          load.warmup,
        ]
          .map(String),
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    let before = 0;
    let result: { replies: number; ms: number } | undefined;
    let after = 0;
    await lines(client.stdout, (line) => {
      const message = JSON.parse(line);
      if (message.event === "window_start") before = cpuTicks(server.pid);
      else {
        after = cpuTicks(server.pid);
        result = message;
      }
    });
    await client.status;
    const { replies, ms } = result!;
    const cpuUs = (after - before) * 10_000; // 100 ticks a second
    return { usPerMessage: cpuUs / replies, perSecond: replies / (ms / 1000) };
  } finally {
    server.kill("SIGKILL");
    await server.status;
    await serverOut.catch(() => {});
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

if (import.meta.main) {
  const reps = flags.quick ? 1 : Number(flags.reps);
  const load = {
    seconds: flags.quick ? 2 : Number(flags.seconds),
    warmup: flags.quick ? 1 : Number(flags.warmup),
    size: Number(flags.size),
    connections: Number(flags.connections),
    inflight: Number(flags.inflight),
  };
  const servers = saturatedServers(flags.base);
  const runs = new Map(servers.map((s) => [s.name, [] as number[]]));
  const rates = new Map(servers.map((s) => [s.name, [] as number[]]));
  for (let rep = 0; rep < reps; rep++) {
    for (const spec of servers) {
      const { usPerMessage, perSecond } = await saturatedRun(spec, load);
      runs.get(spec.name)!.push(usPerMessage);
      rates.get(spec.name)!.push(perSecond);
      console.error(
        `rep ${rep + 1} ${spec.name}: ${usPerMessage.toFixed(2)} µs/msg, ${
          Math.round(perSecond)
        } msg/s`,
      );
    }
  }
  const naive = median(runs.get("naive JSON router")!);
  const floor = median(runs.get("raw Deno echo")!);
  const rows = servers.map(({ name }) => {
    const us = median(runs.get(name)!);
    return {
      server: name,
      usPerMessage: Number(us.toFixed(3)),
      spread: runs.get(name)!.map((v) => Number(v.toFixed(2))),
      messagesPerSecond: Math.round(median(rates.get(name)!)),
      vsNaive: Number((us / naive).toFixed(3)),
      vsRaw: Number((us / floor).toFixed(3)),
    };
  });
  const report = { load, reps, rows };
  console.log(JSON.stringify(report, null, 2));
  if (flags.out) {
    await Deno.writeTextFile(
      `${flags.out}/saturated.json`,
      JSON.stringify(report, null, 2) + "\n",
    );
  }
}
