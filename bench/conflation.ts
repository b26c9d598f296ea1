/**
 * Conflation under a slow member, same server process, same run: one member
 * of a topic behind a link that stops reading (the kit's proxy, `stall`)
 * while the server publishes `N` prices of about 500 bytes round 10
 * symbols, then reads again. Without conflation (`ticks-plain`) the member
 * is closed as a slow consumer once `maxBufferedAmount` is passed; with it
 * (`ticks`, `conflate: { key: "symbol" }`) it stays and ends with the
 * latest value of every symbol. Reports whether it stayed, whether it ended
 * with the latest values, the frames it got, and the server's memory
 * growth during the burst.
 *
 *   deno run -A bench/conflation.ts [--quick]
 */

import { startProxy } from "@duplex-ws/testing";
import { type Comparison, writeOwnRecord } from "./report.ts";
import { interleaved, pairRow } from "./pair.ts";

const quick = Deno.args.includes("--quick");
const N = quick ? 20_000 : 60_000;
const REPETITIONS = quick ? 1 : 3;

function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

/** A socket, open; its frames go to `onText`. */
async function open(url: string, onText: (text: string) => void) {
  const ws = new WebSocket(url);
  await new Promise((resolve) => ws.onopen = resolve);
  ws.onmessage = ({ data }) => onText(data as string);
  return ws;
}

/** A request and its reply. */
function ask(ws: WebSocket, event: string, data: unknown, id: number) {
  const replied = Promise.withResolvers<void>();
  const before = ws.onmessage;
  ws.onmessage = (message) => {
    if ((message.data as string).startsWith(`{"id":${id},`)) {
      ws.onmessage = before;
      replied.resolve();
    } else before?.call(ws, message);
  };
  ws.send(JSON.stringify({ event, data, id }));
  return replied.promise;
}

async function run(pid: number, port: number, topic: string) {
  const proxy = startProxy({ port });
  const latest = new Map<string, number>();
  let frames = 0;
  let closed = false;
  const member = await open(proxy.wsUrl(), (text) => {
    if (text.startsWith('{"id"')) return;
    const push = JSON.parse(text);
    frames++;
    latest.set(push.data.symbol, push.data.value);
  });
  member.onclose = () => closed = true;
  const publisher = await open(`ws://127.0.0.1:${port}/`, () => {});
  try {
    await ask(member, "tick.join", topic, 1);
    const rss0 = rssMiB(pid);
    let peak = rss0;
    const sampler = setInterval(() => peak = Math.max(peak, rssMiB(pid)), 20);
    proxy.stall();
    await ask(publisher, "tick.burst", { topic, n: N }, 2);
    clearInterval(sampler);
    proxy.resume();
    const ended = () => latest.get("S0") === N - (N % 10);
    const deadline = Date.now() + 30_000;
    while (!closed && !ended() && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return [closed ? 0 : 1, ended() ? 1 : 0, frames, peak - rss0];
  } finally {
    for (const ws of [member, publisher]) {
      if (ws.readyState === WebSocket.CLOSED) continue;
      const gone = new Promise((resolve) => ws.onclose = resolve);
      ws.close();
      await gone;
    }
    await proxy.close();
  }
}

/** A slow member without conflation, then with it; one server, interleaved. */
export async function conflationComparison(): Promise<Comparison> {
  const results = await interleaved(
    REPETITIONS,
    (pid, port, duplex) => run(pid, port, duplex ? "ticks" : "ticks-plain"),
  );
  const workload = `${
    N.toLocaleString("en")
  } prices of 500 bytes to a member that stops reading: plain, or conflated`;
  const row = (metric: string, index: number, lower: boolean) =>
    pairRow(results, ["baseline", "duplex"], workload, metric, index, lower);
  const comparison: Comparison = {
    suite: "conflation",
    title: "Conflation under a slow member",
    baseline: "baseline",
    servers: ["baseline", "duplex"],
    rows: [
      {
        ...row("still connected (1 yes, 0 closed as slow)", 0, false),
        mayBeZero: true,
      },
      {
        ...row("ended with every symbol's latest value (1 yes)", 1, false),
        mayBeZero: true,
      },
      row("frames the member got", 2, true),
      { ...row("server MiB grown during the burst", 3, true), mayBeZero: true },
    ],
    notes: [
      `The member reads through the kit's proxy, stalled during the burst and resumed after; ${REPETITIONS} interleaved repetition(s), medians. The bench server's maxBufferedAmount is the default (1 MiB): a conflated member holds at most one value per symbol (10) beyond it.`,
    ],
  };
  await writeOwnRecord("conflation", comparison, quick, { results });
  return comparison;
}

if (import.meta.main) {
  const comparison = await conflationComparison();
  for (const r of comparison.rows) {
    console.log(r.metric, JSON.stringify(r.values));
  }
}
