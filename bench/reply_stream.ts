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

import { type Comparison, writeOwnRecord } from "./report.ts";
import { cpuMicros, pairRow, startBenchServer } from "./pair.ts";

const quick = Deno.args.includes("--quick");
// Plain pushes are sent at once: their total must fit under the server's
// maxBufferedAmount (1 MiB), or it closes the reader as a slow consumer.
const CHUNKS = quick ? 2_000 : 8_000;
const SIZE = 64;
const REPETITIONS = quick ? 1 : 5;

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

/** Streamed chunks against plain pushes, one server, interleaved. */
export async function streamComparison(): Promise<Comparison> {
  const server = await startBenchServer();
  const results = {
    pushes: [] as number[][],
    "streamed reply": [] as number[][],
  };
  try {
    for (let rep = 0; rep < REPETITIONS; rep++) {
      results.pushes.push(await measure(server.pid, server.port, "pushes"));
      results["streamed reply"].push(
        await measure(server.pid, server.port, "stream"),
      );
    }
  } finally {
    await server.stop();
  }
  const row = (metric: string, index: number, lower: boolean) =>
    pairRow(
      results,
      ["pushes", "streamed reply"],
      `${CHUNKS.toLocaleString("en")} chunks of ${SIZE} bytes to one client`,
      metric,
      index,
      lower,
    );
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
