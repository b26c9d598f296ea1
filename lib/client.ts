/**
 * The typed duplex client, for browsers and Deno: it shares the server's
 * event types (`typeof router`), reconnects with exponential backoff and
 * jitter, replays its joins after a reconnect, keeps a bounded outbox while
 * offline, and surfaces close codes. Only web APIs: no Deno namespace.
 *
 * @example
 * ```ts ignore
 * import { DuplexClient } from "./client.ts";
 * import type { ExampleRouter } from "../routes/events.ts";
 *
 * const client = new DuplexClient<ExampleRouter>({ url: "ws://localhost:8000/" });
 * client.on("chat.message", (m) => console.log(m.from, m.text));
 * await client.join("chat.join", { room: "lobby" });
 * await client.request("chat.say", { room: "lobby", text: "hi" });
 * ```
 *
 * @module
 */

/** A router type, seen from the client: its client events and its pushes. */
interface RouterShape {
  readonly events: Record<string, { data: unknown; reply: unknown }>;
  readonly pushes: Record<string, unknown>;
}

/** Client-to-server events of a router type. */
export type ClientEvents<R extends RouterShape> = R["events"];

/** Server-to-client events of a router type (`EventRouter<State, Push>` → `Push`). */
export type ServerPushes<R extends RouterShape> = R["pushes"];

/** The connection's state, as a page shows it. */
export type ClientState = "connecting" | "open" | "reconnecting" | "closed";

/** Why a request failed. */
export class RequestError extends Error {
  /**
   * The server's error code (`INVALID_DATA`, `NOT_A_MEMBER`…), or the
   * client's: `TIMEOUT`, `CONNECTION_LOST` (sent, but the connection dropped
   * before the reply: it may or may not have been handled), `OUTBOX_FULL`,
   * `CLOSED`.
   */
  readonly code: string;

  /** @param code The error code. @param message What happened. */
  constructor(code: string, message: string) {
    super(message);
    this.name = "RequestError";
    this.code = code;
  }
}

/** Options of {@linkcode DuplexClient}. */
export interface ClientOptions {
  /** The server's WebSocket URL, or a function giving it (called on every connect, for fresh tokens). */
  url: string | (() => string);
  /**
   * Subprotocols to offer.
   * @default {[]}
   */
  protocols?: string[];
  /**
   * Milliseconds a request waits for its reply.
   * @default {10000}
   */
  requestTimeout?: number;
  /**
   * First reconnection delay in milliseconds; doubles on each failure.
   * @default {250}
   */
  minReconnectDelay?: number;
  /**
   * Longest reconnection delay in milliseconds.
   * @default {10000}
   */
  maxReconnectDelay?: number;
  /**
   * Messages kept while offline; when full, new ones are refused
   * (`emit` returns false, `request` rejects with `OUTBOX_FULL`).
   * @default {100}
   */
  outboxLimit?: number;
  /**
   * Whether to reconnect after the server closed with this code. By
   * default: not after 1000 (done), 1008 (policy) or 4000–4999 (the
   * application's own reasons); yes after anything else (1001 shutdown,
   * 1006 drop, 1011, 1012, 1013…).
   */
  shouldReconnect?: (code: number) => boolean;
  /**
   * The WebSocket constructor.
   * @default {globalThis.WebSocket}
   */
  WebSocket?: typeof WebSocket;
}

type Handler = (data: never) => void;

interface Pending {
  resolve: (data: unknown) => void;
  reject: (error: RequestError) => void;
  timer: ReturnType<typeof setTimeout>;
  /** Whether it reached the socket (else it still waits in the outbox). */
  sent: boolean;
}

interface Queued {
  text: string;
  /** The request id, for requests. */
  id?: number;
}

/** The default reconnection policy. */
export function defaultShouldReconnect(code: number): boolean {
  return code !== 1000 && code !== 1008 && !(code >= 4000 && code <= 4999);
}

/**
 * A typed client for a duplex server.
 *
 * @typeParam R The server's router type (`typeof router`).
 */
export class DuplexClient<R extends RouterShape> {
  #options:
    & Required<
      Omit<ClientOptions, "protocols" | "shouldReconnect" | "WebSocket">
    >
    & {
      protocols: string[];
      shouldReconnect: (code: number) => boolean;
      WebSocket: typeof WebSocket;
    };
  #ws: WebSocket | undefined;
  #state: ClientState = "connecting";
  #stateListeners = new Set<(state: ClientState, code?: number) => void>();
  #handlers = new Map<string, Set<Handler>>();
  #pending = new Map<number, Pending>();
  #outbox: Queued[] = [];
  #joins = new Map<string, { event: string; data: unknown }>();
  #nextId = 1;
  #attempt = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  #closedByUser = false;
  #lastClose: { code: number; reason: string } | undefined;

  /** Connects at once. */
  constructor(options: ClientOptions) {
    this.#options = {
      requestTimeout: 10_000,
      minReconnectDelay: 250,
      maxReconnectDelay: 10_000,
      outboxLimit: 100,
      protocols: [],
      shouldReconnect: defaultShouldReconnect,
      WebSocket: globalThis.WebSocket,
      ...options,
    };
    this.#connect();
  }

  /** connecting, open, reconnecting or closed. */
  get state(): ClientState {
    return this.#state;
  }

  /** The code and reason of the last close, if any. */
  get lastClose(): { code: number; reason: string } | undefined {
    return this.#lastClose;
  }

  /** Messages waiting in the outbox. */
  get queued(): number {
    return this.#outbox.length;
  }

  /** Calls `listener` on every state change; returns a function that stops it. */
  onState(listener: (state: ClientState, code?: number) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  /** Calls `handler` with every push of `event`; returns a function that stops it. */
  on<E extends keyof ServerPushes<R> & string>(
    event: E,
    handler: (data: ServerPushes<R>[E]) => void,
  ): () => void;
  /** Error pushes (`{code, message}`) for messages sent without an id. */
  on(
    event: "error",
    handler: (data: { code: string; message: string }) => void,
  ): () => void;
  on(event: string, handler: (data: never) => void): () => void {
    let set = this.#handlers.get(event);
    if (!set) this.#handlers.set(event, set = new Set());
    set.add(handler);
    return () => set.delete(handler);
  }

  /**
   * Sends an event without asking for a reply. Offline, it waits in the outbox.
   * @returns `false` when the outbox is full or the client is closed.
   */
  emit<E extends keyof ClientEvents<R> & string>(
    event: E,
    data: ClientEvents<R>[E]["data"],
  ): boolean {
    const text = JSON.stringify(
      data === undefined ? { event } : { event, data },
    );
    return this.#send(text) !== false;
  }

  /**
   * Sends an event and resolves with its reply.
   * @throws {RequestError} on an error envelope, a timeout, a lost connection or a full outbox.
   */
  request<E extends keyof ClientEvents<R> & string>(
    event: E,
    data: ClientEvents<R>[E]["data"],
    options: { timeout?: number } = {},
  ): Promise<ClientEvents<R>[E]["reply"]> {
    const id = this.#nextId++;
    const message = data === undefined ? { event, id } : { event, data, id };
    return new Promise((resolve, reject) => {
      const sent = this.#send(JSON.stringify(message), id);
      if (sent === false) {
        reject(
          new RequestError(
            this.#state === "closed" ? "CLOSED" : "OUTBOX_FULL",
            `Cannot send "${event}": ${
              this.#state === "closed" ? "client closed" : "outbox full"
            }`,
          ),
        );
        return;
      }
      const timeout = options.timeout ?? this.#options.requestTimeout;
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(
          new RequestError(
            "TIMEOUT",
            `No reply to "${event}" within ${timeout} ms`,
          ),
        );
      }, timeout);
      this.#pending.set(id, {
        resolve: resolve as (data: unknown) => void,
        reject,
        timer,
        sent: sent === "sent",
      });
    });
  }

  /**
   * Sends a joining request (say `chat.join {room}`) now and again after
   * every reconnect, until `leave` forgets it.
   */
  join<E extends keyof ClientEvents<R> & string>(
    event: E,
    data: ClientEvents<R>[E]["data"],
  ): Promise<ClientEvents<R>[E]["reply"]> {
    this.#joins.set(joinKey(event, data), { event, data });
    return this.request(event, data);
  }

  /** Stops replaying a join after reconnects (send your own leave event too). */
  leave<E extends keyof ClientEvents<R> & string>(
    event: E,
    data: ClientEvents<R>[E]["data"],
  ): void {
    this.#joins.delete(joinKey(event, data));
  }

  /** Closes for good (1000 by default): no reconnection, pending requests rejected. */
  close(code = 1000, reason = ""): void {
    this.#closedByUser = true;
    clearTimeout(this.#reconnectTimer);
    this.#outbox.length = 0;
    this.#failPending("CLOSED", "Client closed");
    if (this.#ws && this.#ws.readyState < WebSocket.CLOSING) {
      this.#ws.close(code, reason);
    } else this.#setState("closed", code);
  }

  #connect(): void {
    const url = typeof this.#options.url === "function"
      ? this.#options.url()
      : this.#options.url;
    const ws = new this.#options.WebSocket(url, this.#options.protocols);
    this.#ws = ws;
    ws.onopen = () => {
      this.#attempt = 0;
      this.#setState("open");
      for (const { event, data } of this.#joins.values()) {
        this.request(event as keyof ClientEvents<R> & string, data as never)
          .catch(() => {});
      }
      for (const { text, id } of this.#outbox.splice(0)) {
        ws.send(text);
        const pending = id === undefined ? undefined : this.#pending.get(id);
        if (pending) pending.sent = true;
      }
    };
    ws.onmessage = (event) => {
      if (typeof event.data === "string") this.#receive(event.data);
    };
    ws.onclose = (event) => {
      // Deno's client reports a connection that never opened, or dropped, as 0.
      const code = event.code || 1006;
      this.#lastClose = { code, reason: event.reason };
      if (this.#closedByUser || !this.#options.shouldReconnect(code)) {
        this.#outbox.length = 0;
        this.#failPending("CLOSED", `Connection closed (${code})`);
        this.#setState("closed", code);
        return;
      }
      // Requests still in the outbox were never sent: they wait for the next connection.
      this.#failPending(
        "CONNECTION_LOST",
        `Connection closed (${code}) before the reply`,
        (pending) => pending.sent,
      );
      this.#setState("reconnecting", code);
      this.#reconnectTimer = setTimeout(() => this.#connect(), this.#delay());
    };
  }

  /** Exponential backoff with full jitter between half and all of the step. */
  #delay(): number {
    const { minReconnectDelay, maxReconnectDelay } = this.#options;
    const step = Math.min(
      maxReconnectDelay,
      minReconnectDelay * 2 ** this.#attempt++,
    );
    return step / 2 + Math.random() * (step / 2);
  }

  #send(text: string, id?: number): "sent" | "queued" | false {
    if (this.#state === "closed") return false;
    if (this.#ws?.readyState === WebSocket.OPEN) {
      this.#ws.send(text);
      return "sent";
    }
    if (this.#outbox.length >= this.#options.outboxLimit) return false;
    this.#outbox.push({ text, id });
    return "queued";
  }

  #receive(text: string): void {
    let message: {
      id?: number;
      data?: unknown;
      error?: { code: string; message: string };
      event?: string;
    };
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (typeof message.id === "number" && this.#pending.has(message.id)) {
      const pending = this.#pending.get(message.id)!;
      this.#pending.delete(message.id);
      clearTimeout(pending.timer);
      if (message.error) {
        pending.reject(
          new RequestError(message.error.code, message.error.message),
        );
      } else pending.resolve(message.data);
      return;
    }
    if (typeof message.event === "string") {
      for (const handler of this.#handlers.get(message.event) ?? []) {
        (handler as (data: unknown) => void)(message.data);
      }
    }
  }

  #failPending(
    code: string,
    reason: string,
    which: (pending: Pending) => boolean = () => true,
  ): void {
    for (const [id, pending] of this.#pending) {
      if (!which(pending)) continue;
      clearTimeout(pending.timer);
      pending.reject(new RequestError(code, reason));
      this.#pending.delete(id);
    }
  }

  #setState(state: ClientState, code?: number): void {
    if (this.#state === state) return;
    this.#state = state;
    for (const listener of this.#stateListeners) listener(state, code);
  }
}

function joinKey(event: string, data: unknown): string {
  return `${event}\u0000${JSON.stringify(data ?? null)}`;
}
