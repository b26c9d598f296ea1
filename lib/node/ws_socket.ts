/**
 * npm `ws`'s server socket as a duplex transport: its events drive the
 * session, its `terminate()` really drops the connection, and a protocol
 * error `ws` answers by itself (1002, 1007, 1009) reaches `onClose` as the
 * code the peer was sent.
 *
 * @module
 */

import type { SessionDriver, Transport } from "@duplex-ws/duplex/transport";
import { LibraryClose } from "@duplex-ws/protocol";
import type { WebSocket } from "./_ws.ts";

/** `ws`'s error codes for what it closes itself, and the close code it sends. */
const WS_ERROR_CLOSE: Record<string, number> = {
  WS_ERR_INVALID_UTF8: 1007,
  WS_ERR_UNSUPPORTED_MESSAGE_LENGTH: 1009,
  WS_ERR_UNSUPPORTED_DATA_PAYLOAD_LENGTH: 1009,
};

/** One `ws` socket as a {@linkcode Transport}. */
export class WsSocket implements Transport {
  /** `websocket`. */
  readonly kind = "websocket";
  readonly #ws: WebSocket;
  /** The close `ws` sent by itself on a protocol error, if any. */
  #failed: { code: number; reason: string } | undefined;
  /** Whether traffic (a message or a pong) came since the last heartbeat. */
  #traffic = true;
  /** Whether the last heartbeat pinged a silent peer. */
  #pinged = false;

  readonly #closeTimeout: number;

  /** Wraps `ws`; its events wait for {@linkcode attach}. */
  constructor(ws: WebSocket, closeTimeout: number) {
    this.#ws = ws;
    this.#closeTimeout = closeTimeout;
    ws.binaryType = "arraybuffer";
  }

  /** Hands the socket's events to the session from now on. */
  attach(driver: SessionDriver): void {
    const ws = this.#ws;
    ws.on("message", (data: ArrayBuffer | Buffer, isBinary: boolean) => {
      this.#traffic = true;
      driver.received(isBinary ? data as ArrayBuffer : data.toString());
    });
    ws.on("pong", () => this.#traffic = true);
    ws.once("close", (code: number, reason: Buffer) => {
      const failed = this.#failed;
      if (failed) driver.closed(failed.code, failed.reason, true);
      else driver.closed(code, reason.toString(), code !== 1006);
    });
    // A protocol error (a message past maxPayload, invalid UTF-8…): ws sends
    // its answer and resumes the socket on the next tick to discard the rest
    // at wire speed. Paused after that, the rest stays in the kernel and the
    // peer until the close handshake completes or the close timeout ends it.
    ws.once("error", (error: Error & { code?: string }) => {
      const code = WS_ERROR_CLOSE[error.code ?? ""] ?? 1002;
      this.#failed = { code, reason: error.message.slice(0, 123) };
      setTimeout(() => ws.pause(), 0);
      setTimeout(() => ws.terminate(), this.#closeTimeout);
    });
  }

  /** Bytes `ws` holds unsent. */
  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  /** Queues a frame. */
  send(data: string | Uint8Array<ArrayBuffer> | ArrayBuffer): void {
    this.#ws.send(data);
  }

  /** Sends a close frame. */
  close(code: number, reason: string): void {
    this.#ws.close(code, reason);
  }

  /** Drops the TCP connection at once. */
  terminate(): void {
    this.#ws.terminate();
  }

  /**
   * Deno's `idleTimeout`, done here, once per half of it: a peer with
   * traffic since the last beat is left alone; a silent one is pinged; one
   * still silent at the next beat is closed as Deno closes it.
   */
  heartbeat(): void {
    if (this.#traffic) {
      this.#traffic = false;
      this.#pinged = false;
    } else if (this.#pinged) {
      const { code, reason } = LibraryClose.PING_TIMEOUT;
      this.#ws.close(code, reason);
    } else {
      this.#pinged = true;
      this.#ws.ping();
    }
  }
}
