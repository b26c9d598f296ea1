/**
 * A connection's lifecycle, whatever its transport: CONNECTING → OPEN →
 * CLOSING → CLOSED, the close handshake and its timer, `onClose` exactly
 * once, `finished` and `signal`. The session (`session.ts`) builds the
 * protocol on top of it; the transport drives it through
 * {@linkcode SessionDriver}.
 *
 * @module
 */

import {
  assertApplicationClose,
  CloseCode,
  type CloseInfo,
  LibraryClose,
  type LibraryCloseKind,
  normalizeCloseInfo,
  ReadyState,
  truncateCloseReason,
} from "@duplex-ws/protocol";
import type { Logger } from "./logger.ts";
import type { Transport } from "./transport.ts";

/** What the lifecycle needs of its server. */
export interface LifecycleShared {
  /** Milliseconds to wait for the peer's close frame. */
  readonly closeTimeout: number;
  /** Where to log failures to send or close. */
  readonly logger: Logger;
}

/**
 * The states and the close of one connection. Subclasses say what opening,
 * finishing and releasing mean for them.
 */
export abstract class ConnectionState {
  /** A unique id (a random UUID). */
  readonly id: string;
  /** The transport under the connection. */
  protected readonly transport: Transport;
  #readyState: ReadyState = ReadyState.CONNECTING;
  #abort: AbortController | undefined;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #pendingClose: { code: number; reason: string } | undefined;
  #sentClose: { code: number; reason: string } | undefined;
  #finished: Promise<CloseInfo> | undefined;
  #resolveFinished: ((info: CloseInfo) => void) | undefined;
  #closeInfo: CloseInfo | undefined;
  #released = false;

  /**
   * @param id The connection's id.
   * @param transport The connection under it.
   */
  constructor(id: string, transport: Transport) {
    this.id = id;
    this.transport = transport;
  }

  /** What every connection of the server shares (kept by the subclass, once). */
  protected abstract get lifecycle(): LifecycleShared;

  /** CONNECTING, OPEN, CLOSING or CLOSED. */
  get readyState(): ReadyState {
    return this.#readyState;
  }

  /** Aborted as soon as the connection starts closing (made on first use). */
  get signal(): AbortSignal {
    if (this.#abort === undefined) {
      this.#abort = new AbortController();
      if (this.#readyState >= ReadyState.CLOSING) this.#abort.abort();
    }
    return this.#abort.signal;
  }

  /** Settles with the close info once the connection has finished and its close hook has run. */
  get finished(): Promise<CloseInfo> {
    this.#finished ??= this.#closeInfo
      ? Promise.resolve(this.#closeInfo)
      : new Promise((resolve) => this.#resolveFinished = resolve);
    return this.#finished;
  }

  /** Whether the transport has let go of the connection. */
  get released(): boolean {
    return this.#released;
  }

  /** Starts the close handshake with an application code (1000, 3000–4999). */
  close(code: number = CloseCode.NORMAL, reason = ""): void {
    assertApplicationClose(code, reason);
    this.#closeWith(code, reason);
  }

  /** Starts the close handshake with one of the library's closes. */
  closeFor(kind: LibraryCloseKind): void {
    const { code, reason } = LibraryClose[kind];
    this.#closeWith(code, reason);
  }

  /**
   * Treats the peer as gone without waiting any longer: the connection
   * finishes with 1006 and nothing more is routed to or from it. A
   * transport that can drops the connection at once; Deno's socket stays
   * counted until the runtime closes it.
   */
  terminate(reason = "terminated"): void {
    this.#finish({ code: CloseCode.ABNORMAL, reason, wasClean: false });
    this.transport.terminate();
  }

  /** The transport opened: messages may flow. */
  opened(): void {
    if (this.#readyState !== ReadyState.CONNECTING) return;
    this.#readyState = ReadyState.OPEN;
    const pending = this.#pendingClose;
    if (pending) this.#closeWith(pending.code, pending.reason);
    else this.onOpen();
  }

  /** The transport is gone: finish (if not yet) and release. */
  closed(code: number, reason: string, wasClean: boolean): void {
    if (this.#readyState === ReadyState.CLOSED) return this.#release();
    const info = normalizeCloseInfo(code, reason, wasClean);
    // When the server started the close, the peer's echo may carry no code
    // (Deno reports 1005 then): report what the server sent instead.
    const sent = this.#sentClose;
    this.#finish(
      sent && info.wasClean ? { ...sent, wasClean: true } : info,
      true,
    );
  }

  /** Runs once the connection is open (the open hook). */
  protected abstract onOpen(): void;
  /** Runs once when the connection finishes: what it held goes. */
  protected abstract onFinish(info: CloseInfo): void;
  /** Runs the close hook, after `onFinish` (and the release, when the transport went first). */
  protected abstract runCloseHook(info: CloseInfo): Promise<void>;
  /** Runs once when the transport has let go of the connection. */
  protected abstract onRelease(): void;

  /** Logs a transport failure to send. */
  protected sendFailed(error: unknown): void {
    this.lifecycle.logger.warn("send failed", { conn: this.id, error });
  }

  #closeWith(code: number, reason: string): void {
    reason = truncateCloseReason(reason);
    if (this.#readyState === ReadyState.CONNECTING) {
      this.#pendingClose ??= { code, reason };
      return;
    }
    if (this.#readyState !== ReadyState.OPEN) return;
    this.#readyState = ReadyState.CLOSING;
    this.#sentClose = { code, reason };
    this.#abort?.abort();
    const { closeTimeout, logger } = this.lifecycle;
    this.#closeTimer = setTimeout(
      () =>
        this.terminate(
          `peer did not answer the close frame within ${closeTimeout} ms`,
        ),
      closeTimeout,
    );
    try {
      this.transport.close(code, reason);
    } catch (error) {
      logger.warn("close failed", { conn: this.id, error });
      this.terminate("close frame could not be sent");
    }
  }

  #finish(info: CloseInfo, transportGone = false): void {
    if (this.#readyState === ReadyState.CLOSED) return;
    this.#readyState = ReadyState.CLOSED;
    clearTimeout(this.#closeTimer);
    this.#abort?.abort();
    this.onFinish(info);
    if (transportGone) this.#release();
    this.runCloseHook(info).finally(() => {
      this.#closeInfo = info;
      this.#resolveFinished?.(info);
    });
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.onRelease();
  }
}
