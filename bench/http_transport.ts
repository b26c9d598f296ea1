/**
 * The HTTP transport beside WebSocket, same server process, same run,
 * interleaved: clients that each send an `echo` and wait for its reply, over
 * a WebSocket, or over HTTP streaming (the reply on the SSE stream, the
 * request in a `POST`). Reports replies per second and the server's CPU per
 * reply (from /proc, over the measurement window only).
 *
 *   deno run -A bench/http_transport.ts [--quick]
 */

import { SseReader } from "@duplex-ws/protocol";
import { type Comparison, writeOwnRecord } from "./report.ts";
import { cpuMicros, pairRow, startBenchServer } from "./pair.ts";

const quick = Deno.args.includes("--quick");
const CLIENTS = 20;
const SECONDS = quick ? 1 : 5;
const REPETITIONS = quick ? 1 : 3;

/** One WebSocket client's closed loop: replies until `until`. */
async function wsLoop(url: string, until: number): Promise<number> {
  const ws = new WebSocket(url);
  await new Promise((resolve) => ws.onopen = resolve);
  let replies = 0;
  await new Promise<void>((done) => {
    ws.onmessage = () => {
      replies++;
      if (performance.now() < until) {
        ws.send('{"event":"echo","data":"x","id":1}');
      } else done();
    };
    ws.send('{"event":"echo","data":"x","id":1}');
  });
  ws.close();
  return replies;
}

/** One HTTP client's closed loop: a POST per request, the reply on the stream. */
async function httpLoop(url: string, until: number): Promise<number> {
  const abort = new AbortController();
  const response = await fetch(url, {
    headers: { accept: "text/event-stream" },
    signal: abort.signal,
  });
  const text = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const sse = new SseReader();
  let session: string | undefined;
  let replies = 0;
  const ask = () =>
    fetch(url, {
      method: "POST",
      headers: { "duplex-session": session! },
      body: '{"event":"echo","data":"x","id":1}\n',
    }).then((r) => r.body?.cancel());
  for (let read = await text.read(); !read.done; read = await text.read()) {
    for (const event of sse.feed(read.value)) {
      if (session === undefined) {
        session = JSON.parse(event.data).data.session;
        await ask();
        continue;
      }
      replies++;
      if (performance.now() >= until) {
        abort.abort();
        await text.cancel().catch(() => {});
        return replies;
      }
      await ask();
    }
  }
  return replies;
}

async function measure(
  pid: number,
  port: number,
  loop: (url: string, until: number) => Promise<number>,
  scheme: string,
): Promise<{ perSecond: number; cpuPerReply: number }> {
  const url = `${scheme}://127.0.0.1:${port}/`;
  const cpu = cpuMicros(pid);
  const started = performance.now();
  const counts = await Promise.all(
    Array.from({ length: CLIENTS }, () => loop(url, started + SECONDS * 1000)),
  );
  const seconds = (performance.now() - started) / 1000;
  const replies = counts.reduce((a, b) => a + b, 0);
  return {
    perSecond: replies / seconds,
    cpuPerReply: (cpuMicros(pid) - cpu) / replies,
  };
}

/** WebSocket and HTTP streaming against one server, interleaved. */
export async function httpComparison(): Promise<Comparison> {
  const server = await startBenchServer();
  const results = {
    WebSocket: [] as number[][],
    "HTTP streaming": [] as number[][],
  };
  try {
    for (let rep = 0; rep < REPETITIONS; rep++) {
      const ws = await measure(server.pid, server.port, wsLoop, "ws");
      const http = await measure(server.pid, server.port, httpLoop, "http");
      results.WebSocket.push([ws.perSecond, ws.cpuPerReply]);
      results["HTTP streaming"].push([http.perSecond, http.cpuPerReply]);
    }
  } finally {
    await server.stop();
  }
  const row = (metric: string, index: number, lower: boolean) =>
    pairRow(
      results,
      ["WebSocket", "HTTP streaming"],
      `${CLIENTS} clients, echo, each waiting for its reply`,
      metric,
      index,
      lower,
    );
  const comparison: Comparison = {
    suite: "http",
    title: "The HTTP transport beside WebSocket",
    baseline: "WebSocket",
    servers: ["WebSocket", "HTTP streaming"],
    rows: [row("replies/s", 0, false), row("server CPU µs/reply", 1, true)],
    notes: [
      `Deno clients in the bench process; ${REPETITIONS} interleaved repetitions of ${SECONDS} s, medians. Over HTTP each request is a POST (a request and a response through Deno.serve) and each reply an SSE event: what a client behind a proxy that refuses upgrades pays.`,
    ],
  };
  await writeOwnRecord("http-transport", comparison, quick, { results });
  return comparison;
}

if (import.meta.main) {
  const comparison = await httpComparison();
  for (const r of comparison.rows) {
    console.log(r.metric, JSON.stringify(r.values));
  }
}
