/**
 * The soak: thousands of connections on loopback against `main.ts --listen`
 * for a bounded time, with mixed traffic, slow peers (never read), abrupt
 * peers (drop TCP, come back) and returning members (typed clients behind a
 * proxy whose network is cut every 2 s: they resume their room with their
 * last position). It reports messages acknowledged vs delivered, peak RSS
 * and open descriptors, and exits 1 on any loss, duplicate or leak; the
 * returning members must get every acknowledged message of their room too.
 *
 *   deno task soak                      2000 connections, 60 s
 *   deno task soak --quick              200 connections, 5 s (CI runs this)
 *   deno task soak --connections 5000 --seconds 300 --returning 0
 *   deno task soak cluster              50,000 sockets on 3 nodes and Redis,
 *                                       10 minutes (see soak_cluster.ts)
 */

import { parseArgs } from "node:util";
import { DuplexClient } from "@duplex-ws/client";
import { startProxy } from "@duplex-ws/testing";
import type { ExampleRouter } from "../routes/events.ts";

if (Deno.args[0] === "cluster") {
  const { runClusterSoak } = await import("./soak_cluster.ts");
  Deno.exit(await runClusterSoak(Deno.args.slice(1)));
}

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    connections: { type: "string" },
    seconds: { type: "string" },
    rooms: { type: "string" },
    rate: { type: "string" },
    returning: { type: "string" },
    json: { type: "string" },
  },
});

const quick = flags.quick!;
const CONNECTIONS = Number(flags.connections ?? (quick ? 200 : 2000));
const SECONDS = Number(flags.seconds ?? (quick ? 5 : 60));
const ROOMS = Number(flags.rooms ?? (quick ? 10 : 20));
/** Chat messages per second across all polite clients. */
const RATE = Number(flags.rate ?? (quick ? 100 : 300));
const SLOW = Math.floor(CONNECTIONS * 0.05);
const ABRUPT = Math.floor(CONNECTIONS * 0.1);
const RETURNING = Number(flags.returning ?? Math.floor(CONNECTIONS * 0.05));
const POLITE = CONNECTIONS - SLOW - ABRUPT - RETURNING;
const MAIN = new URL("../main.ts", import.meta.url).pathname;
const encoder = new TextEncoder();

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function procStatus(pid: number, field: string): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const match = status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"));
  return match ? Number(match[1]) * 1024 : 0;
}

function openFds(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

// ---- the server -----------------------------------------------------------

const port = freePort();
const server = new Deno.Command(Deno.execPath(), {
  args: ["run", "--allow-net", "--allow-env", MAIN, "--listen"],
  env: {
    PORT: String(port),
    HOSTNAME: "127.0.0.1",
    LOG_LEVEL: "error",
    MAX_CONNECTIONS: String(CONNECTIONS * 2),
    CLOSE_TIMEOUT: "2000",
    MAX_BUFFERED_AMOUNT: String(256 * 1024),
    // Every soak client comes from 127.0.0.1: the per-address caps would
    // see one client with thousands of sockets.
    MAX_CONNECTIONS_PER_IP: "0",
    ADDRESS_BUDGET: "0",
    HANDSHAKES_PER_IP: "0",
  },
  stdout: "null",
  stderr: "inherit",
}).spawn();
const base = `http://127.0.0.1:${port}`;
const wsUrl = `ws://127.0.0.1:${port}`;

async function health(): Promise<{ status: string; connections: number }> {
  const response = await fetch(`${base}/healthz`);
  return await response.json();
}

for (let tries = 0;; tries++) {
  try {
    await health();
    break;
  } catch {
    if (tries > 200) throw new Error("server did not start");
    await delay(50);
  }
}
const baselineFds = openFds(server.pid);

// ---- polite clients: join a room, say things, count what arrives ------------

interface Polite {
  ws: WebSocket;
  room: string;
  received: Map<string, number>;
  pending: Map<number, string>;
  nextId: number;
}

const acked = new Map<string, string>(); // text → room
let refused = 0;
let lastDelivery = performance.now();

function openPolite(index: number): Promise<Polite> {
  const room = `room-${index % ROOMS}`;
  const client: Polite = {
    ws: new WebSocket(`${wsUrl}/?user=p${index}`),
    room,
    received: new Map(),
    pending: new Map(),
    nextId: 1,
  };
  return new Promise((resolve, reject) => {
    client.ws.onerror = () => reject(new Error(`client ${index} failed`));
    client.ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.event === "chat.message") {
        const count = client.received.get(message.data.text) ?? 0;
        client.received.set(message.data.text, count + 1);
        lastDelivery = performance.now();
      } else if (message.id === 0) {
        resolve(client); // joined
      } else if (message.id !== undefined) {
        const text = client.pending.get(message.id);
        client.pending.delete(message.id);
        if (text !== undefined) {
          if (message.error) refused++;
          else acked.set(text, room);
        }
      }
    };
    client.ws.onopen = () =>
      client.ws.send(
        JSON.stringify({ event: "chat.join", data: { room }, id: 0 }),
      );
  });
}

// ---- raw peers: slow (never read) and abrupt (drop and come back) -----------

function frame(text: string): Uint8Array {
  const payload = encoder.encode(text);
  const mask = crypto.getRandomValues(new Uint8Array(4));
  const header = payload.length < 126
    ? [0x81, 0x80 | payload.length]
    : [0x81, 0x80 | 126, payload.length >> 8, payload.length & 0xff];
  const out = new Uint8Array(header.length + 4 + payload.length);
  out.set(header);
  out.set(mask, header.length);
  for (let i = 0; i < payload.length; i++) {
    out[header.length + 4 + i] = payload[i] ^ mask[i % 4];
  }
  return out;
}

async function rawPeer(room: string): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const key = btoa(
    String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))),
  );
  await conn.write(encoder.encode(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ));
  const head = new Uint8Array(1024);
  await conn.read(head); // the 101 (and maybe the welcome): enough to go on
  await conn.write(
    frame(JSON.stringify({ event: "chat.join", data: { room } })),
  );
  return conn;
}

const closeQuietly = (conn: Deno.TcpConn) => {
  try {
    conn.close();
  } catch {
    // already closed
  }
};

// ---- returning members: typed clients whose network is cut ------------------

interface Returning {
  client: DuplexClient<ExampleRouter>;
  room: string;
  received: Map<string, number>;
  recovered: number;
  notRecovered: number;
}

const proxy = startProxy({ port });

async function openReturning(index: number): Promise<Returning> {
  const room = `room-${index % ROOMS}`;
  const member: Returning = {
    client: new DuplexClient<ExampleRouter>({
      url: `${proxy.wsUrl()}?user=r${index}`,
      minReconnectDelay: 50,
      maxReconnectDelay: 500,
    }),
    room,
    received: new Map(),
    recovered: 0,
    notRecovered: 0,
  };
  member.client.on("chat.message", (m) => {
    member.received.set(m.text, (member.received.get(m.text) ?? 0) + 1);
    lastDelivery = performance.now();
  });
  member.client.onRejoin((event) => {
    if (event.recovered) member.recovered++;
    else member.notRecovered++;
  });
  await member.client.join("chat.join", { room });
  return member;
}

// ---- the run ----------------------------------------------------------------

const started = performance.now();
const phase = (name: string) =>
  console.error(
    `[soak] ${name} at ${Math.round(performance.now() - started)} ms`,
  );
const polite: Polite[] = [];
for (let i = 0; i < POLITE; i += 100) {
  const batch = Array.from(
    { length: Math.min(100, POLITE - i) },
    (_, k) => openPolite(i + k),
  );
  polite.push(...await Promise.all(batch));
}
const returning: Returning[] = [];
for (let i = 0; i < RETURNING; i += 50) {
  returning.push(
    ...await Promise.all(
      Array.from(
        { length: Math.min(50, RETURNING - i) },
        (_, k) => openReturning(i + k),
      ),
    ),
  );
}
const slow: Deno.TcpConn[] = [];
for (let i = 0; i < SLOW; i++) slow.push(await rawPeer(`room-${i % ROOMS}`));
const abrupt: Deno.TcpConn[] = [];
for (let i = 0; i < ABRUPT; i++) {
  abrupt.push(await rawPeer(`room-${i % ROOMS}`));
}
const connectedIn = performance.now() - started;

let sent = 0;
let churned = 0;
let cuts = 0;
let lastCut = performance.now();
let peakRss = 0;
const deadline = performance.now() + SECONDS * 1000;
const tick = 50;
const perTick = Math.max(1, Math.round((RATE * tick) / 1000));
while (performance.now() < deadline) {
  for (let i = 0; i < perTick; i++) {
    const client = polite[Math.floor(Math.random() * polite.length)];
    const id = client.nextId++;
    const text = `${polite.indexOf(client)}:${id}`;
    client.pending.set(id, text);
    client.ws.send(
      JSON.stringify({
        event: "chat.say",
        data: { room: client.room, text },
        id,
      }),
    );
    sent++;
  }
  // Churn: a few abrupt peers drop and come back.
  if (abrupt.length > 0 && Math.random() < 0.5) {
    const k = Math.floor(Math.random() * abrupt.length);
    closeQuietly(abrupt[k]);
    abrupt[k] = await rawPeer(`room-${k % ROOMS}`);
    churned++;
  }
  // Every 2 s the returning members lose their network for 300 ms.
  if (RETURNING > 0 && performance.now() - lastCut > 2000) {
    proxy.cut({ refuseFor: 300 });
    lastCut = performance.now();
    cuts++;
  }
  peakRss = Math.max(peakRss, procStatus(server.pid, "VmRSS"));
  await delay(tick);
}

phase("traffic done");
// Let everything acknowledged arrive: quiet for 1 s, or 15 s at most.
const settleBy = performance.now() + 15_000;
await Promise.race([
  Promise.all(returning.map((m) => m.client.ready())),
  delay(15_000),
]);
while (performance.now() < settleBy) {
  const waiting = polite.some((c) => c.pending.size > 0);
  if (!waiting && performance.now() - lastDelivery > 1000) break;
  await delay(100);
}

let expected = 0;
let delivered = 0;
let lost = 0;
let duplicates = 0;
const members = new Map<string, Polite[]>();
for (const client of polite) {
  members.set(client.room, [...(members.get(client.room) ?? []), client]);
}
for (const [text, room] of acked) {
  for (const member of members.get(room) ?? []) {
    expected++;
    const count = member.received.get(text) ?? 0;
    if (count === 0) lost++;
    else delivered++;
    if (count > 1) duplicates += count - 1;
  }
}
const unanswered = polite.reduce((sum, c) => sum + c.pending.size, 0);
// Returning members: every acknowledged message of their room, once, though
// their network was cut again and again.
const returningRooms = new Map<string, Returning[]>();
for (const member of returning) {
  returningRooms.set(member.room, [
    ...(returningRooms.get(member.room) ?? []),
    member,
  ]);
}
let returningLost = 0;
let returningDuplicates = 0;
let returningDelivered = 0;
for (const [text, room] of acked) {
  for (const member of returningRooms.get(room) ?? []) {
    const count = member.received.get(text) ?? 0;
    if (count === 0) returningLost++;
    else returningDelivered++;
    if (count > 1) returningDuplicates += count - 1;
  }
}
const rejoins = returning.reduce(
  (sum, m) => ({
    recovered: sum.recovered + m.recovered,
    notRecovered: sum.notRecovered + m.notRecovered,
  }),
  { recovered: 0, notRecovered: 0 },
);

phase("settled");
// ---- tear down and look for leaks -------------------------------------------

for (const client of polite) client.ws.close();
for (const member of returning) member.client.close();
await proxy.close();
for (const conn of [...slow, ...abrupt]) closeQuietly(conn);
let remaining = -1;
const drainBy = performance.now() + 15_000;
while (performance.now() < drainBy) {
  remaining = (await health()).connections;
  if (remaining === 0) break;
  await delay(100);
}
await delay(500);
phase("drained");
const endFds = openFds(server.pid);
const hwm = procStatus(server.pid, "VmHWM");
server.kill("SIGTERM");
const status = await server.status;
phase("server exited");

const report = {
  date: new Date().toISOString(),
  deno: Deno.version.deno,
  connections: {
    polite: POLITE,
    slow: SLOW,
    abrupt: ABRUPT,
    returning: RETURNING,
    churned,
    cuts,
  },
  seconds: SECONDS,
  connectSeconds: Math.round(connectedIn) / 1000,
  messages: { sent, acked: acked.size, refused, unanswered },
  deliveries: { expected, delivered, lost, duplicates },
  returning: {
    delivered: returningDelivered,
    lost: returningLost,
    duplicates: returningDuplicates,
    rejoins,
  },
  server: {
    peakRssMiB: Math.round(Math.max(peakRss, hwm) / 1048576),
    fdsAtStart: baselineFds,
    fdsAtEnd: endFds,
    connectionsAtEnd: remaining,
    exitCode: status.code,
  },
};
console.log(JSON.stringify(report, null, 2));
if (flags.json) {
  await Deno.writeTextFile(flags.json, JSON.stringify(report, null, 2));
}

const failures: string[] = [];
if (lost > 0) failures.push(`${lost} acknowledged deliveries lost`);
if (duplicates > 0) failures.push(`${duplicates} duplicate deliveries`);
if (unanswered > 0) failures.push(`${unanswered} requests never answered`);
if (returningLost > 0) {
  failures.push(`${returningLost} deliveries lost to returning members`);
}
if (returningDuplicates > 0) {
  failures.push(`${returningDuplicates} duplicates to returning members`);
}
if (rejoins.notRecovered > 0) {
  failures.push(`${rejoins.notRecovered} rejoins not recovered`);
}
if (acked.size === 0) failures.push("nothing was acknowledged");
if (remaining !== 0) {
  failures.push(`${remaining} connections left on the server`);
}
if (endFds > baselineFds + 10) {
  failures.push(`fds grew from ${baselineFds} to ${endFds}`);
}
if (status.code !== 0) failures.push(`server exited with ${status.code}`);
if (failures.length) {
  console.error(`soak FAILED: ${failures.join("; ")}`);
  Deno.exit(1);
}
console.error(
  `soak passed: ${acked.size} acknowledged messages, ${delivered} deliveries, nothing lost`,
);
