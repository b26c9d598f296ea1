/**
 * Serving a duplex server with `Deno.serve` and stopping it in the right
 * order: drain the sockets first (Deno's own `shutdown()` would drop them at
 * once), then stop the HTTP server.
 *
 * @module
 */

import type { PushMap } from "./context.ts";
import type { DuplexServer } from "./server.ts";

/** The defaults of {@linkcode ListenOptions}: where `listen` serves. */
export const LISTEN_DEFAULTS = { port: 8000, hostname: "0.0.0.0" } as const;

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
  /**
   * Milliseconds `close` gives Deno's own graceful shutdown after the drain
   * before it aborts the server (Deno can wait about 10 s on a socket that
   * was closed while its peer was not reading).
   * @default {1000}
   */
  stopTimeout?: number;
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
export function listen<State, Push extends PushMap>(
  app: DuplexServer<State, Push>,
  options: ListenOptions = {},
): Listener {
  const {
    port = LISTEN_DEFAULTS.port,
    hostname = LISTEN_DEFAULTS.hostname,
    onListen = () => {},
    stopTimeout = 1000,
  } = options;
  const abort = new AbortController();
  const server = Deno.serve(
    {
      port,
      hostname,
      signal: abort.signal,
      onListen: (addr) => onListen(addr as Deno.NetAddr),
    },
    (request, info) => app.fetch(request, info),
  );
  let closing: Promise<void> | undefined;
  const stop = async () => {
    await app.shutdown();
    const timer = setTimeout(() => abort.abort(), stopTimeout);
    try {
      await server.shutdown();
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    addr: server.addr as Deno.NetAddr,
    finished: server.finished,
    close() {
      closing ??= stop();
      return closing;
    },
  };
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
