/**
 * What listening gives and takes, whatever serves it (`listen` on
 * `Deno.serve`, `listenNode` on `node:http`): the options and their
 * defaults, the listener, and the two ways listening fails.
 *
 * @module
 */

import type { Logger } from "./logger.ts";

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

/** The address could not be listened on at start (in use, not allowed). */
export class ListenError extends Error {
  /**
   * Makes the error.
   * @param message What happened, naming the address.
   * @param options The runtime's error as `cause`.
   */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ListenError";
  }
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
