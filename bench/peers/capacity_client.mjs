// The capacity bench's client (bench/capacity.ts runs it): opens idle
// WebSockets in steps from several loopback source addresses (127.0.0.x, so
// that the client side does not run out of ephemeral ports), and at each
// step measures the handshake rate, a ping/pong round trip over a sample,
// the server's RSS and descriptors, and a fan-out to every socket.
// Prints one JSON line per step. Node + ws: `localAddress` picks the source.
import { readdirSync, readFileSync } from "node:fs";
import WebSocket from "ws";

const { port, pid, steps, sources, pingSample, fanouts, deadlineMs } = JSON
  .parse(process.argv[2]);
const deadline = Date.now() + deadlineMs;
const sockets = [];
let delivered = 0;
let fanoutStart = 0;
const arrivals = [];

function rssMiB() {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)[1]) / 1024;
}

function descriptors() {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function open(i) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, {
      localAddress: `127.0.0.${1 + (i % sources)}`,
      perMessageDeflate: false,
    });
    ws.once("open", () => {
      ws.send(`{"event":"join","id":1}`);
      resolve(ws);
    });
    ws.once("error", reject);
    ws.on("message", (data) => {
      if (data[0] === 0x7b && data[2] === 0x65) { // {"e…: a push
        delivered++;
        arrivals.push(performance.now() - fanoutStart);
      }
    });
  });
}

function percentile(sorted, p) {
  return sorted.length === 0
    ? NaN
    : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function pingTimes(n) {
  const times = [];
  const picks = Array.from(
    { length: Math.min(n, sockets.length) },
    () => sockets[Math.floor(Math.random() * sockets.length)],
  );
  for (let i = 0; i < picks.length; i += 100) {
    await Promise.all(
      picks.slice(i, i + 100).map((ws) =>
        new Promise((resolve) => {
          const t0 = performance.now();
          ws.once("pong", () => {
            times.push(performance.now() - t0);
            resolve();
          });
          ws.ping();
        })
      ),
    );
  }
  return times.sort((a, b) => a - b);
}

async function fanout() {
  const times = [];
  for (let k = 0; k < fanouts; k++) {
    delivered = 0;
    arrivals.length = 0;
    fanoutStart = performance.now();
    sockets[0].send(`{"event":"fanout","data":"x"}`);
    const until = performance.now() + 20_000;
    while (delivered < sockets.length && performance.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    arrivals.sort((a, b) => a - b);
    times.push({
      p50: percentile(arrivals, 0.5),
      p99: percentile(arrivals, 0.99),
      last: arrivals.at(-1),
      reached: delivered / sockets.length,
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  times.sort((a, b) => a.last - b.last);
  return times[Math.floor(times.length / 2)];
}

for (const target of steps) {
  if (Date.now() > deadline) break;
  const t0 = performance.now();
  const opened = sockets.length;
  let failed = 0;
  while (sockets.length < target && Date.now() < deadline) {
    const batch = Math.min(500, target - sockets.length);
    const results = await Promise.allSettled(
      Array.from({ length: batch }, (_, k) => open(sockets.length + k)),
    );
    for (const r of results) {
      if (r.status === "fulfilled") sockets.push(r.value);
      else failed++;
    }
    if (failed > 1000) break;
  }
  const handshakesPerSecond = (sockets.length - opened) /
    ((performance.now() - t0) / 1000);
  await new Promise((resolve) => setTimeout(resolve, 1500));
  const pings = await pingTimes(pingSample);
  const fan = await fanout();
  console.log(JSON.stringify({
    step: target,
    connections: sockets.length,
    failed,
    rssMiB: rssMiB(),
    descriptors: descriptors(),
    handshakesPerSecond,
    pingP50Ms: percentile(pings, 0.5),
    pingP99Ms: percentile(pings, 0.99),
    fanoutP50Ms: fan.p50,
    fanoutP99Ms: fan.p99,
    fanoutLastMs: fan.last,
    fanoutReached: fan.reached,
  }));
  if (sockets.length < target) break;
}
for (const ws of sockets) ws.terminate();
process.exit(0);
