// A saturating load for `bench/saturate.ts`, run by Bun on the core the
// server is not pinned to: CONNECTIONS sockets, each keeping INFLIGHT echo
// requests of SIZE bytes in flight, for SECONDS after a WARMUP; prints one
// JSON line: the replies counted in the window and its length in ms.
const [port, connections, inflight, size, seconds, warmup] = process.argv
  .slice(2).map(Number);
const data = "x".repeat(size);
let counting = false;
let replies = 0;
let stop = false;
const sockets = [];
await Promise.all(
  Array.from({ length: connections }, () =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
      let id = 1;
      const send = () =>
        ws.send(`{"event":"echo","data":"${data}","id":${id++}}`);
      ws.onopen = () => {
        for (let i = 0; i < inflight; i++) send();
        resolve();
      };
      ws.onmessage = () => {
        if (counting) replies++;
        if (!stop) send();
      };
      ws.onerror = reject;
      sockets.push(ws);
    })),
);
await new Promise((r) => setTimeout(r, warmup * 1000));
counting = true;
const start = performance.now();
process.stdout.write(JSON.stringify({ event: "window_start" }) + "\n");
await new Promise((r) => setTimeout(r, seconds * 1000));
counting = false;
const ms = performance.now() - start;
stop = true;
process.stdout.write(JSON.stringify({ replies, ms }) + "\n");
for (const ws of sockets) ws.close();
setTimeout(() => process.exit(0), 200);
