/**
 * Runs the auction example: `./bin/deno task example:auction` (PORT, default
 * 8003; REDIS_URL or REDIS_CLUSTER_URLS to run it on several nodes).
 *
 * @module
 */

import { listen, shutdownOnSignals } from "@duplex-ws/duplex";
import { readEnv } from "@duplex-ws/env";
import { loadEngine } from "@duplex-ws/env/engine";
import { createAuctionApp } from "./app.ts";

const env = readEnv((name) => Deno.env.get(name));
const backplane = await loadEngine(env.engine, env.server.logger);
const app = createAuctionApp({ ...env.server, backplane });
const listener = listen(app, {
  hostname: env.listen.hostname,
  port: env.listen.port ?? 8003,
  onListen: ({ hostname, port }) =>
    console.log(`auction: Listening on http://${hostname}:${port}/`),
});
shutdownOnSignals(() => listener.close());
