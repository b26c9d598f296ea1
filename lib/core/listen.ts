/**
 * Serving a duplex server with `Deno.serve` and stopping it in the right
 * order: drain the sockets first (Deno's own `shutdown()` would drop them at
 * once), then stop the HTTP server.
 *
 * @module
 */

import type { PushMap } from "./context.ts";
import { createLogger, type Logger } from "./logger.ts";
import type { DuplexServer } from "./server_types.ts";

/** The defaults of {@linkcode ListenOptions} (and of `listenNode`'s). */
export const LISTEN_DEFAULTS = {
  port: 8000,
  hostname: "0.0.0.0",
  stopTimeout: 1_000,
  recoverFor: 30_000,
  headerTimeout: 10_000,
} as const;

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
  /**
   * Milliseconds to keep trying to listen again after the listener failed;
   * then `finished` rejects.
   * @default {30000}
   */
  recoverFor?: number;
  /**
   * Where to log a lost listener and its recovery.
   * @default {JSON lines on the console at level "info"}
   */
  logger?: Logger;
}

/** A listening server. */
export interface Listener {
  /** The address actually bound (the port is real even when 0 was asked). */
  readonly addr: Deno.NetAddr;
  /** Drains the duplex server, then stops the HTTP server. */
  close(): Promise<void>;
  /**
   * Settles when the HTTP server has stopped after `close`; rejects with a
   * {@linkcode ListenerLostError} when the listener failed and could not be
   * brought back within `recoverFor`. A process should exit non-zero then:
   * it serves its open sockets but accepts nothing new.
   */
  readonly finished: Promise<void>;
}

/** The listener failed (say, EMFILE in the runtime's accept loop) and could not be recovered. */
export class ListenerLostError extends Error {
  /**
   * Makes the error.
   * @param message What happened.
   * @param options The runtime's error as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ListenerLostError";
  }
}

/** Delay before the `attempt`-th try to listen again: 100 ms doubling to 5 s, with jitter. */
function relistenDelay(attempt: number): number {
  const step = Math.min(5_000, 100 * 2 ** attempt);
  return step / 2 + Math.random() * (step / 2);
}

/**
 * Serves `app` with `Deno.serve`, and keeps serving: when the runtime's
 * listener fails while not closing (its accept loop stops for good on
 * EMFILE, with the established sockets still served), it logs that and
 * listens again on the same address with backoff until descriptors free up,
 * for at most `recoverFor`; then `finished` rejects.
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
    stopTimeout = LISTEN_DEFAULTS.stopTimeout,
    recoverFor = LISTEN_DEFAULTS.recoverFor,
    logger = createLogger(),
  } = options;
  const handler = (request: Request, info: Deno.ServeHandlerInfo) =>
    app.fetch(request, info);
  // One abort per listener generation: a failed candidate is dropped alone.
  let abort = new AbortController();
  const serve = (at: number, announce: boolean, signal: AbortSignal) =>
    Deno.serve({
      port: at,
      hostname,
      signal,
      onListen: (addr) => announce && onListen(addr as Deno.NetAddr),
    }, handler);
  let server = serve(port, true, abort.signal);
  const addr = server.addr as Deno.NetAddr;
  let closing: Promise<void> | undefined;
  let resolveFinished!: () => void;
  let rejectFinished!: (error: Error) => void;
  const finished = new Promise<void>((resolve, reject) => {
    resolveFinished = resolve;
    rejectFinished = reject;
  });

  function watch(current: Deno.HttpServer): void {
    current.finished.then(
      () => closing ? resolveFinished() : recover(undefined),
      (error) => closing ? resolveFinished() : recover(error),
    );
  }

  /** Whether a connection of our own gets through the listener's accept. */
  async function acceptsAgain(): Promise<boolean> {
    const target = hostname === "0.0.0.0" || hostname === "::"
      ? "127.0.0.1"
      : hostname;
    try {
      const response = await fetch(`http://${target}:${addr.port}/`, {
        signal: AbortSignal.timeout(1_000),
      });
      await response.body?.cancel();
      return true;
    } catch {
      return false;
    }
  }

  async function recover(cause: unknown): Promise<void> {
    const lostAt = Date.now();
    logger.error("listener lost: listening again", {
      error: cause,
      port: addr.port,
    });
    for (let attempt = 0; !closing; attempt++) {
      await new Promise((resolve) =>
        setTimeout(resolve, relistenDelay(attempt))
      );
      if (closing || Date.now() - lostAt >= recoverFor) break;
      const candidate = new AbortController();
      let next: typeof server;
      try {
        next = serve(addr.port, false, candidate.signal);
      } catch {
        continue;
      }
      // Binding can succeed while descriptors are still exhausted (the old
      // listener's one was freed): only an accepted connection tells.
      if (await acceptsAgain()) {
        abort = candidate;
        server = next;
        logger.warn("listener recovered", { port: addr.port, attempt });
        return watch(server);
      }
      candidate.abort();
      await next.finished.catch(() => {});
    }
    if (closing) return resolveFinished();
    logger.error("listener could not be recovered", { port: addr.port });
    rejectFinished(
      new ListenerLostError(
        `Cannot listen on ${hostname}:${addr.port} again within ${recoverFor} ms`,
        { cause },
      ),
    );
  }

  watch(server);
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
    addr,
    finished,
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
