/**
 * The core package alone, for the cold start: the smallest duplex app, as
 * its README's first example is (one event, a hand-written Standard Schema,
 * `listen`), importing `@duplex-ws/duplex` and nothing else.
 *
 * Env: PORT. Prints "ready" once listening.
 */

import {
  createServer,
  EventRouter,
  listen,
  silentLogger,
  type StandardSchemaV1,
} from "@duplex-ws/duplex";

/** Any string. */
const text: StandardSchemaV1<string> = {
  "~standard": {
    version: 1,
    vendor: "bench",
    validate: (value) =>
      typeof value === "string"
        ? { value }
        : { issues: [{ message: "expected a string" }] },
  },
};

const router = new EventRouter().on("echo", text, (data) => data);
const app = createServer({ router, logger: silentLogger });
listen(app, {
  port: Number(Deno.env.get("PORT")),
  hostname: "127.0.0.1",
  logger: silentLogger,
  onListen: () => console.log("ready"),
});
