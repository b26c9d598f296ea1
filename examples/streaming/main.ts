/**
 * Runs the streaming example: `./bin/deno task example:streaming` (PORT,
 * default 8004; REDIS_URL or REDIS_CLUSTER_URLS for several nodes, where an
 * answer resumes on whichever node the reader reconnects to).
 *
 * @module
 */

import { listen, shutdownOnSignals } from "@duplex-ws/duplex";
import { readEnv } from "@duplex-ws/env";
import { loadEngine } from "@duplex-ws/env/engine";
import { createAnswerApp } from "./app.ts";

const env = readEnv((name) => Deno.env.get(name));
const backplane = await loadEngine(env.engine, env.server.logger);
const app = createAnswerApp({ ...env.server, backplane });
const listener = listen(app, {
  hostname: env.listen.hostname,
  port: env.listen.port ?? 8004,
  onListen: ({ hostname, port }) =>
    console.log(`streaming: Listening on http://${hostname}:${port}/`),
});
shutdownOnSignals(() => listener.close());
