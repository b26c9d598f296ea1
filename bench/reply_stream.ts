/**
 * Streamed replies beside plain pushes of the same size, same server
 * process, same run, interleaved: one client asks for `N` chunks as a
 * streamed reply (`ctx.stream`: each chunk numbered, kept for a resume,
 * written when the connection has room) or as `N` plain pushes
 * (`ctx.emit`: nothing kept), and reads them all. Reports chunks per
 * second and the server's CPU per chunk (from /proc, over the window).
 *
 *   deno run -A bench/reply_stream.ts [--quick]
 */

import { type Comparison, type MetricRow, writeOwnRecord } from "./report.ts";

const quick = Deno.args.includes("--quick");
// Plain pushes are sent at once: their total must fit under the server's
// maxBufferedAmount (1 MiB), or it closes the reader as a slow consumer.
const CHUNKS = quick ? 2_000 : 8_000;
const SIZE = 64;
const REPETITIONS = quick ? 1 : 5;
const SERVER = new URL("./duplex_server.ts", import.meta.url).pathname;

function cpuMicros(pid: number): number {
  let nanos = 0;
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    const stat = Deno.readTextFileSync(
      `/proc/${pid}/task/${task.name}/schedstat`,
    );
    nanos += Number(stat.split(" ")[0]);
  }
  return nanos / 1000;
}

/** Asks for the burst as `event` and reads until every chunk and the end came. */
async function burst(port: number, event: "stream" | "pushes") {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await new Promise((resolve) => ws.onopen = resolve);
  const done = Promise.withResolvers<void>();
  let chunks = 0;
  let replied = false;
  ws.onmessage = ({ data }) => {
    const text = data as string;
    if (text.startsWith('{"id"')) replied = true;
    else if (text.includes('"stream.end"')) return done.resolve();
    else if (text.includes('"stream.chunk"') || text.includes('"bench"')) {
      chunks++;
    }
    if (event === "pushes" && replied && chunks === CHUNKS) done.resolve();
  };
  ws.onclose = () => done.reject(new Error(`${event}: the server closed`));
  ws.send(JSON.stringify({ event, data: { n: CHUNKS, size: SIZE }, id: 1 }));
  const timer = setTimeout(
    () => done.reject(new Error(`${event}: not done in 60 s`)),
    60_000,
  );
  await done.promise.finally(() => clearTimeout(timer));
  ws.onclose = null;
  ws.close();
  await new Promise((resolve) => ws.onclose = resolve);
  return chunks;
}

async function measure(pid: number, port: number, event: "stream" | "pushes") {
  const cpu = cpuMicros(pid);
  const started = performance.now();
  const chunks = await burst(port, event);
  const seconds = (performance.now() - started) / 1000;
  return [chunks / seconds, (cpuMicros(pid) - cpu) / chunks];
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** Streamed chunks against plain pushes, one server, interleaved. */
export async function streamComparison(): Promise<Comparison> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const server = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", SERVER],
    env: { PORT: String(port) },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const out = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  await out.read(); // "ready"
  const results = {
    pushes: [] as number[][],
    "streamed reply": [] as number[][],
  };
  try {
    for (let rep = 0; rep < REPETITIONS; rep++) {
      results.pushes.push(await measure(server.pid, port, "pushes"));
      results["streamed reply"].push(await measure(server.pid, port, "stream"));
    }
  } finally {
    server.kill("SIGTERM");
    await out.cancel();
    await server.status;
  }
  const row = (metric: string, index: number, lower: boolean): MetricRow => {
    const values = Object.fromEntries(
      Object.entries(results).map(([name, reps]) => {
        const list = reps.map((r) => r[index]);
        return [name, {
          median: median(list),
          min: Math.min(...list),
          max: Math.max(...list),
        }];
      }),
    );
    return {
      workload: `${
        CHUNKS.toLocaleString("en")
      } chunks of ${SIZE} bytes to one client`,
      metric,
      lowerIsBetter: lower,
      values,
      ratios: {
        "streamed reply": values["streamed reply"].median /
          values.pushes.median,
      },
    };
  };
  const comparison: Comparison = {
    suite: "streams",
    title: "Streamed replies beside plain pushes",
    baseline: "pushes",
    servers: ["pushes", "streamed reply"],
    rows: [row("chunks/s", 0, false), row("server CPU µs/chunk", 1, true)],
    notes: [
      `One Deno client, ${REPETITIONS} interleaved repetitions, medians. A streamed chunk is numbered and kept in the stream's history (the local engine here) and written when the connection has room; a plain push is sent and forgotten, so it cannot be resumed.`,
    ],
  };
  await writeOwnRecord("reply-stream", comparison, quick, { results });
  return comparison;
}

if (import.meta.main) {
  const comparison = await streamComparison();
  for (const r of comparison.rows) {
    console.log(r.metric, JSON.stringify(r.values));
  }
}
