/**
 * The client's messages to the server: sent at once when the connection is
 * ready, kept in a bounded outbox while it is not (offline, or rejoining its
 * topics), and for requests the wire's pending table (`TIMEOUT`,
 * `CONNECTION_LOST`), with a resend on the next connection for those that
 * asked for one.
 *
 * @module
 */

import {
  ClientErrorCode,
  encodeEvent,
  type MessageId,
  PendingTable,
  type WireError,
} from "@duplex-ws/protocol";
import { RequestError } from "./errors.ts";

/** Options of one request. */
export interface RequestOptions {
  /**
   * Milliseconds to wait for the reply.
   * @default {the client's requestTimeout}
   */
  timeout?: number;
  /**
   * When the connection is lost before the reply: send the request again on
   * the next connection, once the client has joined its topics again,
   * instead of rejecting with `CONNECTION_LOST`. The request then carries a
   * random `key` (PROTOCOL.md §2.5): the server runs its handler once and
   * answers a resend with the first run's reply, on any node.
   * @default {false}
   */
  resend?: boolean;
  /**
   * The request's idempotency key (1–128 characters): the same key sent
   * again gets the first reply while the handler runs once. Make it
   * unguessable.
   * @default {a random UUID with `resend`, else none}
   */
  key?: string;
}

/** Sends a request and resolves with its reply; `now` skips the outbox. */
export type Call = (
  event: string,
  data: unknown,
  options: RequestOptions,
  now: boolean,
) => Promise<unknown>;

/** What the requests need of the connection. */
export interface RequestPort {
  /** Whether a message may go out now: open, and not rejoining. */
  ready(): boolean;
  /** Whether the connection is open (joins go out while rejoining). */
  open(): boolean;
  /** Whether the client has closed for good. */
  closed(): boolean;
  /** Sends a text frame. */
  write(text: string): void;
}

/** A request's text, kept to be sent again, and where it is. */
interface Sent {
  readonly text: string;
  /** Whether it reached the socket (else it waits in the outbox). */
  sent: boolean;
  /** Whether it is sent again after a lost connection. */
  readonly resend: boolean;
}

/** The client's outbox and the requests awaiting replies. */
export class Requests {
  readonly #table = new PendingTable<Sent>(
    (code, message) => new RequestError(code, message),
  );
  readonly #outbox: { text: string; id?: number }[] = [];
  readonly #port: RequestPort;
  readonly #limit: number;
  readonly #timeout: number;

  /**
   * @param port The connection.
   * @param limit Messages the outbox holds at most.
   * @param timeout Milliseconds a request waits for its reply by default.
   */
  constructor(port: RequestPort, limit: number, timeout: number) {
    this.#port = port;
    this.#limit = limit;
    this.#timeout = timeout;
  }

  /** Messages waiting in the outbox. */
  get queued(): number {
    return this.#outbox.length;
  }

  /** Sends now, or queues while offline or rejoining; `false` when it can do neither. */
  send(text: string, id?: number): "sent" | "queued" | false {
    const port = this.#port;
    if (port.closed()) return false;
    if (port.ready()) {
      port.write(text);
      return "sent";
    }
    if (this.#outbox.length >= this.#limit) return false;
    this.#outbox.push({ text, id });
    return "queued";
  }

  /**
   * Sends a request and resolves with its reply; `now` skips the outbox
   * (joins and refreshes, which go before everything else).
   */
  call(
    event: string,
    data: unknown,
    options: RequestOptions,
    now = false,
  ): Promise<unknown> {
    const id = this.#table.nextId();
    const key = options.key ??
      (options.resend ? crypto.randomUUID() : undefined);
    const text = encodeEvent(event, data, id, key);
    const port = this.#port;
    let sent: "sent" | "queued" | false;
    if (now && port.open()) {
      port.write(text);
      sent = "sent";
    } else sent = this.send(text, id);
    if (sent === false) {
      const code = port.closed()
        ? ClientErrorCode.CLOSED
        : ClientErrorCode.OUTBOX_FULL;
      const why = port.closed() ? "client closed" : "outbox full";
      return Promise.reject(
        new RequestError(code, `Cannot send "${event}": ${why}`),
      );
    }
    const resend = options.resend ?? false;
    const timeout = options.timeout ?? this.#timeout;
    return this.#table.wait(id, event, timeout, {
      text,
      sent: sent === "sent",
      resend,
    });
  }

  /** Settles the request a reply (or an error reply) answers. */
  settle(id: MessageId, data: unknown, error?: WireError): void {
    if (typeof id !== "number") return;
    const pending = this.#table.settle(id);
    if (pending === undefined) return;
    if (error) {
      pending.reject(
        new RequestError(
          error.code,
          error.message,
          (error as { data?: unknown }).data,
        ),
      );
    } else pending.resolve(data);
  }

  /**
   * The connection is ready again: requests that asked to be resent go
   * first, then the outbox, in the order they were made.
   */
  flush(): void {
    const port = this.#port;
    const queued = new Set(this.#outbox.map((q) => q.id));
    for (const pending of this.#table.values()) {
      if (pending.meta.sent || queued.has(pending.id)) continue;
      port.write(pending.meta.text);
      pending.meta.sent = true;
    }
    for (const { text, id } of this.#outbox.splice(0)) {
      port.write(text);
      const pending = id === undefined ? undefined : this.#table.get(id);
      if (pending) pending.meta.sent = true;
    }
  }

  /**
   * The connection dropped with `code`: requests sent on it fail with
   * `CONNECTION_LOST`, except those that asked to be resent; requests
   * still in the outbox wait for the next connection.
   */
  lost(code: number): void {
    for (const pending of this.#table.values()) {
      if (pending.meta.resend) pending.meta.sent = false;
    }
    this.#table.rejectAll(
      ClientErrorCode.CONNECTION_LOST,
      () => `Connection closed (${code}) before the reply`,
      (pending) => pending.meta.sent,
    );
  }

  /** The client closed for good: everything fails with `code`, the outbox is emptied. */
  end(code: string, reason: string): void {
    this.#outbox.length = 0;
    this.#table.rejectAll(code, () => reason);
  }
}
