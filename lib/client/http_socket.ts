/**
 * The HTTP transport as the client sees it (PROTOCOL.md §7), shaped like
 * the part of `WebSocket` the link uses, so that nothing above it knows
 * which one it has: a `GET` with `Accept: text/event-stream` read with
 * `fetch` (so it can carry `Authorization`), whose first event names the
 * session; messages go up as `POST`s with `Duplex-Session`, one at a time,
 * each carrying the messages queued meanwhile, one per line, as many as
 * fit in the body the server takes (`maxBody` in its first event).
 *
 * @module
 */

import {
  SESSION_HEADER,
  SSE_BINARY,
  SSE_CLOSE,
  SseReader,
  STREAM_WELCOME,
  utf8Length,
} from "@duplex-ws/protocol";

/** `WebSocket`'s readyState values. */
const CONNECTING = 0, OPEN = 1, CLOSING = 2, CLOSED = 3;
/** Times a `POST` is sent while the server answers that it is busy. */
const POST_ATTEMPTS = 4;
/** The bytes of a `POST`'s body when the server does not say (its default `maxMessageSize`). */
const MAX_BODY = 1_048_576;
/** Milliseconds between the stream's comment lines when the server does not say. */
const HEARTBEAT = 15_000;
/** Heartbeats a stream may miss before it counts as gone (a proxy that cut it silently). */
const MISSED_HEARTBEATS = 3;

/** The stream and its `POST`s, as a `WebSocket`-like object. */
export class HttpStreamSocket {
  readyState = CONNECTING;
  binaryType = "arraybuffer";
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: string | ArrayBuffer }) => void) | null = null;
  onclose:
    | ((event: { code: number; reason: string; wasClean: boolean }) => void)
    | null = null;
  readonly #url: string;
  readonly #headers: Record<string, string>;
  readonly #abort = new AbortController();
  #session: string | undefined;
  #maxBody = MAX_BODY;
  /** When the stream last brought anything, and the watch on it. */
  #heard = 0;
  #watch: ReturnType<typeof setInterval> | undefined;
  #queue: string[] = [];
  #posting = false;

  /**
   * Opens the stream.
   * @param url The WebSocket URL (`ws:`/`wss:` become `http:`/`https:`).
   * @param token A token for `Authorization: Bearer`, if any.
   */
  constructor(url: string, token?: string) {
    this.#url = url.replace(/^ws/, "http");
    this.#headers = token ? { authorization: `Bearer ${token}` } : {};
    this.#read().catch(() => this.#closed(1006, "", false));
  }

  /** Sends a text message (binary is not carried up). */
  send(data: string | ArrayBuffer | Uint8Array<ArrayBuffer>): void {
    if (this.readyState !== OPEN) throw new Error("not open");
    if (typeof data !== "string") throw new TypeError("text only over HTTP");
    this.#queue.push(data);
    void this.#post();
  }

  /** Ends the stream: the server sees the client go. */
  close(code = 1000, reason = ""): void {
    if (this.readyState >= CLOSING) return;
    this.readyState = CLOSING;
    this.#abort.abort();
    this.#closed(code, reason, true);
  }

  async #read(): Promise<void> {
    const response = await fetch(this.#url, {
      headers: { accept: "text/event-stream", ...this.#headers },
      signal: this.#abort.signal,
    });
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      return this.#closed(1006, `HTTP ${response.status}`, false);
    }
    const reader = new SseReader();
    const text = response.body.pipeThrough(new TextDecoderStream())
      .getReader();
    for (let read = await text.read(); !read.done; read = await text.read()) {
      this.#heard = Date.now();
      for (const event of reader.feed(read.value)) {
        if (this.readyState >= CLOSING) return void text.cancel();
        this.#event(event.event, event.data);
      }
    }
    this.#closed(1006, "", false);
  }

  #event(kind: string, data: string): void {
    if (kind === SSE_CLOSE) {
      const { code = 1005, reason = "" } = JSON.parse(data);
      return this.#closed(code, reason, true);
    }
    if (kind === SSE_BINARY) {
      const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
      return this.onmessage?.({ data: bytes.buffer });
    }
    if (this.#session === undefined) {
      // The first event is the transport's own: it names the session.
      const first = JSON.parse(data);
      if (first?.event !== STREAM_WELCOME) throw new Error("no session");
      this.#session = String(first.data.session);
      this.#maxBody = Number(first.data.maxBody) || MAX_BODY;
      this.#watchHeartbeats(Number(first.data.heartbeat) || HEARTBEAT);
      this.readyState = OPEN;
      return this.onopen?.();
    }
    this.onmessage?.({ data });
  }

  /** Sends what is queued, one `POST` at a time, so the order holds. */
  async #post(): Promise<void> {
    if (this.#posting) return;
    this.#posting = true;
    try {
      while (this.#queue.length > 0 && this.readyState === OPEN) {
        const status = await this.#send(this.#batch());
        if (status !== 202) this.#closed(1006, "session lost", false);
      }
    } catch {
      this.#closed(1006, "", false);
    } finally {
      this.#posting = false;
    }
  }

  /**
   * The next `POST`'s body: the queued messages that fit in `maxBody`
   * together, one per line (the first goes even when it alone does not:
   * the server then answers 413, as a socket closes 1009).
   */
  #batch(): string {
    let count = 0;
    for (let bytes = -1; count < this.#queue.length; count++) {
      bytes += 1 + utf8Length(this.#queue[count]); // and its newline
      if (bytes > this.#maxBody && count > 0) break;
    }
    return this.#queue.splice(0, count).join("\n");
  }

  /**
   * One `POST` of `body`: its status. A 429 or 503 (the server is busy) is
   * sent again after its `Retry-After`, a few times, before it counts.
   */
  async #send(body: string): Promise<number> {
    for (let attempt = 1;; attempt++) {
      const response = await fetch(this.#url, {
        method: "POST",
        headers: { [SESSION_HEADER]: this.#session!, ...this.#headers },
        body,
        signal: this.#abort.signal,
      });
      await response.body?.cancel();
      const busy = response.status === 429 || response.status === 503;
      if (!busy || attempt === POST_ATTEMPTS) return response.status;
      const seconds = Number(response.headers.get("retry-after")) || 1;
      await new Promise((resolve) =>
        setTimeout(resolve, Math.min(seconds, 10) * 1000)
      );
      if (this.readyState !== OPEN) return response.status;
    }
  }

  /**
   * A stream that brings nothing, not even its comment lines, for a few
   * heartbeats is gone; with nothing to send, an empty line goes up once a
   * heartbeat, so the server hears this client is still there.
   */
  #watchHeartbeats(heartbeat: number): void {
    this.#watch = setInterval(() => {
      if (Date.now() - this.#heard > heartbeat * MISSED_HEARTBEATS) {
        this.#closed(1006, "the stream went silent", false);
      } else if (!this.#posting && this.#queue.length === 0) {
        this.#queue.push("");
        void this.#post();
      }
    }, heartbeat);
  }

  #closed(code: number, reason: string, wasClean: boolean): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    clearInterval(this.#watch);
    this.#abort.abort();
    this.onclose?.({ code, reason, wasClean });
  }
}
