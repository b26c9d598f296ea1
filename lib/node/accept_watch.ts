/**
 * Keeps a `node:http` server accepting on Deno. When the process runs out
 * of descriptors, the runtime's accept loop stops for good without an
 * `error` event: the process stays up, its established sockets are served,
 * and nothing new is accepted, ever. The watch probes the listener with a
 * connection of its own every few seconds; one the kernel accepts that
 * never reaches the server (or none at all, for want of a descriptor)
 * means the loop is gone: it logs `listener lost`, listens again on the same address with backoff until one gets
 * through (`listener recovered`), and gives up after `recoverFor` (then
 * the listener's `finished` rejects and the process should exit 1).
 *
 * @module
 */

import type http from "node:http";
import net from "node:net";
import type { Logger } from "@duplex-ws/duplex";

/** Milliseconds between two probes of a healthy listener. */
const PROBE_EVERY = 2_000;
/** Milliseconds a probe's connection has to reach the server. */
const PROBE_WAIT = 1_000;

/** What the watch needs to know and to do. */
export interface AcceptWatchOptions {
  /** The address listened on. */
  readonly hostname: string;
  /** The port bound. */
  readonly port: number;
  /** Milliseconds to keep trying after the loop is lost. */
  readonly recoverFor: number;
  /** Where `listener lost` and `listener recovered` go. */
  readonly logger: Logger;
  /** Called once when listening could not be brought back. */
  readonly onLost: (error: Error) => void;
}

type Probe = "accepted" | "lost" | "unknown";

/** Watches a listening server's accept loop (see the module docs). */
export class AcceptWatch {
  readonly #server: http.Server;
  readonly #options: AcceptWatchOptions;
  #accepted = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #stopped = false;
  /** Ends the probe under way, if any. */
  #abortProbe: (() => void) | undefined;

  /** Starts watching `server`, which is listening. */
  constructor(server: http.Server, options: AcceptWatchOptions) {
    this.#server = server;
    this.#options = options;
    server.on("connection", () => this.#accepted++);
    this.#schedule(PROBE_EVERY);
  }

  /** Stops watching (the server is closing). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#abortProbe?.();
  }

  #schedule(ms: number): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => this.#check(), ms);
  }

  async #check(): Promise<void> {
    // A probe this process has no descriptor for counts as lost too: the
    // accept loop needs one as well, and Deno's stops at the first EMFILE.
    if (await this.#probe() === "accepted") return this.#schedule(PROBE_EVERY);
    const { logger, port, recoverFor } = this.#options;
    logger.error("listener lost: its accept loop stopped; listening again", {
      port,
    });
    const since = Date.now();
    for (let attempt = 0; Date.now() - since < recoverFor; attempt++) {
      await new Promise((done) =>
        setTimeout(done, Math.min(100 * 2 ** attempt, 2_000))
      );
      if (this.#stopped) return;
      if (await this.#relisten() && await this.#probe() === "accepted") {
        logger.warn("listener recovered", { port, attempt });
        return this.#schedule(PROBE_EVERY);
      }
    }
    if (this.#stopped) return;
    logger.error("listener could not be recovered", { port });
    this.#options.onLost(
      new Error(`Cannot accept on port ${port} again within ${recoverFor} ms`),
    );
  }

  /** Whether a connection of our own reaches the server. */
  #probe(): Promise<Probe> {
    const { hostname, port } = this.#options;
    const host = hostname === "0.0.0.0" || hostname === "::"
      ? "127.0.0.1"
      : hostname;
    const before = this.#accepted;
    return new Promise((resolve) => {
      const socket = net.connect({ host, port });
      let connected = false;
      const timer = setTimeout(() => finish(), PROBE_WAIT);
      let poll: ReturnType<typeof setInterval> | undefined;
      const finish = () => {
        this.#abortProbe = undefined;
        clearTimeout(timer);
        clearInterval(poll);
        socket.destroy();
        // Refused: nothing listens. Not connected: this process has no
        // descriptor for a probe now.
        if (this.#accepted > before) resolve("accepted");
        else resolve(connected ? "lost" : "unknown");
      };
      this.#abortProbe = finish;
      socket.once("connect", () => {
        connected = true;
        poll = setInterval(() => {
          if (this.#accepted > before) finish();
        }, 10);
      });
      socket.once("error", (error: Error & { code?: string }) => {
        connected = error.code === "ECONNREFUSED";
        finish();
      });
    });
  }

  /** Closes the listening handle and binds again; `false` when it cannot yet. */
  #relisten(): Promise<boolean> {
    const { hostname, port } = this.#options;
    const server = this.#server;
    return new Promise((resolve) => {
      if (server.listening) server.close();
      const failed = () => resolve(false);
      server.once("error", failed);
      server.listen(port, hostname, () => {
        server.off("error", failed);
        resolve(true);
      });
    });
  }
}
