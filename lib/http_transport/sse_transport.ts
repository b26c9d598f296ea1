/**
 * The downstream of the HTTP transport: a session's frames as a
 * Server-Sent Events stream (PROTOCOL.md §7). Each frame is one event: a
 * text frame's `data` is the envelope's JSON, a binary frame is `event:
 * binary` with base64 `data`; each has `id:` set to the session's sequence
 * number. A comment line every `heartbeat` ms keeps proxies from closing an
 * idle stream; a client that sends nothing (not even its empty keepalive
 * `POST`) for `idle` ms is gone, and closed as a socket that answers no
 * ping is. Closing sends `event: close` with `{code, reason}`, then ends
 * the stream.
 *
 * @module
 */

import { LibraryClose } from "@duplex-ws/protocol";
import type { SessionDriver, Transport } from "@duplex-ws/duplex/transport";

const encoder = new TextEncoder();

/** Options of {@linkcode SseTransport}. */
export interface SseOptions {
  /** Milliseconds between comment lines (0: none). */
  heartbeat: number;
  /**
   * Milliseconds without a `POST` after which the client is gone.
   * @default {0: never}
   */
  idle?: number;
  /**
   * More response headers (CORS…).
   * @default {none}
   */
  headers?: Record<string, string>;
}

/** One SSE stream as a {@linkcode Transport}. */
export class SseTransport implements Transport {
  /** `sse`. */
  readonly kind = "sse";
  /** The response whose body is the stream. */
  readonly response: Response;
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #driver: SessionDriver | undefined;
  #sequence = 0;
  #open = true;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  /** When the client last sent a `POST` here. */
  #heard = performance.now();

  /** Opens the stream (see {@linkcode SseOptions}). */
  constructor(options: SseOptions) {
    const { heartbeat, idle = 0, headers = {} } = options;
    const stream = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      // The client went away (or the proxy cut it): no close event came.
      cancel: () => this.#ended(1001, "client went away", false),
      // Counted in bytes: `desiredSize` is then minus what is unread.
    }, new ByteLengthQueuingStrategy({ highWaterMark: 0 }) as never);
    this.response = new Response(stream, {
      headers: {
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        "x-accel-buffering": "no",
        ...headers,
      },
    });
    if (heartbeat > 0) {
      this.#heartbeat = setInterval(() => {
        if (idle > 0 && performance.now() - this.#heard > idle) {
          const { code, reason } = LibraryClose.PING_TIMEOUT;
          return this.close(code, reason);
        }
        this.#write(": ping\n\n");
      }, heartbeat);
    }
  }

  /** A `POST` of the client's: its lines go to the session (none: a keepalive). */
  posted(lines: readonly unknown[]): void {
    this.#heard = performance.now();
    for (const line of lines) {
      if (typeof line === "string") this.#driver?.received(line);
    }
  }

  /** Hands the stream's end to the session. */
  attach(driver: SessionDriver): void {
    this.#driver = driver;
  }

  /** Bytes queued that the client has not read yet. */
  get bufferedAmount(): number {
    return this.#open ? Math.max(0, -(this.#controller.desiredSize ?? 0)) : 0;
  }

  /** Queues a frame as one event. */
  send(data: string | Uint8Array<ArrayBuffer> | ArrayBuffer): void {
    const id = ++this.#sequence;
    if (typeof data === "string") {
      // An envelope is one line of JSON: `data:` needs no splitting.
      this.#write(`id: ${id}\ndata: ${data}\n\n`);
    } else {
      const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
      this.#write(`id: ${id}\nevent: binary\ndata: ${base64(bytes)}\n\n`);
    }
  }

  /** Sends `event: close` with the code and reason, then ends the stream. */
  close(code: number, reason: string): void {
    this.#write(`event: close\ndata: ${JSON.stringify({ code, reason })}\n\n`);
    this.#ended(code, reason, true);
  }

  /** Ends the stream at once. */
  terminate(): void {
    this.#ended(1006, "", false);
  }

  #write(text: string): void {
    if (!this.#open) return;
    try {
      this.#controller.enqueue(encoder.encode(text));
    } catch {
      this.#ended(1006, "", false);
    }
  }

  /** Ends once: stops the heartbeat, closes the stream, tells the session. */
  #ended(code: number, reason: string, wasClean: boolean): void {
    if (!this.#open) return;
    this.#open = false;
    clearInterval(this.#heartbeat);
    try {
      this.#controller.close();
    } catch {
      // cancelled by the client already
    }
    // After the caller's own step, as a socket's close event comes.
    queueMicrotask(() => this.#driver?.closed(code, reason, wasClean));
  }
}

function base64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}
