/**
 * A crowd of chat members in a process of its own, so that what it costs to
 * receive a flood does not slow the test process's own clients (whose
 * round trips the attack tests measure). Usage: `_crowd.ts WS_URL ROOM N`.
 * Prints "ready" once every member has joined; answers each line "count"
 * on stdin with the messages received so far; "exit" closes them all.
 */

const [wsUrl, room, n] = Deno.args;
let received = 0;
const sockets = await Promise.all(
  Array.from(
    { length: Number(n) },
    () =>
      new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`${wsUrl}/`);
        ws.onmessage = () => received++;
        ws.onerror = () => reject(new Error("a crowd member failed to open"));
        ws.onopen = () => {
          ws.send(JSON.stringify({ event: "chat.join", data: { room } }));
          resolve(ws);
        };
      }),
  ),
);
console.log("ready");
const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
let buffer = "";
for await (const chunk of lines) {
  buffer += chunk;
  let cut;
  while ((cut = buffer.indexOf("\n")) >= 0) {
    const line = buffer.slice(0, cut).trim();
    buffer = buffer.slice(cut + 1);
    if (line === "count") console.log(String(received));
    if (line === "exit") {
      await Promise.all(sockets.map((ws) =>
        new Promise<void>((resolve) => {
          ws.onclose = () => resolve();
          ws.close();
        })
      ));
      Deno.exit(0);
    }
  }
}
