/**
 * permessage-deflate on the `./node` transport, same server process, same
 * run, interleaved: `MEMBERS` members of the topic `doc` (a 4 KiB JSON
 * document, one row changed per publish, sent in full: no deltas) connect
 * through the kit's proxy with npm's `ws` client, offering deflate or not,
 * to one server started with `listenNode(app, { perMessageDeflate: true })`.
 * Reports the bytes on the wire per delivery (counted by the proxy) and the
 * server's CPU and memory per member.
 *
 *   deno run -A bench/deflate.ts [--quick]
 */

import { WebSocket as NodeWebSocket } from "../lib/node/_ws.ts";
import { startProxy } from "@duplex-ws/testing";
import { type Comparison, writeOwnRecord } from "./report.ts";
import { cpuMicros, interleaved, pairRow } from "./pair.ts";

const quick = Deno.args.includes("--quick");
const MEMBERS = 50;
const STEPS = quick ? 200 : 1_000;
const REPETITIONS = quick ? 1 : 3;

type Socket = InstanceType<typeof NodeWebSocket>;

function rssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

function open(url: string, deflate: boolean): Promise<Socket> {
  const ws = new NodeWebSocket(url, { perMessageDeflate: deflate });
  return new Promise((resolve, reject) => {
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

/** Sends a request and resolves with its reply's text. */
function ask(ws: Socket, event: string, data: unknown, id: number) {
  return new Promise<void>((resolve) => {
    const listener = (message: unknown) => {
      if (String(message).startsWith(`{"id":${id},`)) {
        ws.off("message", listener);
        resolve();
      }
    };
    ws.on("message", listener);
    ws.send(JSON.stringify({ event, data, id }));
  });
}

async function run(pid: number, port: number, deflate: boolean) {
  const proxy = startProxy({ port });
  const sockets: Socket[] = [];
  let last = 0;
  try {
    let rss0 = 0;
    for (let i = 0; i < MEMBERS; i++) {
      const ws = await open(proxy.wsUrl(), deflate);
      sockets.push(ws);
      await ask(ws, "doc.join", undefined, 1);
      if (i === MEMBERS - 1) ws.on("message", () => last++);
      // From the first member on: what the server's first connection warms up is not a member's.
      if (i === 0) rss0 = rssMiB(pid);
    }
    const rss = rssMiB(pid) - rss0;
    const publisher = await open(`ws://127.0.0.1:${port}/`, false);
    sockets.push(publisher);
    const down = proxy.bytes.down;
    const cpu = cpuMicros(pid);
    const deadline = Date.now() + 120_000;
    for (let step = 1; step <= STEPS; step++) {
      await ask(publisher, "doc.step", undefined, step + 1);
      while (step % 10 === 0 && last < step && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
    }
    while (last < STEPS && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    if (last < STEPS) throw new Error("deflate bench: over 120 s");
    const deliveries = MEMBERS * STEPS;
    return [
      (proxy.bytes.down - down) / deliveries,
      (cpuMicros(pid) - cpu) / deliveries,
      (rss * 1024) / (MEMBERS - 1),
    ];
  } finally {
    await Promise.all(sockets.map((ws) =>
      new Promise((resolve) => {
        ws.once("close", resolve);
        ws.close();
      })
    ));
    await proxy.close();
  }
}

/** Deflate offered or not, one `./node` server, interleaved. */
export async function deflateComparison(): Promise<Comparison> {
  // A server per run: the idle memory per member is measured from its start.
  const results = await interleaved(REPETITIONS, run, {
    TRANSPORT: "node",
    DEFLATE: "on",
  }, true);
  const workload = `${
    STEPS.toLocaleString("en")
  } publishes of a 4 KiB document to ${MEMBERS} members on ./node: plain, or deflate`;
  const row = (metric: string, index: number) =>
    pairRow(results, ["baseline", "duplex"], workload, metric, index, true);
  const comparison: Comparison = {
    suite: "deflate",
    title: "permessage-deflate on the ./node transport",
    baseline: "baseline",
    servers: ["baseline", "duplex"],
    rows: [
      row("bytes on the wire per delivery", 0),
      row("server CPU µs per delivery", 1),
      row("server KiB per member (joined, idle)", 2),
    ],
    notes: [
      `A fresh server per run (listenNode, perMessageDeflate: true: 1 KiB threshold, no context takeover); members connect through the kit's proxy (which counts the bytes) with npm's ws client, offering deflate or not; ${REPETITIONS} interleaved repetition(s), medians. Deno's own WebSocket cannot negotiate deflate, so this is the ./node transport only.`,
    ],
  };
  await writeOwnRecord("deflate", comparison, quick, { results });
  return comparison;
}

if (import.meta.main) {
  const comparison = await deflateComparison();
  for (const r of comparison.rows) {
    console.log(r.metric, JSON.stringify(r.values), JSON.stringify(r.ratios));
  }
}
