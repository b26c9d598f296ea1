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
  installProcessGuard,
  listen,
  ListenError,
  shutdownOnSignals,
} from "@duplex-ws/duplex";
import { ConfigError, readEnv } from "@duplex-ws/env";
import { loadEngine } from "@duplex-ws/env/engine";
import { createApp } from "./routes/app.ts";
import { readAppEnv, serveAddress } from "./routes/config.ts";

type Env = ReturnType<typeof readEnv>;
type App = ReturnType<typeof createApp>;

/** The configuration and the app, or exit 1 naming what is wrong. */
async function configure() {
  try {
    const get = (name: string) => Deno.env.get(name);
    const env = readEnv(get);
    const { identity, generatedSecret } = readAppEnv(get);
    if (generatedSecret) {
      env.server.logger!.warn(
        "AUTH_SECRET is not set: signing with a random key made for this process. Sessions end when it stops and other nodes cannot verify its tokens. Set AUTH_SECRET (32+ random characters) for anything but local development.",
      );
    }
    // The engine the environment chose (Redis's client loads only for Redis).
    const backplane = await loadEngine(env.engine, env.server.logger);
    const { apiKey } = env;
    return {
      env,
      app: createApp({ ...env.server, backplane, identity, apiKey }),
    };
  } catch (error) {
    const known = error instanceof ConfigError || error instanceof RangeError ||
      error instanceof TypeError;
    if (!known) throw error;
    console.error(
      error instanceof ConfigError
        ? error.message
        : `Invalid configuration: ${(error as Error).message}`,
    );
    Deno.exit(1);
  }
}

/** Listens as the environment says, or exits 1 naming why it cannot. */
async function listenOrExit(env: Env, app: App) {
  const options = {
    ...env.listen,
    logger: env.server.logger,
    onListen: ({ hostname, port }: Deno.NetAddr) =>
      console.log(`duplex: Listening on http://${hostname}:${port}/`),
  };
  try {
    // TRANSPORT=node: node:http and npm:ws, loaded only when asked for.
    return env.transport === "node"
      ? await (await import("@duplex-ws/node")).listenNode(app, options)
      : listen(app, options);
  } catch (error) {
    if (!(error instanceof ListenError)) throw error;
    console.error(`duplex: ${error.message}`);
    Deno.exit(1);
  }
}

const { env, app } = await configure();
const entry: Partial<Deno.ServeDefaultExport> = { fetch: app.fetch };
export default entry;

if (import.meta.main && Deno.args.includes("--listen")) {
  delete entry.fetch;
  // Starting is not guarded: a failure there ends the process non-zero.
  const listener = await listenOrExit(env, app);
  guard(env);
  shutdownOnSignals(() => listener.close());
  // A listener that could not be brought back: exit non-zero, so that a
  // supervisor restarts the process instead of believing it is serving.
  listener.finished.catch(() => Deno.exit(1));
} else {
  guard(env);
  // `deno serve` reads DENO_SERVE_ADDRESS when it starts listening, after
  // this module has run: map PORT and HOSTNAME onto it.
  const address = serveAddress(env.listen);
  if (!Deno.env.get("DENO_SERVE_ADDRESS") && address) {
    Deno.env.set("DENO_SERVE_ADDRESS", address);
  }
  // The runtime aborts its server on SIGINT/SIGTERM itself (every socket
  // gets its 1001 "Server shutting down" at once); this still refuses new
  // handshakes and lets every onClose run before the process ends.
  shutdownOnSignals(() => app.shutdown());
}

/**
 * Deno ends the process on an uncaught error or rejection: from here on,
 * log those that application code leaves behind instead of dropping every
 * connection.
 */
function guard(env: Env): void {
  installProcessGuard(env.server.logger!);
}
