/**
 * duplex under test, with validation, ids and its protections on: a Zod
 * schema per event, the rate limit (set high enough not to refuse the
 * bench's honest load), the slow-consumer cap, the in-flight cap.
 *
 * Env: PORT; HISTORY=on gives the topic `bench` history (2,000 publishes,
 * so 1,000 can be recovered); REDIS_URL selects the Redis engine. Prints
 * "ready" once listening.
 */

import { z } from "zod";
import {
  createServer,
  EventRouter,
  listen,
  silentLogger,
} from "@duplex-ws/duplex";

type Pushes = { bench: { p: string } };

const position = z.object({ offset: z.number(), epoch: z.string() });

const router = new EventRouter<undefined, Pushes>()
  .on("echo", z.string(), (data) => data)
  .on(
    "join",
    z.object({ since: position.optional() }).optional(),
    async (data, ctx) => await ctx.join("bench", { since: data?.since }),
  )
  .on("fanout", z.string(), (data, ctx) => {
    ctx.publish("bench", "bench", { p: data });
  })
  .on("publish", z.string(), async (data, ctx) => {
    const result = await ctx.publish("bench", "bench", { p: data });
    if (result.remote === "failed") throw new Error("not stored");
    return result.position?.offset ?? null;
  });

const history = Deno.env.get("HISTORY") === "on";
const redisUrl = Deno.env.get("REDIS_URL");
const app = createServer({
  router,
  logger: silentLogger,
  maxConnections: 100_000,
  // The load generator is one address with many sockets.
  maxConnectionsPerIp: 0,
  handshakesPerIpPerSecond: 0,
  rateLimit: { messagesPerSecond: 1_000_000, bytesPerSecond: 1_000_000_000 },
  fanoutLimit: {
    deliveriesPerSecond: 100_000_000,
    bytesPerSecond: 10_000_000_000,
  },
  topics: history
    ? [{ match: "bench", history: { size: 2_000, ttl: 600_000 } }]
    : [],
  // The Redis engine only when asked for, as an app that may not use it
  // should load it (the cold start measures what is loaded).
  backplane: redisUrl
    ? new (await import("@duplex-ws/duplex/redis")).RedisBackplane({
      url: redisUrl,
      logger: silentLogger,
    })
    : undefined,
});
await app.ready;
listen(app, {
  port: Number(Deno.env.get("PORT")),
  hostname: "127.0.0.1",
  onListen: () => console.log("ready"),
});
