/**
 * The example server's one entry, for every way of running it: `deno task
 * dev`, `deno task start`, `deno serve main.ts` (with `--parallel` too) and
 * Deno Deploy all run this module through `deno serve`, which calls the
 * default export's `fetch`. This file never calls `Deno.serve` itself, so
 * exactly one server runs in each mode.
 *
 * @module
 */

import {
  ConfigError,
  createLogger,
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
// `deno serve` reads its address from DENO_SERVE_ADDRESS when it starts
// listening, which is after this module has run: map PORT and HOSTNAME to it.
if (
  !Deno.env.get("DENO_SERVE_ADDRESS") &&
  (Deno.env.get("PORT") || Deno.env.get("HOSTNAME"))
) {
  Deno.env.set("DENO_SERVE_ADDRESS", `tcp:${config.hostname}:${config.port}`);
}

const app = createApp({
  ...config,
  logger: createLogger({ level: config.logLevel }),
});
shutdownOnSignals(app);

export default { fetch: app.fetch } satisfies Deno.ServeDefaultExport;
