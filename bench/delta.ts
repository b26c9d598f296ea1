/**
 * Delta pushes beside full pushes, same server process, same run,
 * interleaved: `MEMBERS` raw members of the topic `doc` (a 4 KiB JSON
 * document, one row changed per publish) join with `delta: "fossil"` or
 * without, and a publisher asks for `STEPS` edits one at a time. Reports
 * the bytes the members received per delivery and the server's CPU per
 * delivery (from /proc). Then, in this process, duplex's own Fossil
 * encoder beside the `fossil-delta` package on the same documents: delta
 * size and time to make one.
 *
 *   deno run -A bench/delta.ts [--quick]
 */

import * as fossil from "npm:fossil-delta@2.0.0";
import { createFossilDelta } from "../lib/protocol/fossil.ts";
import { type Comparison, type MetricRow, writeOwnRecord } from "./report.ts";
import { cpuMicros, interleaved, pairRow } from "./pair.ts";

const quick = Deno.args.includes("--quick");
const MEMBERS = 100;
const STEPS = quick ? 300 : 2_000;
const REPETITIONS = quick ? 1 : 3;

/** Opens a socket; `onText` sees every text frame. */
async function open(port: number, onText: (text: string) => void) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error("bench: a socket did not open"));
  });
  ws.onmessage = ({ data }) => onText(data as string);
  return ws;
}

async function close(ws: WebSocket) {
  if (ws.readyState === WebSocket.CLOSED) return;
  const closed = new Promise((resolve) => ws.onclose = resolve);
  ws.close();
  await closed;
}

/** One run: members join (with deltas or not), `STEPS` edits, bytes and CPU. */
async function run(pid: number, port: number, delta: boolean) {
  let bytes = 0;
  let deliveries = 0;
  let last = 0;
  const members: WebSocket[] = [];
  try {
    for (let i = 0; i < MEMBERS; i++) {
      const ws = await open(port, (text) => {
        if (text.startsWith('{"id"')) return;
        bytes += text.length; // ASCII: characters are bytes
        deliveries++;
        if (i === MEMBERS - 1) last++;
      });
      members.push(ws);
      const joined = new Promise((resolve) => ws.onmessage = resolve);
      const data = delta ? { delta: "fossil" } : undefined;
      ws.send(JSON.stringify({ event: "doc.join", data, id: 1 }));
      await joined;
      ws.onmessage = ({ data }) => {
        const text = data as string;
        if (text.startsWith('{"id"')) return;
        bytes += text.length;
        deliveries++;
        if (i === MEMBERS - 1) last++;
      };
    }
    let reply = Promise.withResolvers<void>();
    const publisher = await open(port, () => reply.resolve());
    members.push(publisher);
    const cpu = cpuMicros(pid);
    const deadline = Date.now() + 120_000;
    for (let step = 1; step <= STEPS; step++) {
      reply = Promise.withResolvers<void>();
      publisher.send(JSON.stringify({ event: "doc.step", id: step }));
      await reply.promise;
      // Every 10 edits, the last member has them all (no backlog grows).
      while (step % 10 === 0 && last < step && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      if (Date.now() > deadline) throw new Error("delta bench: over 120 s");
    }
    while (last < STEPS && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const micros = cpuMicros(pid) - cpu;
    return [bytes / deliveries, micros / deliveries];
  } finally {
    await Promise.all(members.map(close));
  }
}

/** The documents `doc.step` publishes, as text, for the encoder comparison. */
function documents(count: number): string[] {
  const rows = Array.from({ length: 64 }, (_, id) => ({
    id,
    name: `row ${id} of the quarterly plan`,
    value: 1_000_000 + id * 7_919,
  }));
  const out: string[] = [];
  for (let rev = 1; rev <= count; rev++) {
    const row = rows[((rev - 1) * 37) % rows.length];
    row.value = (row.value * 48_271) % 2_147_483_647;
    out.push(
      JSON.stringify({ event: "doc", topic: "doc", data: { rev, rows } }),
    );
  }
  return out;
}

/** Our encoder and the package's on the same pairs: [bytes, µs] each. */
function encoders() {
  const docs = documents(STEPS);
  const bytes = (text: string) => new TextEncoder().encode(text);
  const time = (make: (a: string, b: string) => number) => {
    let size = 0;
    const started = performance.now();
    for (let i = 1; i < docs.length; i++) size += make(docs[i - 1], docs[i]);
    const micros = (performance.now() - started) * 1000;
    return [size / (docs.length - 1), micros / (docs.length - 1)];
  };
  const out = { baseline: [] as number[][], duplex: [] as number[][] };
  for (let rep = 0; rep < REPETITIONS; rep++) {
    out.baseline.push(
      time((a, b) => fossil.createDelta(bytes(a), bytes(b)).length),
    );
    out.duplex.push(time((a, b) => createFossilDelta(a, b).length));
  }
  return out;
}

/** Delta pushes against full pushes, one server, interleaved; then the encoders. */
export async function deltaComparison(): Promise<Comparison> {
  // Two columns: the baseline (full pushes; the package's encoder) and
  // duplex (delta pushes; its own encoder).
  const results = await interleaved(REPETITIONS, run);
  const workload = `${
    STEPS.toLocaleString("en")
  } edits of a 4 KiB document to ${MEMBERS} members: full pushes, or deltas`;
  const row = (metric: string, index: number) =>
    pairRow(results, ["baseline", "duplex"], workload, metric, index, true);
  const coders = encoders();
  const coderRow = (metric: string, index: number): MetricRow =>
    pairRow(
      coders,
      ["baseline", "duplex"],
      "the same documents' deltas: the fossil-delta package, or duplex's encoder",
      metric,
      index,
      true,
    );
  const rows = [
    {
      ...row("bytes per delivery", 0),
      target: { server: "duplex", ratio: 0.2 },
    },
    {
      ...row("server CPU µs per delivery", 1),
      target: { server: "duplex", ratio: 1.2 },
    },
    coderRow("delta bytes", 0),
    coderRow("µs to make a delta", 1),
  ];
  const comparison: Comparison = {
    suite: "delta",
    title: "Delta pushes beside full pushes",
    baseline: "baseline",
    servers: ["baseline", "duplex"],
    rows,
    notes: [
      `${MEMBERS} raw members of one topic, ${REPETITIONS} interleaved repetitions, medians; a publisher asks for one edit at a time (the request's cost is in both). Bytes are the frames' text (ASCII). A delta member gets a full push first, then deltas.`,
      "The encoder rows compare duplex's own Fossil encoder (lib/protocol/fossil.ts, no package in the wire or the client) with the fossil-delta package on the same pairs: both make deltas any Fossil decoder applies.",
    ],
  };
  await writeOwnRecord("delta", comparison, quick, { results, coders });
  return comparison;
}

if (import.meta.main) {
  const comparison = await deltaComparison();
  for (const r of comparison.rows) {
    console.log(r.metric, JSON.stringify(r.values), JSON.stringify(r.ratios));
  }
}
