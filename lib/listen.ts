/**
 * Serving a duplex server with `Deno.serve` and stopping it in the right
 * order: drain the sockets first (Deno's own `shutdown()` would drop them at
 * once), then stop the HTTP server.
 *
 * @module
 */

import type { EventMap } from "./context.ts";
import type { DuplexServer } from "./server.ts";

/** Options of {@linkcode listen}. */
export interface ListenOptions {
  /**
   * The TCP port; `0` picks a free one.
   * @default {8000}
   */
  port?: number;
  /**
   * The address to listen on.
   * @default {"0.0.0.0"}
   */
  hostname?: string;
  /**
   * Called once listening.
   * @default {nothing}
   */
  onListen?: (addr: Deno.NetAddr) => void;
}

/** A listening server. */
export interface Listener {
  /** The address actually bound (the port is real even when 0 was asked). */
  readonly addr: Deno.NetAddr;
  /** Drains the duplex server, then stops the HTTP server. */
  close(): Promise<void>;
  /** Settles when the HTTP server has stopped. */
  readonly finished: Promise<void>;
}

/**
 * Serves `app` with `Deno.serve`.
 *
 * @example
 * ```ts ignore
 * const listener = listen(app, { port: 0, hostname: "127.0.0.1" });
 * console.log(listener.addr.port);
 * await listener.close();
 * ```
 */
export function listen<State, Push extends EventMap>(
  app: DuplexServer<State, Push>,
  options: ListenOptions = {},
): Listener {
  const { port = 8000, hostname = "0.0.0.0", onListen = () => {} } = options;
  const server = Deno.serve(
    { port, hostname, onListen: (addr) => onListen(addr as Deno.NetAddr) },
    (request, info) => app.fetch(request, info),
  );
  let closing: Promise<void> | undefined;
  return {
    addr: server.addr as Deno.NetAddr,
    finished: server.finished,
    close() {
      closing ??= app.shutdown().then(() => server.shutdown());
      return closing;
    },
  };
}

/**
 * On the first SIGINT or SIGTERM, calls `stop` (say, a listener's `close`,
 * which drains the sockets) and then removes its listeners, so the process
 * ends by itself once nothing is left running. A second signal exits at
 * once with code 1. It never calls `Deno.exit` on the graceful path, so it
 * also works under `deno run --watch`, which restarts through SIGTERM.
 *
 * @returns A function that removes the listeners.
 */
export function shutdownOnSignals(stop: () => Promise<void>): () => void {
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
    stop().finally(remove);
  }
  for (const signal of signals) Deno.addSignalListener(signal, onSignal);
  return remove;
}
