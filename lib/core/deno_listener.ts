/**
 * `Deno.serve` under a duplex server, kept serving: a listener the runtime
 * loses (its accept loop stops for good on EMFILE) is listened again with
 * backoff until descriptors free up, and stopping drains the sessions
 * before the HTTP server, since Deno's own shutdown would drop them at once.
 *
 * @module
 */

import type { PushMap } from "./context.ts";
import {
  type Listener,
  ListenerLostError,
  ListenError,
  type ListenOptions,
} from "./listener.ts";
import type { Logger } from "./logger.ts";
import { withExpectedFailure } from "./process_guard.ts";
import type { DuplexServer } from "./server_types.ts";

/** `listen`'s options with every default filled in. */
export type ListenSettings =
  & Required<Omit<ListenOptions, "logger">>
  & { logger: Logger };

/** A recovered listener that stays up this long ends its trouble window. */
const STABLE_FOR = 10_000;

/** Delay before the `attempt`-th try to listen again: 100 ms doubling to 5 s, with jitter. */
function relistenDelay(attempt: number): number {
  const step = Math.min(5_000, 100 * 2 ** attempt);
  return step / 2 + Math.random() * (step / 2);
}

/** A listening `Deno.serve` that comes back after it is lost. */
export class DenoListener<State, Push extends PushMap> implements Listener {
  /** The address bound (the port is real even when 0 was asked). */
  readonly addr: Deno.NetAddr;
  /** Settles once stopped after `close`; rejects when the listener could not come back. */
  readonly finished: Promise<void>;
  readonly #app: DuplexServer<State, Push>;
  readonly #settings: ListenSettings;
  /** One abort per listener generation: a failed candidate is dropped alone. */
  #abort = new AbortController();
  #server: Deno.HttpServer;
  #closing: Promise<void> | undefined;
  #settle!: (error?: Error) => void;
  /** When the current trouble began (the first loss not followed by a stable run). */
  #lostSince: number | undefined;
  #stable: ReturnType<typeof setTimeout> | undefined;

  /** @throws {ListenError} when the address cannot be listened on. */
  constructor(app: DuplexServer<State, Push>, settings: ListenSettings) {
    this.#app = app;
    this.#settings = settings;
    this.finished = new Promise<void>((resolve, reject) => {
      this.#settle = (error) => error ? reject(error) : resolve();
    });
    const { hostname, port } = settings;
    try {
      this.#server = this.#serve(port, true, this.#abort.signal);
    } catch (error) {
      const why = error instanceof Deno.errors.AddrInUse
        ? "address in use"
        : (error as Error).message;
      throw new ListenError(`cannot listen on ${hostname}:${port}: ${why}`, {
        cause: error,
      });
    }
    this.addr = this.#server.addr as Deno.NetAddr;
    this.#watch(this.#server);
  }

  /** Drains the duplex server, then stops the HTTP server. */
  close(): Promise<void> {
    this.#closing ??= this.#stop();
    return this.#closing;
  }

  #serve(port: number, announce: boolean, signal: AbortSignal) {
    const { hostname, onListen } = this.#settings;
    return Deno.serve({
      port,
      hostname,
      signal,
      onListen: (addr) => announce && onListen(addr as Deno.NetAddr),
    }, (request, info) => this.#app.fetch(request, info));
  }

  #watch(server: Deno.HttpServer): void {
    const ended = (error?: unknown) =>
      this.#closing ? this.#settle() : void this.#recover(error);
    server.finished.then(() => ended(), ended);
  }

  /** Whether a connection of our own gets through the listener's accept. */
  async #acceptsAgain(): Promise<boolean> {
    const { hostname } = this.#settings;
    const target = hostname === "0.0.0.0" || hostname === "::"
      ? "127.0.0.1"
      : hostname;
    try {
      const response = await fetch(`http://${target}:${this.addr.port}/`, {
        signal: AbortSignal.timeout(1_000),
      });
      await response.body?.cancel();
      return true;
    } catch {
      return false;
    }
  }

  async #recover(cause: unknown): Promise<void> {
    const { logger, recoverFor, hostname } = this.#settings;
    const { port } = this.addr;
    clearTimeout(this.#stable);
    this.#lostSince ??= Date.now();
    logger.error("listener lost: listening again", { error: cause, port });
    for (let attempt = 0; !this.#closing; attempt++) {
      await new Promise((resolve) =>
        setTimeout(resolve, relistenDelay(attempt))
      );
      if (this.#closing || Date.now() - this.#lostSince >= recoverFor) break;
      if (await this.#tryListen(port)) {
        logger.warn("listener recovered", { port, attempt });
        this.#stable = setTimeout(
          () => this.#lostSince = undefined,
          STABLE_FOR,
        );
        Deno.unrefTimer(this.#stable as unknown as number);
        return this.#watch(this.#server);
      }
    }
    if (this.#closing) return this.#settle();
    logger.error("listener could not be recovered", { port });
    this.#settle(
      new ListenerLostError(
        `Cannot listen on ${hostname}:${port} again within ${recoverFor} ms`,
        { cause },
      ),
    );
  }

  /**
   * Listens again; binding can succeed while descriptors are still
   * exhausted (the old listener's one was freed): only an accepted
   * connection tells.
   */
  async #tryListen(port: number): Promise<boolean> {
    const candidate = new AbortController();
    let next: Deno.HttpServer;
    try {
      next = this.#serve(port, false, candidate.signal);
    } catch {
      return false;
    }
    if (await this.#acceptsAgain()) {
      this.#abort = candidate;
      this.#server = next;
      return true;
    }
    candidate.abort();
    await next.finished.catch(() => {});
    return false;
  }

  async #stop(): Promise<void> {
    clearTimeout(this.#stable);
    await this.#app.shutdown();
    const { stopTimeout, logger } = this.#settings;
    const shutdown = this.#server.shutdown();
    if (await settlesWithin(shutdown, stopTimeout)) return;
    abortServer(this.#abort);
    if (!await settlesWithin(shutdown, stopTimeout)) {
      logger.warn("HTTP server not stopped: a request body is still arriving");
    }
  }
}

/** Whether `promise` settles within `ms` milliseconds. */
async function settlesWithin(
  promise: Promise<unknown>,
  ms: number,
): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  const settled = promise.then(() => true, () => true);
  try {
    return await Promise.race([settled, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Aborts a `Deno.serve` whose graceful shutdown did not end. Deno 2.9.6
 * throws `BadResource` from its own abort listener when a request's body is
 * still arriving (docs/CONFORMANCE.md): reported as uncaught, it would end
 * the process, so it is expected for the length of the call.
 */
function abortServer(abort: AbortController): void {
  withExpectedFailure(
    (failure) => failure instanceof Deno.errors.BadResource,
    () => abort.abort(),
  );
}
