/**
 * duplex under test, with validation, ids and its protections on: a Zod
 * schema per event, the rate limit (set high enough not to refuse the
 * bench's honest load), the slow-consumer cap, the in-flight cap.
 *
 * Env: PORT. Prints "ready" once listening.
 */

import { z } from "zod";
import {
  createServer,
  EventRouter,
  listen,
  silentLogger,
} from "@duplex-ws/duplex";

type Pushes = { bench: string };

const router = new EventRouter<undefined, Pushes>()
  .on("echo", z.string(), (data) => data)
  .on("join", z.undefined(), (_data, ctx) => ctx.join("bench"))
  .on("fanout", z.string(), (data, ctx) => {
    ctx.publish("bench", "bench", data);
  });

const app = createServer({
  router,
  logger: silentLogger,
  maxConnections: 100_000,
  // The load generator is one address with many sockets.
  maxConnectionsPerIp: 0,
  handshakesPerIpPerSecond: 0,
  rateLimit: { messagesPerSecond: 1_000_000, bytesPerSecond: 1_000_000_000 },
});
listen(app, {
  port: Number(Deno.env.get("PORT")),
  hostname: "127.0.0.1",
  onListen: () => console.log("ready"),
});
