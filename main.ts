/**
 * The example server's one entry.
 *
 * - `deno task start` / `deno task dev` run `main.ts --listen`: this module
 *   serves itself with `Deno.serve` and drains gracefully on SIGINT/SIGTERM.
 * - `deno serve main.ts` (with `--parallel` too) and Deno Deploy call the
 *   default export's `fetch`; the runtime owns the HTTP server there.
 *
 * Exactly one server runs in each mode: with `--listen`, `fetch` is taken
 * off the default export, so the runtime neither serves it a second time
 * nor warns about it.
 *
 * @module
 */

import {
  ConfigError,
  createBackplane,
  createLogger,
  listen,
  readEnvConfig,
  shutdownOnSignals,
} from "./lib/mod.ts";
import { createApp } from "./routes/app.ts";

function configure() {
  try {
    return readEnvConfig((name) => Deno.env.get(name));
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    Deno.exit(1);
  }
}

const config = configure();
const logger = createLogger({ level: config.logLevel });
const app = createApp({
  ...config,
  logger,
  backplane: createBackplane(config, logger),
});
const entry: Partial<Deno.ServeDefaultExport> = { fetch: app.fetch };
export default entry;

if (import.meta.main && Deno.args.includes("--listen")) {
  delete entry.fetch;
  const listener = listen(app, {
    port: config.port,
    hostname: config.hostname,
    onListen: ({ hostname, port }) =>
      console.log(`duplex: Listening on http://${hostname}:${port}/`),
  });
  shutdownOnSignals(() => listener.close());
} else {
  // `deno serve` reads DENO_SERVE_ADDRESS when it starts listening, after
  // this module has run: map PORT and HOSTNAME onto it.
  if (
    !Deno.env.get("DENO_SERVE_ADDRESS") &&
    (Deno.env.get("PORT") || Deno.env.get("HOSTNAME"))
  ) {
    Deno.env.set("DENO_SERVE_ADDRESS", `tcp:${config.hostname}:${config.port}`);
  }
  // The runtime aborts its server on SIGINT/SIGTERM itself (every socket
  // gets its 1001 "Server shutting down" at once); this still refuses new
  // handshakes and lets every onClose run before the process ends.
  shutdownOnSignals(() => app.shutdown());
}
