/**
 * `TestSocket`: a WebSocket client for tests whose messages, replies,
 * pushes and close are promises that time out naming what was awaited.
 *
 * @module
 */

import { bearerProtocols } from "@duplex-ws/protocol";
import { within } from "./wait.ts";

/** What a {@linkcode TestSocket} saw when it closed. */
export interface ClientClose {
  /** The close code (Deno's client reports 1006 as 0 when TCP dropped). */
  code: number;
  /** The close reason. */
  reason: string;
  /** Whether the close handshake completed. */
  wasClean: boolean;
}

/** Options of a {@linkcode TestSocket}. */
export interface TestSocketOptions {
  /** Subprotocols to offer. */
  protocols?: string[];
  /**
   * A token for the server's `auth` option, sent as the typed client and
   * browsers send it: in the `duplex.bearer.<token>` subprotocol.
   */
  token?: string;
  /**
   * Handshake headers (`Authorization`, `Cookie`…): Deno's client can send
   * them, browsers cannot.
   */
  headers?: HeadersInit;
}

function offered(
  protocols: string | string[] | TestSocketOptions | undefined,
): string | string[] | WebSocketOptions | undefined {
  if (protocols === undefined || typeof protocols === "string") {
    return protocols;
  }
  if (Array.isArray(protocols)) return protocols;
  const list = [...protocols.protocols ?? []];
  const offer = protocols.token === undefined
    ? list
    : [...list, ...bearerProtocols(protocols.token)];
  return protocols.headers
    ? { protocols: offer, headers: protocols.headers }
    : offer;
}

/** A WebSocket client whose messages and close are awaited. */
export class TestSocket {
  /** The underlying WebSocket (Deno's client). */
  readonly ws: WebSocket;
  /** Settles when the socket opens; rejects when it fails to. */
  readonly opened: Promise<void>;
  /** Settles when the socket has closed, from either side. */
  readonly closed: Promise<ClientClose>;
  #queue: (string | ArrayBuffer)[] = [];
  #waiters: ((data: string | ArrayBuffer) => void)[] = [];
  #nextId = 1;
  /** Messages `request` read past while waiting for its reply. */
  #held: string[] = [];

  /**
   * Starts connecting; await {@linkcode opened} (or use {@linkcode TestSocket.open}).
   * @param url A `ws://` URL.
   * @param protocols Subprotocols to offer, or options with a token.
   */
  constructor(url: string, protocols?: string | string[] | TestSocketOptions) {
    this.ws = new WebSocket(url, offered(protocols) as string | string[]);
    this.ws.binaryType = "arraybuffer";
    this.opened = new Promise((resolve, reject) => {
      this.ws.addEventListener("open", () => resolve(), { once: true });
      this.ws.addEventListener(
        "error",
        () => reject(new Error("WebSocket failed to open")),
        {
          once: true,
        },
      );
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) => {
      this.ws.addEventListener(
        "close",
        (event) =>
          resolve({
            code: event.code,
            reason: event.reason,
            wasClean: event.wasClean,
          }),
        {
          once: true,
        },
      );
    });
    this.ws.addEventListener("message", (event) => {
      const waiter = this.#waiters.shift();
      if (waiter) waiter(event.data);
      else this.#queue.push(event.data);
    });
  }

  /** Opens a socket and waits until it is open. */
  static async open(
    url: string,
    protocols?: string | string[] | TestSocketOptions,
  ): Promise<TestSocket> {
    const socket = new TestSocket(url, protocols);
    await within(socket.opened, 5000, `open ${url}`);
    return socket;
  }

  /** The next message, raw; a timeout leaves no waiter behind. */
  nextRaw(ms = 5000): Promise<string | ArrayBuffer> {
    const held = this.#held.shift();
    if (held !== undefined) return Promise.resolve(held);
    const queued = this.#queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return this.#wait(ms, "next message");
  }

  #wait(ms: number, what: string): Promise<string | ArrayBuffer> {
    let waiter!: (data: string | ArrayBuffer) => void;
    const arrived = new Promise<string | ArrayBuffer>((resolve) =>
      waiter = resolve
    );
    this.#waiters.push(waiter);
    return within(arrived, ms, what).catch((error) => {
      this.#waiters = this.#waiters.filter((w) => w !== waiter);
      throw error;
    });
  }

  /** The next text message, parsed as JSON. */
  async next<T = Record<string, unknown>>(ms = 5000): Promise<T> {
    const data = await this.nextRaw(ms);
    if (typeof data !== "string") {
      throw new Error("Expected a text message, got binary");
    }
    return JSON.parse(data) as T;
  }

  /** Sends a JSON value. */
  json(value: unknown): void {
    this.ws.send(JSON.stringify(value));
  }

  /**
   * Sends `{event, data, id}` with a fresh id and returns the reply with
   * that id (typed as `T`, unchecked); other messages that arrive first
   * stay queued for `next`.
   */
  async request<T = Record<string, unknown>>(
    event: string,
    data?: unknown,
  ): Promise<T> {
    const id = this.#nextId++;
    this.json(data === undefined ? { event, id } : { event, data, id });
    const skipped: string[] = [];
    try {
      for (;;) {
        const queued = this.#queue.shift();
        const raw = queued ?? await this.#wait(5000, `reply to ${event}`);
        if (typeof raw !== "string") {
          throw new Error("Expected a text reply, got binary");
        }
        const message = JSON.parse(raw);
        if (message.id === id) return message as T;
        skipped.push(raw);
      }
    } finally {
      this.#held.push(...skipped);
    }
  }

  /**
   * The next push of `event` (that `filter` accepts); other messages that
   * arrive first stay queued for `next`. Rejects after `ms`, naming the
   * event.
   */
  async push<T = unknown>(
    event: string,
    options: { filter?: (data: T) => boolean; timeout?: number } = {},
  ): Promise<T> {
    const { filter = () => true, timeout = 5000 } = options;
    const deadline = Date.now() + timeout;
    const skipped: string[] = [];
    try {
      for (const [i, raw] of this.#held.entries()) {
        const message = JSON.parse(raw);
        if (message.event === event && filter(message.data)) {
          this.#held.splice(i, 1);
          return message.data as T;
        }
      }
      for (;;) {
        const queued = this.#queue.shift();
        const raw = queued ??
          await this.#wait(
            Math.max(1, deadline - Date.now()),
            `push "${event}"`,
          );
        if (typeof raw !== "string") continue;
        const message = JSON.parse(raw);
        if (message.event === event && filter(message.data)) {
          return message.data as T;
        }
        skipped.push(raw);
      }
    } finally {
      this.#held.push(...skipped);
    }
  }

  /**
   * Sends a request and returns its reply's `data`; throws, naming the
   * event and the code, when the reply is an error.
   */
  async expectReply<T = unknown>(event: string, data?: unknown): Promise<T> {
    const reply = await this.request(event, data);
    if (reply.error) {
      const { code, message } = reply.error as {
        code: string;
        message: string;
      };
      throw new Error(`"${event}" answered ${code}: ${message}`);
    }
    return reply.data as T;
  }

  /**
   * Sends a request that must fail with `code`; returns the error's message.
   * Throws, naming the event, when it succeeds or fails otherwise.
   *
   * @example
   * ```ts
   * import { z } from "zod";
   * import { createServer, EventRouter, silentLogger } from "@duplex-ws/duplex";
   * import { startServer, TestSocket } from "@duplex-ws/testing";
   *
   * const router = new EventRouter().on("n", z.number(), (n) => n);
   * const server = startServer(createServer({ router, logger: silentLogger }));
   * const socket = await TestSocket.open(server.wsUrl);
   * await socket.expectError("n", "not a number", "INVALID_DATA");
   * await socket.expectError("nope", 1, "UNKNOWN_EVENT");
   * await socket.close();
   * await server.close();
   * ```
   */
  async expectError(
    event: string,
    data: unknown,
    code: string,
  ): Promise<string> {
    const reply = await this.request(event, data);
    const error = reply.error as { code: string; message: string } | undefined;
    if (error?.code !== code) {
      throw new Error(
        `"${event}" should have answered ${code}, got ${
          JSON.stringify(error ?? { data: reply.data })
        }`,
      );
    }
    return error.message;
  }

  /**
   * Waits for the server to close the connection with `code`; returns the
   * close. Throws, naming both codes, for another one.
   */
  async expectClose(code: number, ms = 5000): Promise<ClientClose> {
    const close = await this.waitClosed(ms);
    if (close.code !== code) {
      throw new Error(
        `expected close ${code}, got ${close.code} "${close.reason}"`,
      );
    }
    return close;
  }

  /** Waits for the server to close the connection. */
  waitClosed(ms = 5000): Promise<ClientClose> {
    return within(this.closed, ms, "server close");
  }

  /** Closes from the client side and waits for the close event. */
  async close(code?: number, reason?: string): Promise<ClientClose> {
    if (this.ws.readyState < WebSocket.CLOSING) this.ws.close(code, reason);
    return await within(this.closed, 5000, "client close");
  }
}
