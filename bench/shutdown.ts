/**
 * Shutdown under load: `main.ts --listen` with N clients in rooms while a
 * tenth of them chat, then SIGTERM; every client records the close code it
 * saw. Prints the codes, the drain time and the exit code as JSON.
 *
 *   deno task shutdown-bench [--clients 1000] [--rate 200] [--drain 3000]
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    clients: { type: "string", default: "1000" },
    rate: { type: "string", default: "200" },
    drain: { type: "string", default: "3000" },
  },
});
const CLIENTS = Number(values.clients);
const RATE = Number(values.rate);

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

const port = freePort();
const server = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--allow-net",
    "--allow-env",
    new URL("../main.ts", import.meta.url).pathname,
    "--listen",
  ],
  env: {
    PORT: String(port),
    HOSTNAME: "127.0.0.1",
    LOG_LEVEL: "error",
    DRAIN_TIMEOUT: String(values.drain),
    MAX_CONNECTIONS_PER_IP: "0",
    ADDRESS_BUDGET: "0",
    HANDSHAKES_PER_IP: "0",
  },
  stdout: "piped",
  stderr: "inherit",
}).spawn();
const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
for (let seen = ""; !seen.includes("Listening on");) {
  seen += (await reader.read()).value ?? "";
}
// Keep reading what it prints (nothing at LOG_LEVEL=error), so it never blocks.
(async () => {
  while (!(await reader.read()).done);
})();

const codes = new Map<number, number>();
const closed: Promise<void>[] = [];
const sockets: WebSocket[] = [];
for (let i = 0; i < CLIENTS; i++) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/?user=u${i}`);
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = reject;
  });
  ws.onmessage = () => {};
  ws.send(JSON.stringify({ event: "chat.join", data: { room: `r${i % 20}` } }));
  closed.push(
    new Promise((resolve) => {
      ws.onclose = (event) => {
        const code = event.code || 1006;
        codes.set(code, (codes.get(code) ?? 0) + 1);
        resolve();
      };
    }),
  );
  sockets.push(ws);
}

// A tenth of the clients chat at RATE messages a second in all.
const talkers = sockets.filter((_, i) => i % 10 === 0);
let next = 0;
const chatting = setInterval(() => {
  const ws = talkers[next++ % talkers.length];
  const room = `r${(sockets.indexOf(ws)) % 20}`;
  if (ws.readyState === WebSocket.OPEN) {
    ws.send(JSON.stringify({ event: "chat.say", data: { room, text: "hi" } }));
  }
}, 1000 / RATE);
await new Promise((resolve) => setTimeout(resolve, 2000));

const started = performance.now();
server.kill("SIGTERM");
const status = await server.status;
const drained = performance.now() - started;
clearInterval(chatting);
await Promise.race([
  Promise.all(closed),
  new Promise((resolve) => setTimeout(resolve, 5000)),
]);
for (const ws of sockets) if (ws.readyState < WebSocket.CLOSING) ws.close();

console.log(JSON.stringify({
  clients: CLIENTS,
  rate: RATE,
  drainTimeout: Number(values.drain),
  exitCode: status.code,
  exitMs: Math.round(drained),
  closeCodes: Object.fromEntries([...codes].sort()),
}));
