/**
 * The test app (`tests/_app.ts`) as a server process, for attacks that need
 * its handlers (say `flood`, which queues as much as asked for) against a
 * real process: `PORT`, `OPTIONS` as JSON server options, `REDIS_URL` for
 * the Redis engine or `POSTGRES_URL` for the Postgres one, with `ENGINE` as
 * JSON engine options. Prints "Listening on" once serving; SIGTERM drains.
 */

import { listen, shutdownOnSignals } from "@duplex-ws/duplex";
import { RedisBackplane } from "@duplex-ws/redis";
import { PostgresBackplane } from "@duplex-ws/postgres";
import { createTestApp } from "./_app.ts";

const [redis, postgres] = ["REDIS_URL", "POSTGRES_URL"].map((name) =>
  Deno.env.get(name)
);
const engine = JSON.parse(Deno.env.get("ENGINE") ?? "{}");
const { app } = createTestApp({
  ...JSON.parse(Deno.env.get("OPTIONS") ?? "{}"),
  ...redis ? { backplane: new RedisBackplane({ url: redis, ...engine }) } : {},
  ...postgres
    ? { backplane: new PostgresBackplane({ url: postgres, ...engine }) }
    : {},
});
const listener = listen(app, {
  port: Number(Deno.env.get("PORT")),
  hostname: "127.0.0.1",
  onListen: ({ port }) => console.log(`Listening on ${port}`),
});
shutdownOnSignals(() => listener.close());
