/**
 * One node of the cluster soak (`deno task soak cluster`): a duplex server
 * on Redis (`REDIS_URL`) or Postgres (`DATABASE_URL`) with one topic, `all`, that keeps history; a client joins it
 * (with `since` when it comes back) and gets every tick. With `TICKER=1`
 * this node publishes a tick a second (`TICK_EVERY` ms), from the server (`server.publish`),
 * carrying its number and when it was sent. Started by `soak_cluster.ts`.
 */

import {
  createServer,
  EventRouter,
  HttpRouter,
  listen,
  type StandardSchemaV1,
} from "@duplex-ws/duplex";
import { PostgresBackplane } from "@duplex-ws/postgres";
import { RedisBackplane } from "@duplex-ws/redis";

type Since = { since?: { offset: number; epoch: string } };

/** `{since?}`: checked by hand, so the node loads no validator. */
const joinSchema: StandardSchemaV1<Since, Since> = {
  "~standard": {
    version: 1,
    vendor: "soak",
    validate(value) {
      const since = (value as Since | null)?.since;
      const ok = value === undefined || value === null ||
        since === undefined ||
        (Number.isSafeInteger(since?.offset) &&
          typeof since?.epoch === "string");
      return ok
        ? { value: (value ?? {}) as Since }
        : { issues: [{ message: "since must be a position" }] };
    },
  },
};

const env = (name: string, fallback: string) => Deno.env.get(name) ?? fallback;
const database = env("DATABASE_URL", "");
const backplane = database
  ? new PostgresBackplane({ url: database })
  : new RedisBackplane({ url: env("REDIS_URL", "") });
const router = new EventRouter().on(
  "join",
  joinSchema,
  async ({ since }, ctx) => {
    const joined = await ctx.join("all", { since });
    return { position: joined.position, recovered: joined.recovered };
  },
);
const app = createServer({
  router,
  backplane,
  http: new HttpRouter().get(
    "/healthz",
    (_request, { server }) => Response.json(server!.health()),
  ),
  topics: [{ match: "all", history: { size: 2000, ttl: 3_600_000 } }],
  maxConnections: 40_000,
  maxConnectionsPerIp: 0,
  handshakesPerIpPerSecond: 0,
  addressBudget: 0,
  fanoutLimit: false,
  maxSockets: 19_000,
  maxBufferedAmount: 256 * 1024,
  maxReplay: 2000,
  logger: {
    debug() {},
    info() {},
    warn: (message, fields) => console.error(message, fields ?? ""),
    error: (message, fields) => console.error(message, fields ?? ""),
  },
});

const listener = listen(app, {
  hostname: "127.0.0.1",
  port: Number(env("PORT", "0")),
  onListen: ({ port }) => console.log(`listening ${port}`),
});

let ticker: ReturnType<typeof setInterval> | undefined;
if (env("TICKER", "0") === "1") {
  let n = 0;
  ticker = setInterval(() => {
    app.publish("all", "tick", { n: ++n, at: Date.now() }).catch((error) =>
      console.error("tick failed", error)
    );
  }, Number(env("TICK_EVERY", "1000")));
}

Deno.addSignalListener("SIGTERM", async () => {
  clearInterval(ticker);
  await listener.close();
  Deno.exit(0);
});
// The orchestrator stops the ticker first (SIGUSR1), then waits for the
// last tick to reach every client before it compares.
Deno.addSignalListener("SIGUSR1", () => clearInterval(ticker));
