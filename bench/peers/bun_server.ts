// Bun's built-in WebSocket server (uWebSockets underneath), doing what
// bench/raw_server.ts does; the fan-out is Bun's own topic publish.
// Env: PORT. Prints "ready" once listening.
declare const Bun: {
  serve(options: unknown): unknown;
  env: Record<string, string | undefined>;
};

interface BunSocket {
  send(text: string): void;
  subscribe(topic: string): void;
  publish(topic: string, text: string): void;
}

Bun.serve({
  port: Number(Bun.env.PORT),
  hostname: "127.0.0.1",
  fetch(
    request: Request,
    server: { upgrade(request: Request): boolean },
  ): Response | undefined {
    if (server.upgrade(request)) return undefined;
    return new Response("bun");
  },
  websocket: {
    open(ws: BunSocket) {
      ws.subscribe("all");
    },
    message(ws: BunSocket, raw: string) {
      const message = JSON.parse(raw);
      if (message.event === "echo") {
        ws.send(JSON.stringify({ id: message.id, data: message.data }));
      } else if (message.event === "join") {
        ws.send(JSON.stringify({ id: message.id, data: true }));
      } else if (message.event === "fanout") {
        const text = JSON.stringify({
          event: "bench",
          data: { p: message.data },
        });
        // publish skips the sender: send to it too, as every other server does.
        ws.publish("all", text);
        ws.send(text);
      }
    },
  },
});
console.log("ready");
