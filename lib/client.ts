/**
 * The typed duplex client (the `./client` entry), for browsers and Deno: it
 * shares the server's event types (`typeof router`) and its wire module,
 * reconnects with exponential backoff and jitter, replays its joins after a
 * reconnect, keeps a bounded outbox while offline, and surfaces close codes.
 * Only web APIs: no Deno namespace, no server code.
 *
 * @example
 * ```ts ignore
 * import { DuplexClient } from "@duplex-ws/duplex/client";
 * import type { ExampleRouter } from "./routes/events.ts";
 *
 * const client = new DuplexClient<ExampleRouter>({ url: "ws://localhost:8000/" });
 * client.on("chat.message", (m) => console.log(m.from, m.text));
 * await client.join("chat.join", { room: "lobby" });
 * await client.request("chat.say", { room: "lobby", text: "hi" });
 * ```
 *
 * @module
 */

import {
  CloseCode,
  normalizeCloseInfo,
  shouldReconnect as defaultShouldReconnect,
} from "./protocol/close_code.ts";
import { encodeEvent, parseServerMessage } from "./protocol/envelope.ts";
import { ClientErrorCode } from "./protocol/error_code.ts";
import {
  applyPresence,
  type LibraryPushes,
  PRESENCE_DIFF,
  PRESENCE_STATE,
  type PresenceDiff,
  type PresenceState,
} from "./protocol/presence.ts";

export { ClientErrorCode } from "./protocol/error_code.ts";
export { shouldReconnect } from "./protocol/close_code.ts";
export type {
  LibraryPushes,
  PresenceDiff,
  PresenceMembers,
  PresenceState,
} from "./protocol/presence.ts";

/**
 * A router type, seen from the client: its events and its pushes. An
 * `EventRouter` chain's type (`typeof router`) has this shape.
 */
export interface RouterShape {
  /** Client-to-server events: name → `{ data, reply }`. */
  readonly events: Record<string, { data: unknown; reply: unknown }>;
  /** Pushes (server-to-client events): name → payload. */
  readonly pushes: Record<string, unknown>;
}

/** The events (client-to-server) of a router type. */
export type RouterEvents<R extends RouterShape> = R["events"];

/** The pushes (server-to-client events) of a router type, with the library's own. */
export type RouterPushes<R extends RouterShape> = R["pushes"] & LibraryPushes;

/** The connection's state, as a page shows it. */
export type ClientState = "connecting" | "open" | "reconnecting" | "closed";

/** Why a request failed. */
export class RequestError extends Error {
  /**
   * The server's error code (`INVALID_DATA`, `NOT_A_MEMBER`…), or one of
   * the client's own ({@linkcode ClientErrorCode}: `TIMEOUT`,
   * `CONNECTION_LOST`, `OUTBOX_FULL`, `CLOSED`).
   */
  readonly code: string;

  /**
   * Makes the error.
   * @param code The error code.
   * @param message What happened.
   */
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
   * Whether to reconnect after the server closed with this code.
   * @default {shouldReconnect: not after 1000, 1008 or 4000–4999; yes after anything else}
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
  /** Topic → who is in it, from presence pushes. */
  #presence = new Map<string, Map<string, unknown>>();
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
  on<E extends keyof RouterPushes<R> & string>(
    event: E,
    handler: (data: RouterPushes<R>[E]) => void,
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
  emit<E extends keyof RouterEvents<R> & string>(
    event: E,
    data: RouterEvents<R>[E]["data"],
  ): boolean {
    return this.#send(encodeEvent(event, data)) !== false;
  }

  /**
   * Sends an event and resolves with its reply.
   * @throws {RequestError} on an error envelope, a timeout, a lost connection or a full outbox.
   */
  request<E extends keyof RouterEvents<R> & string>(
    event: E,
    data: RouterEvents<R>[E]["data"],
    options: { timeout?: number } = {},
  ): Promise<RouterEvents<R>[E]["reply"]> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const sent = this.#send(encodeEvent(event, data, id), id);
      if (sent === false) {
        const closed = this.#state === "closed";
        reject(
          new RequestError(
            closed ? ClientErrorCode.CLOSED : ClientErrorCode.OUTBOX_FULL,
            `Cannot send "${event}": ${
              closed ? "client closed" : "outbox full"
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
            ClientErrorCode.TIMEOUT,
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
  join<E extends keyof RouterEvents<R> & string>(
    event: E,
    data: RouterEvents<R>[E]["data"],
  ): Promise<RouterEvents<R>[E]["reply"]> {
    this.#joins.set(joinKey(event, data), { event, data });
    return this.request(event, data);
  }

  /**
   * Who is in a topic with presence, as the server last told: presence key
   * → metadata (empty for a topic without presence, or before the
   * snapshot). Kept up to date from `presence.state` and `presence.diff`.
   */
  members(topic: string): ReadonlyMap<string, unknown> {
    return this.#presence.get(topic) ?? new Map();
  }

  /** Stops replaying a join after reconnects (send your own leave event too). */
  leave<E extends keyof RouterEvents<R> & string>(
    event: E,
    data: RouterEvents<R>[E]["data"],
  ): void {
    this.#joins.delete(joinKey(event, data));
  }

  /** Closes for good (1000 by default): no reconnection, pending requests rejected. */
  close(code: number = CloseCode.NORMAL, reason = ""): void {
    this.#closedByUser = true;
    clearTimeout(this.#reconnectTimer);
    this.#outbox.length = 0;
    this.#failPending(ClientErrorCode.CLOSED, "Client closed");
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
        this.request(event as keyof RouterEvents<R> & string, data as never)
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
      const { code, reason } = normalizeCloseInfo(
        event.code,
        event.reason,
        event.wasClean,
      );
      this.#lastClose = { code, reason };
      if (this.#closedByUser || !this.#options.shouldReconnect(code)) {
        this.#outbox.length = 0;
        this.#failPending(
          ClientErrorCode.CLOSED,
          `Connection closed (${code})`,
        );
        this.#setState("closed", code);
        return;
      }
      // Requests still in the outbox were never sent: they wait for the next connection.
      this.#failPending(
        ClientErrorCode.CONNECTION_LOST,
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
    const message = parseServerMessage(text);
    if (message === undefined) return;
    if (message.kind === "push") {
      if (message.event === PRESENCE_STATE || message.event === PRESENCE_DIFF) {
        this.#applyPresence(message.data as PresenceState | PresenceDiff);
      }
      for (const handler of this.#handlers.get(message.event) ?? []) {
        (handler as (data: unknown) => void)(message.data);
      }
      return;
    }
    const pending = typeof message.id === "number"
      ? this.#pending.get(message.id)
      : undefined;
    if (pending === undefined) return;
    this.#pending.delete(message.id as number);
    clearTimeout(pending.timer);
    if (message.kind === "error") {
      pending.reject(
        new RequestError(message.error.code, message.error.message),
      );
    } else pending.resolve(message.data);
  }

  #applyPresence(push: PresenceState | PresenceDiff): void {
    if (typeof push?.topic !== "string") return;
    let members = this.#presence.get(push.topic);
    if (!members) this.#presence.set(push.topic, members = new Map());
    applyPresence(members, push);
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
