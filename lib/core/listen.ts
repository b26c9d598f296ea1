/**
 * Serving a duplex server with `Deno.serve` and stopping it in the right
 * order: drain the sockets first (Deno's own `shutdown()` would drop them at
 * once), then stop the HTTP server.
 *
 * @module
 */

import type { PushMap } from "./context.ts";
import { DenoListener } from "./deno_listener.ts";
import {
  LISTEN_DEFAULTS,
  type Listener,
  type ListenOptions,
} from "./listener.ts";
import { createLogger } from "./logger.ts";
import type { DuplexServer } from "./server_types.ts";

export {
  LISTEN_DEFAULTS,
  type Listener,
  ListenerLostError,
  ListenError,
  type ListenOptions,
} from "./listener.ts";

/**
 * Serves `app` with `Deno.serve`, and keeps serving: when the runtime's
 * listener fails while not closing (its accept loop stops for good on
 * EMFILE, with the established sockets still served), it logs that and
 * listens again on the same address with backoff until descriptors free up,
 * for at most `recoverFor` from the first loss (a listener that flaps, lost
 * again within 10 s of coming back, does not start a new window); then
 * `finished` rejects.
 *
 * @throws {ListenError} when the address cannot be listened on at all (in
 * use, not allowed): a process should exit non-zero then.
 *
 * @example
 * ```ts ignore
 * const listener = listen(app, { port: 0, hostname: "127.0.0.1" });
 * console.log(listener.addr.port);
 * await listener.close();
 * ```
 */
export function listen<State, Push extends PushMap>(
  app: DuplexServer<State, Push>,
  options: ListenOptions = {},
): Listener {
  return new DenoListener(app, {
    port: options.port ?? LISTEN_DEFAULTS.port,
    hostname: options.hostname ?? LISTEN_DEFAULTS.hostname,
    onListen: options.onListen ?? (() => {}),
    stopTimeout: options.stopTimeout ?? LISTEN_DEFAULTS.stopTimeout,
    recoverFor: options.recoverFor ?? LISTEN_DEFAULTS.recoverFor,
    logger: options.logger ?? createLogger(),
  });
}

/** Options of {@linkcode shutdownOnSignals}. */
export interface ShutdownOnSignalsOptions {
  /**
   * Milliseconds after `stop` has finished to end the process with exit
   * code 0 if it is still alive: Deno keeps a process up for about 13 s
   * after shutdown when a socket still holds unsent data for a peer that
   * went away. The timer is unref'd, so a process with nothing left exits
   * on its own first. `false` never exits.
   * @default {1000}
   */
  exitAfter?: number | false;
}

/**
 * On the first SIGINT or SIGTERM, calls `stop` (say, a listener's `close`,
 * which drains the sockets) and then removes its listeners. A second signal
 * exits at once with code 1.
 *
 * @returns A function that removes the listeners.
 */
export function shutdownOnSignals(
  stop: () => Promise<void>,
  options: ShutdownOnSignalsOptions = {},
): () => void {
  const { exitAfter = 1000 } = options;
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM"];
  let stopping = false;
  const remove = () => {
    for (const signal of signals) Deno.removeSignalListener(signal, onSignal);
  };
  function onSignal() {
    if (stopping) Deno.exit(1);
    stopping = true;
    stop().finally(() => {
      remove();
      if (exitAfter === false) return;
      const timer = setTimeout(() => Deno.exit(0), exitAfter);
      Deno.unrefTimer(timer as unknown as number);
    });
  }
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  return remove;
}
