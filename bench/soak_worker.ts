/**
 * One client process of the cluster soak (`deno task soak cluster`): opens
 * its share of sockets (`LeanSocket`, which binds a loopback source
 * address, so the clients are spread over many), round-robin over the
 * nodes, each joining `all`; checks that every tick arrives once and in
 * order (a member coming back resumes from its last position and must be
 * recovered); churns a part of its members every minute, spread over the
 * minute; holds slow
 * readers that read 100 ms in every 20 s. On SIGUSR2 it prints its report as one JSON
 * line and exits.
 *
 * Arguments (JSON): {ports, count, slow, sourceBase, sources, churn, rate}.
 */

import process from "node:process";
import { LeanSocket } from "./soak_client.ts";

interface Args {
  ports: number[];
  count: number;
  slow: number;
  /** First source address's last octet (127.0.0.X). */
  sourceBase: number;
  sources: number;
  /** Part of the members that reconnect every minute. */
  churn: number;
  /** Sockets opened per second. */
  rate: number;
}

// Runs on Deno or on Bun (faster here, so more of the machine is left to
// the nodes): node's `process` is the runtime both have.
const args: Args = JSON.parse(process.argv[2]);

/** Latency histogram: 1 ms buckets up to 10 s. */
const histogram = new Uint32Array(10_001);
/** Tick → [deliveries here, slowest ms] (live deliveries only). */
const ticks = new Map<number, [number, number]>();
let lost = 0;
let duplicates = 0;
let unrecovered = 0;
let reconnects = 0;
let failures = 0;

class Member {
  ws: LeanSocket | undefined;
  last: { offset: number; epoch: string } | undefined;
  replaying = false;
  open = false;

  constructor(readonly index: number) {}

  connect(): void {
    const port = args.ports[this.index % args.ports.length];
    const source = `127.0.0.${args.sourceBase + (this.index % args.sources)}`;
    const ws = new LeanSocket(port, source);
    this.ws = ws;
    ws.onopen = () => {
      this.open = true;
      this.replaying = this.last !== undefined;
      ws.send(JSON.stringify({
        event: "join",
        data: this.last ? { since: this.last } : {},
        id: 1,
      }));
    };
    // A churned socket's last frames may still come: they are not counted.
    ws.onmessage = (text) => {
      if (this.ws === ws) this.#received(text);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.open = false;
      if (!stopping) {
        failures++;
        setTimeout(() => this.connect(), 1000 + Math.random() * 2000);
      }
    };
  }

  /** Drops the connection and comes back within two seconds, with its position. */
  churn(): void {
    if (!this.open) return; // still coming back from the last one
    const ws = this.ws;
    this.ws = undefined;
    this.open = false;
    ws?.terminate();
    reconnects++;
    setTimeout(() => this.connect(), Math.random() * 2000);
  }

  #received(text: string): void {
    const message = JSON.parse(text);
    if (message.id === 1) {
      if (this.replaying && message.data?.recovered !== true) {
        unrecovered++;
        if (process.env.SOAK_DEBUG) console.error("unrecovered", text);
      }
      this.replaying = false;
      if (!this.last && message.data?.position) {
        this.last = message.data.position;
      }
      return;
    }
    if (message.event !== "tick") return;
    const { n, at, offset, epoch } = message.data;
    const position = { offset, epoch };
    const last = this.last;
    if (last && position.epoch === last.epoch) {
      if (position.offset <= last.offset) {
        if (process.env.SOAK_DEBUG) {
          console.error(
            "dup",
            this.index,
            position.offset,
            last.offset,
            this.replaying,
            n,
          );
        }
        return void duplicates++;
      }
      lost += position.offset - last.offset - 1;
    }
    this.last = position;
    if (this.replaying) return;
    const ms = Math.max(0, Date.now() - at);
    histogram[Math.min(ms, 10_000)]++;
    const seen = ticks.get(n) ?? [0, 0];
    seen[0]++;
    seen[1] = Math.max(seen[1], ms);
    ticks.set(n, seen);
  }
}

/**
 * A slow reader: a socket that reads for 100 ms every 20 s (so it answers
 * the heartbeat's pings late but in time) and leaves the rest unread.
 */
function slowReader(index: number): { close(): void } {
  const port = args.ports[index % args.ports.length];
  const ws = new LeanSocket(
    port,
    `127.0.0.${args.sourceBase + (index % args.sources)}`,
  );
  let timer: ReturnType<typeof setInterval> | undefined;
  ws.onopen = () => {
    ws.socket.pause();
    timer = setInterval(() => {
      ws.socket.resume();
      setTimeout(() => ws.socket.pause(), 100);
    }, 20_000);
  };
  return {
    close() {
      clearInterval(timer);
      ws.terminate();
    },
  };
}

let stopping = false;
const members: Member[] = [];
const slow: { close(): void }[] = [];
const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (let i = 0; i < args.count; i++) {
  const member = new Member(i);
  members.push(member);
  member.connect();
  if (i % 100 === 99) await delay(100_000 / args.rate);
}
for (let i = 0; i < args.slow; i++) slow.push(slowReader(i));
console.log(JSON.stringify({ type: "ready", open: members.length }));

// A tenth a minute, spread over the minute: one batch every second.
const churning = setInterval(() => {
  const count = Math.round((members.length * args.churn) / 60);
  for (let i = 0; i < count; i++) {
    members[Math.floor(Math.random() * members.length)].churn();
  }
}, 1_000);

process.on("SIGUSR2", () => {
  stopping = true;
  clearInterval(churning);
  const lastOffsets: Record<string, number> = {};
  let open = 0;
  for (const member of members) {
    if (!member.open) continue;
    open++;
    const key = String(member.last?.offset ?? 0);
    lastOffsets[key] = (lastOffsets[key] ?? 0) + 1;
  }
  console.log(JSON.stringify({
    type: "report",
    open,
    lost,
    duplicates,
    unrecovered,
    reconnects,
    failures,
    lastOffsets,
    histogram: [...histogram.entries()].filter(([, n]) => n > 0),
    ticks: [...ticks],
  }));
  for (const member of members) member.ws?.terminate();
  for (const reader of slow) reader.close();
  setTimeout(() => process.exit(0), 500);
});
