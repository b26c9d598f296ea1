// Socket.IO 4: the request/reply as acknowledgements, the fan-out as a room
// emit. With REDIS_URL, the official Redis adapter carries room emits across
// processes. Env: PORT, REDIS_URL. Prints "ready" once listening.
import { createServer } from "node:http";
import { Server } from "socket.io";

const http = createServer((_req, res) => res.end("socket.io"));
const io = new Server(http, { transports: ["websocket"], serveClient: false });
const redisUrl = process.env.REDIS_URL;
if (redisUrl) {
  const { Redis } = await import("ioredis");
  const { createAdapter } = await import("@socket.io/redis-adapter");
  const pub = new Redis(redisUrl);
  const sub = pub.duplicate();
  io.adapter(createAdapter(pub, sub));
  await Promise.all([
    new Promise((resolve) => pub.once("ready", resolve)),
    new Promise((resolve) => sub.once("ready", resolve)),
  ]);
}
io.on("connection", (socket) => {
  socket.on("echo", (data, ack) => ack(data));
  socket.on("join", (ack) => {
    socket.join("bench");
    ack(true);
  });
  socket.on("fanout", (data) => io.to("bench").emit("bench", { p: data }));
});
http.listen(Number(process.env.PORT), "127.0.0.1", () => console.log("ready"));
