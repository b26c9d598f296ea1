// Node + ws: what a Node team would write by hand, doing what bench/raw_server.ts
// does (parse the envelope, reply {"id","data"}, fan out one encoded push).
// Env: PORT. Prints "ready" once listening.
import { createServer } from "node:http";
import { WebSocketServer } from "ws";

const http = createServer((_req, res) => res.end("node ws"));
const wss = new WebSocketServer({ server: http });
wss.on("connection", (socket) => {
  socket.on("message", (raw) => {
    const message = JSON.parse(raw.toString());
    if (message.event === "echo") {
      socket.send(JSON.stringify({ id: message.id, data: message.data }));
    } else if (message.event === "join") {
      socket.send(JSON.stringify({ id: message.id, data: true }));
    } else if (message.event === "fanout") {
      const text = JSON.stringify({
        event: "bench",
        data: { p: message.data },
      });
      for (const member of wss.clients) member.send(text);
    }
  });
});
http.listen(Number(process.env.PORT), "127.0.0.1", () => console.log("ready"));
