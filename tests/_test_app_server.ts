/**
 * The test app (`tests/_app.ts`) as a server process, for attacks that need
 * its handlers (say `flood`, which queues as much as asked for) against a
 * real process: `PORT`, `OPTIONS` as JSON server options, and `REDIS_URL`
 * for the Redis engine. Prints "Listening on" once serving; SIGTERM drains.
 */

import { listen, shutdownOnSignals } from "@duplex-ws/duplex";
import { RedisBackplane } from "@duplex-ws/redis";
import { createTestApp } from "./_app.ts";

const url = Deno.env.get("REDIS_URL");
const { app } = createTestApp({
  ...JSON.parse(Deno.env.get("OPTIONS") ?? "{}"),
  ...url ? { backplane: new RedisBackplane({ url }) } : {},
});
const listener = listen(app, {
  port: Number(Deno.env.get("PORT")),
  hostname: "127.0.0.1",
  onListen: ({ port }) => console.log(`Listening on ${port}`),
});
shutdownOnSignals(() => listener.close());
