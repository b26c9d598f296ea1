/**
 * The typed duplex client (the `./client` entry), for browsers and Deno: it
 * shares the server's event types (`typeof router`) and its wire module,
 * reconnects with exponential backoff and jitter, replays its joins after a
 * reconnect, keeps a bounded outbox while offline, and surfaces close codes.
 * Only web APIs: no Deno namespace, no server code.
 *
 * @example
 * ```ts ignore
 * import { DuplexClient } from "@duplex-ws/client";
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
  LibraryClose,
  normalizeCloseInfo,
  shouldReconnect as defaultShouldReconnect,
} from "@duplex-ws/protocol";
import {
  encodeError,
  encodeEvent,
  encodeReply,
  type LibraryPushes,
  parseServerMessage,
} from "@duplex-ws/protocol";
import { ClientErrorCode, ErrorCode } from "@duplex-ws/protocol";
import {
  AUTH_PROTOCOL,
  AUTH_REFRESH,
  type AuthRefreshRequest,
  BEARER_PROTOCOL_PREFIX,
  TOPIC_LEFT,
  type TopicLeft,
} from "@duplex-ws/protocol";
import {
  applyPresence,
  PRESENCE_DIFF,
  PRESENCE_STATE,
  type PresenceDiff,
  type PresenceState,
} from "@duplex-ws/protocol";
import {
  isStreamPosition,
  pushPosition,
  STREAM_RESET,
  type StreamPosition,
  type StreamReset,
  streamStep,
} from "@duplex-ws/protocol";

export { ClientErrorCode } from "@duplex-ws/protocol";
export { shouldReconnect } from "@duplex-ws/protocol";
export type { LibraryPushes } from "@duplex-ws/protocol";
export type {
  PresenceDiff,
  PresenceMembers,
  PresenceState,
} from "@duplex-ws/protocol";
export type { StreamPosition, StreamReset } from "@duplex-ws/protocol";
export type {
  AuthRefreshReply,
  AuthRefreshRequest,
  TopicLeft,
} from "@duplex-ws/protocol";

/**
 * A router type, seen from the client: its events and its pushes. An
 * `EventRouter` chain's type (`typeof router`) has this shape.
 */
export interface RouterShape {
  /** Client-to-server events: name → `{ data, reply }`. */
  readonly events: Record<string, { data: unknown; reply: unknown }>;
  /** Pushes (server-to-client events): name → payload. */
  readonly pushes: Record<string, unknown>;
  /** Server-to-client requests: name → `{ data, reply }`. */
  readonly requests?: Record<string, { data: unknown; reply: unknown }>;
}

/** The requests (server-to-client, with a reply) of a router type. */
export type RouterRequests<R extends RouterShape> = NonNullable<
  R["requests"]
>;

/**
 * Answers one server request: its return value (awaited) is the reply; a
 * throw answers with an error (`code` when the thrown value has a string
 * one, else `HANDLER_ERROR`).
 */
export type RequestHandler<Data, Reply> = (
  data: Data,
) => Reply | Promise<Reply>;

/** The events (client-to-server) of a router type. */
export type RouterEvents<R extends RouterShape> = R["events"];

/** The pushes (server-to-client events) of a router type, with the library's own. */
export type RouterPushes<R extends RouterShape> = R["pushes"] & LibraryPushes;

/** The connection's state, as a page shows it. */
/**
 * The connection's state, as a page shows it. `unauthorized`: `getToken`
 * failed, or the server refused the identity for good (4503); the client
 * waits for {@linkcode DuplexClient.reconnect} (say, after a new login).
 */
export type ClientState =
  | "connecting"
  | "open"
  | "reconnecting"
  | "unauthorized"
  | "closed";

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

/**
 * What `getToken` throws when there is no identity to give (logged out, the
 * session ended): the client goes `unauthorized` and waits for
 * {@linkcode DuplexClient.reconnect}. Any other rejection (a network error
 * while fetching a token) is retried with the reconnect backoff.
 */
export class UnauthorizedError extends Error {
  /**
   * Creates the error.
   * @param message Why, for people.
   */
  constructor(message = "Not signed in") {
    super(message);
    this.name = "UnauthorizedError";
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
   * @default {shouldReconnect: not after 1000, 1008 or 4500–4999; yes after anything else, 4000–4499 included}
   */
  shouldReconnect?: (code: number) => boolean;
  /**
   * The WebSocket constructor.
   * @default {globalThis.WebSocket}
   */
  WebSocket?: typeof WebSocket;
  /**
   * Gives a token for the server's `auth` option: called before every
   * connect (the token rides in the `duplex.bearer.<token>` subprotocol,
   * which browsers can send and proxies do not log) and when the server
   * asks for a refresh (`auth.refresh`), so the connection keeps its
   * topics and pending requests. `undefined`: connect without one. An
   * {@linkcode UnauthorizedError} is an auth failure: the state becomes
   * `unauthorized`; any other rejection is retried like a failed connect.
   * @default {no token}
   */
  getToken?: () => string | undefined | Promise<string | undefined>;
}

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
   * instead of rejecting with `CONNECTION_LOST`. Only for requests the
   * server handles idempotently: give the data a key the server remembers
   * (the example's `chat.say {key: crypto.randomUUID()}`), so that a resend
   * of a request the server already did is answered, not done twice.
   * @default {false}
   */
  resend?: boolean;
}

/** How joining a topic again went, after a reconnect or a `stream.reset`. */
export interface RejoinEvent {
  /** The joining event, as given to {@linkcode DuplexClient.join}. */
  event: string;
  /** Its data, as given (the client adds `since` to what it sends). */
  data: unknown;
  /** The topic, once a reply named it. */
  topic?: string;
  /**
   * For a topic with history: `true` when every publish missed was
   * replayed, in order, before any newer one; `false` when some may be
   * lost (the stream was reset, history no longer reached back, or the
   * rejoin failed): reload what you show of the topic.
   */
  recovered?: boolean;
  /** Where the topic's live stream starts now. */
  position?: StreamPosition;
  /** Why the rejoin failed, when it did (the client stops rejoining it). */
  error?: RequestError;
}

type Handler = (data: never) => void;

interface Pending {
  resolve: (data: unknown) => void;
  reject: (error: RequestError) => void;
  timer: ReturnType<typeof setTimeout>;
  /** The message, kept to be sent again. */
  text: string;
  /** Whether it reached the socket (else it waits in the outbox). */
  sent: boolean;
  /** Whether it is sent again after a lost connection. */
  resend: boolean;
}

interface Queued {
  text: string;
  /** The request id, for requests. */
  id?: number;
}

interface Push {
  event: string;
  data: unknown;
  topic?: string;
}

/** A join the client repeats after every reconnect. */
interface JoinEntry {
  event: string;
  data: unknown;
  /** The topic, once a reply named it. */
  topic?: string;
  /** Rejoins refused for a while in a row (busy, rate limited, timed out). */
  retries?: number;
  /** The caller of a join made while offline, answered by the first rejoin. */
  waiting?: { resolve: (reply: unknown) => void; reject: (e: Error) => void };
}

/** Where the client is in one topic's numbered stream. */
interface TopicStream {
  /** The last position delivered to the handlers. */
  position?: StreamPosition;
  /** Whether a rejoin with `since` is on its way (pushes are held meanwhile). */
  resuming: boolean;
  held: Push[];
  /** The join that rejoins this topic. */
  joinKey?: string;
  recovered?: boolean;
}

/**
 * A typed client for a duplex server.
 *
 * Topics with history (docs/PROTOCOL.md §3) are followed by position: a
 * push is delivered to the handlers once, in order; a duplicate is dropped;
 * a gap, another epoch or a `stream.reset` makes the client join again with
 * its last position, and every reconnect does the same, so what was
 * published meanwhile arrives as ordinary pushes before newer ones.
 *
 * @typeParam R The server's router type (`typeof router`).
 */
export class DuplexClient<R extends RouterShape> {
  #options:
    & Required<
      Omit<
        ClientOptions,
        "protocols" | "shouldReconnect" | "WebSocket" | "getToken"
      >
    >
    & {
      protocols: string[];
      shouldReconnect: (code: number) => boolean;
      WebSocket: typeof WebSocket;
      getToken?: ClientOptions["getToken"];
    };
  #ws: WebSocket | undefined;
  #state: ClientState = "connecting";
  #stateListeners = new Set<(state: ClientState, code?: number) => void>();
  #rejoinListeners = new Set<(event: RejoinEvent) => void>();
  #handlers = new Map<string, Set<Handler>>();
  #answers = new Map<string, RequestHandler<never, unknown>>();
  #binary = new Set<(data: ArrayBuffer) => void>();
  /** Topic → who is in it, from presence pushes. */
  #presence = new Map<string, Map<string, unknown>>();
  #streams = new Map<string, TopicStream>();
  #pending = new Map<number, Pending>();
  #outbox: Queued[] = [];
  #joins = new Map<string, JoinEntry>();
  /** Whether the joins are being repeated: new messages wait in the outbox. */
  #settling = false;
  #ready = deferred();
  /** Whether `#ready` has resolved: the next loss starts a new one. */
  #isReady = false;
  #nextId = 1;
  #attempt = 0;
  #reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  /** Rejoins waiting to be tried again. */
  #retries = new Set<ReturnType<typeof setTimeout>>();
  #closedByUser = false;
  #lastClose: { code: number; reason: string } | undefined;
  #authError: Error | undefined;
  /** The refresh under way, if the server asked for one. */
  #refreshing: Promise<void> | undefined;

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
    this.#ready.promise.catch(() => {});
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

  /** The last auth failure: `getToken`'s error, or the server's refusal. */
  get authError(): Error | undefined {
    return this.#authError;
  }

  /**
   * Connects again now: from `unauthorized` (after a new login, say) or
   * while waiting to reconnect. A no-op while open or connecting.
   */
  reconnect(): void {
    if (this.#closedByUser) return;
    if (this.#state !== "unauthorized" && this.#state !== "reconnecting") {
      return;
    }
    clearTimeout(this.#reconnectTimer);
    this.#authError = undefined;
    this.#setState("connecting");
    this.#connect();
  }

  /**
   * Resolves when the client is open and has joined its topics again (every
   * rejoin answered or failed); at once when it already is.
   * @throws {RequestError} `CLOSED` when the client closes first.
   */
  ready(): Promise<void> {
    if (this.#state !== "closed" && !this.#closedByUser) {
      return this.#ready.promise;
    }
    return Promise.reject(
      new RequestError(ClientErrorCode.CLOSED, "Client closed"),
    );
  }

  /** Calls `listener` on every state change; returns a function that stops it. */
  onState(listener: (state: ClientState, code?: number) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  /**
   * Calls `listener` after every rejoin (after a reconnect, or when the
   * server asked with `stream.reset`): with `recovered` for a topic with
   * history, with `error` when the server refused it. Returns a function
   * that stops it.
   */
  onRejoin(listener: (event: RejoinEvent) => void): () => void {
    this.#rejoinListeners.add(listener);
    return () => this.#rejoinListeners.delete(listener);
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
   * Answers the server's requests of `event` (registered on the server's
   * router with `router.request`). One handler per event; a request with no
   * handler is answered `UNKNOWN_EVENT`. Returns a function that removes it.
   */
  handle<E extends keyof RouterRequests<R> & string>(
    event: E,
    handler: RequestHandler<
      RouterRequests<R>[E]["data"],
      RouterRequests<R>[E]["reply"]
    >,
  ): () => void {
    this.#answers.set(event, handler as RequestHandler<never, unknown>);
    return () => {
      if (this.#answers.get(event) === handler) this.#answers.delete(event);
    };
  }

  /**
   * Resolves with the next push of `event` (that `filter` accepts).
   * @throws {RequestError} `TIMEOUT` after `timeout` ms, `CLOSED` when the client closes first.
   */
  once<E extends keyof RouterPushes<R> & string>(
    event: E,
    options: {
      filter?: (data: RouterPushes<R>[E]) => boolean;
      timeout?: number;
    } = {},
  ): Promise<RouterPushes<R>[E]> {
    const { filter = () => true, timeout = this.#options.requestTimeout } =
      options;
    return new Promise((resolve, reject) => {
      const done = () => {
        stop();
        stopState();
        clearTimeout(timer);
      };
      const stop = this.on(event, (data) => {
        if (!filter(data)) return;
        done();
        resolve(data);
      });
      const stopState = this.onState((state) => {
        if (state !== "closed") return;
        done();
        reject(new RequestError(ClientErrorCode.CLOSED, "Client closed"));
      });
      const timer = setTimeout(() => {
        done();
        reject(
          new RequestError(
            ClientErrorCode.TIMEOUT,
            `No "${event}" push within ${timeout} ms`,
          ),
        );
      }, timeout);
    });
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
   * Sends a binary frame now (to the server's `router.binary` handler).
   * Binary frames are not queued: they are for state that the next frame
   * replaces (a cursor, a level), so one sent while not open is dropped.
   * @returns `false` when the client is not open and nothing was sent.
   */
  sendBinary(data: ArrayBuffer | Uint8Array<ArrayBuffer>): boolean {
    const ws = this.#ws;
    if (ws?.readyState !== WebSocket.OPEN || this.#settling) return false;
    ws.send(data);
    return true;
  }

  /** Calls `handler` with every binary frame from the server; returns a function that stops it. */
  onBinary(handler: (data: ArrayBuffer) => void): () => void {
    this.#binary.add(handler);
    return () => this.#binary.delete(handler);
  }

  /**
   * Sends an event and resolves with its reply.
   * @throws {RequestError} on an error envelope, a timeout, a lost connection or a full outbox.
   */
  request<E extends keyof RouterEvents<R> & string>(
    event: E,
    data: RouterEvents<R>[E]["data"],
    options: RequestOptions = {},
  ): Promise<RouterEvents<R>[E]["reply"]> {
    return this.#call(event, data, options, false);
  }

  /**
   * Sends a joining request (say `chat.join {room}`) now, or as soon as the
   * client is open, and again after every reconnect until `leave` forgets
   * it. When its reply names a `topic` with a `position` (what `ctx.join`
   * returns), the client follows that topic's stream and resumes it on
   * every rejoin by adding `since` (its last position) to the data, without
   * `last`: see {@linkcode DuplexClient.onRejoin}.
   */
  join<E extends keyof RouterEvents<R> & string>(
    event: E,
    data: RouterEvents<R>[E]["data"],
  ): Promise<RouterEvents<R>[E]["reply"]> {
    const key = joinKey(event, data);
    const entry: JoinEntry = { ...this.#joins.get(key), event, data };
    this.#joins.set(key, entry);
    if (this.#state === "closed") {
      return Promise.reject(
        new RequestError(ClientErrorCode.CLOSED, "Client closed"),
      );
    }
    if (this.#ws?.readyState !== WebSocket.OPEN) {
      // The rejoin on open sends it, once.
      return new Promise((resolve, reject) => {
        entry.waiting = { resolve, reject };
      });
    }
    return this.#call(event, data, {}, true).then(
      (reply) => {
        this.#joined(key, reply, false);
        return reply;
      },
      (error: RequestError) => {
        // Refused (FORBIDDEN, BAD_TOPIC…): not a join to repeat.
        const lost = error.code === ClientErrorCode.CONNECTION_LOST ||
          TRANSIENT.has(error.code);
        if (!lost && this.#joins.get(key) === entry) this.#joins.delete(key);
        throw error;
      },
    );
  }

  /**
   * Who is in a topic with presence, as the server last told: presence key
   * → metadata (empty for a topic without presence, or before the
   * snapshot). Kept up to date from `presence.state` and `presence.diff`.
   */
  members(topic: string): ReadonlyMap<string, unknown> {
    return this.#presence.get(topic) ?? new Map();
  }

  /** The last position delivered from a topic with history, if any. */
  position(topic: string): StreamPosition | undefined {
    return this.#streams.get(topic)?.position;
  }

  /**
   * Whether the last rejoin of a topic with history got every publish it
   * had missed; `undefined` before any rejoin.
   */
  recovered(topic: string): boolean | undefined {
    return this.#streams.get(topic)?.recovered;
  }

  /** Stops replaying a join after reconnects (send your own leave event too). */
  leave<E extends keyof RouterEvents<R> & string>(
    event: E,
    data: RouterEvents<R>[E]["data"],
  ): void {
    const key = joinKey(event, data);
    const topic = this.#joins.get(key)?.topic;
    this.#joins.delete(key);
    if (topic !== undefined) {
      this.#streams.delete(topic);
      this.#presence.delete(topic);
    }
  }

  /** Closes for good (1000 by default): no reconnection, pending requests rejected. */
  close(code: number = CloseCode.NORMAL, reason = ""): void {
    this.#closedByUser = true;
    clearTimeout(this.#reconnectTimer);
    for (const retry of this.#retries) clearTimeout(retry);
    this.#retries.clear();
    this.#outbox.length = 0;
    this.#failPending(ClientErrorCode.CLOSED, "Client closed");
    if (this.#ws && this.#ws.readyState < WebSocket.CLOSING) {
      this.#ws.close(code, reason);
    } else this.#setState("closed", code);
  }

  #connect(): void {
    const { getToken } = this.#options;
    if (!getToken) return this.#open(undefined);
    let token: string | undefined | Promise<string | undefined>;
    try {
      token = getToken();
    } catch (error) {
      token = Promise.reject(error);
    }
    Promise.resolve(token).then(
      (token) => {
        if (!this.#closedByUser) this.#open(token);
      },
      (error) => {
        if (this.#closedByUser) return;
        if (error instanceof UnauthorizedError) {
          return this.#unauthorized(error);
        }
        // No token now (the network, say): try again like a failed connect.
        this.#authError = error instanceof Error
          ? error
          : new Error(String(error));
        this.#setState(this.#state === "open" ? "reconnecting" : this.#state);
        this.#reconnectTimer = setTimeout(() => this.#connect(), this.#delay());
      },
    );
  }

  /** `getToken` failed, or the server refused the identity: wait for `reconnect()`. */
  #unauthorized(error: unknown): void {
    if (this.#closedByUser) return;
    this.#authError = error instanceof Error ? error : new Error(String(error));
    this.#setState("unauthorized");
  }

  /** The subprotocols offered: the app's, and the token's carrier with its marker. */
  #protocols(token: string | undefined): string[] {
    const protocols = [...this.#options.protocols];
    if (token === undefined) return protocols;
    if (!protocols.includes(AUTH_PROTOCOL)) protocols.push(AUTH_PROTOCOL);
    protocols.push(BEARER_PROTOCOL_PREFIX + token);
    return protocols;
  }

  #open(token: string | undefined): void {
    const url = typeof this.#options.url === "function"
      ? this.#options.url()
      : this.#options.url;
    let ws: WebSocket;
    try {
      ws = new this.#options.WebSocket(url, this.#protocols(token));
    } catch (error) {
      // A token that cannot be a subprotocol (not an HTTP token).
      return this.#unauthorized(error);
    }
    this.#ws = ws;
    ws.onopen = () => {
      this.#attempt = 0;
      this.#settling = true;
      this.#setState("open");
      const rejoins = [...this.#joins].map(([key, entry]) =>
        this.#rejoin(key, entry)
      );
      Promise.allSettled(rejoins).then(() => {
        if (this.#ws === ws && ws.readyState === WebSocket.OPEN) {
          this.#settled(ws);
        }
      });
    };
    ws.binaryType = "arraybuffer";
    ws.onmessage = (event) => {
      if (typeof event.data === "string") this.#receive(event.data);
      else for (const handler of this.#binary) handler(event.data);
    };
    ws.onclose = (event) => {
      // Deno's client reports a connection that never opened, or dropped, as 0.
      const { code, reason } = normalizeCloseInfo(
        event.code,
        event.reason,
        event.wasClean,
      );
      this.#lastClose = { code, reason };
      this.#settling = false;
      for (const stream of this.#streams.values()) {
        stream.resuming = false;
        stream.held.length = 0;
      }
      for (const retry of this.#retries) clearTimeout(retry);
      this.#retries.clear();
      if (!this.#closedByUser && code === LibraryClose.FORBIDDEN.code) {
        // The identity is refused for good: not a reconnect loop, a state.
        this.#failPending(
          ClientErrorCode.CONNECTION_LOST,
          `Connection closed (${code}) before the reply`,
          (pending) => pending.sent && !pending.resend,
        );
        for (const pending of this.#pending.values()) {
          if (pending.resend) pending.sent = false;
        }
        return this.#unauthorized(new Error(reason || "forbidden"));
      }
      if (this.#closedByUser || !this.#options.shouldReconnect(code)) {
        this.#outbox.length = 0;
        this.#failPending(
          ClientErrorCode.CLOSED,
          `Connection closed (${code})`,
        );
        this.#setState("closed", code);
        return;
      }
      if (this.#isReady) {
        this.#isReady = false;
        this.#ready = deferred();
        this.#ready.promise.catch(() => {});
      }
      // Requests still in the outbox were never sent: they wait for the
      // next connection, and so do sent ones that asked to be resent.
      for (const pending of this.#pending.values()) {
        if (pending.resend) pending.sent = false;
      }
      this.#failPending(
        ClientErrorCode.CONNECTION_LOST,
        `Connection closed (${code}) before the reply`,
        (pending) => pending.sent,
      );
      this.#setState("reconnecting", code);
      this.#reconnectTimer = setTimeout(() => this.#connect(), this.#delay());
    };
  }

  /** The joins are repeated: resends, then the outbox, then open for all. */
  #settled(ws: WebSocket): void {
    this.#settling = false;
    const queued = new Set(this.#outbox.map((q) => q.id));
    for (const [id, pending] of this.#pending) {
      if (pending.sent || queued.has(id)) continue;
      ws.send(pending.text);
      pending.sent = true;
    }
    for (const { text, id } of this.#outbox.splice(0)) {
      ws.send(text);
      const pending = id === undefined ? undefined : this.#pending.get(id);
      if (pending) pending.sent = true;
    }
    this.#isReady = true;
    this.#ready.resolve();
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

  /** Sends now, or queues while offline or rejoining. */
  #send(text: string, id?: number): "sent" | "queued" | false {
    if (this.#state === "closed") return false;
    if (this.#ws?.readyState === WebSocket.OPEN && !this.#settling) {
      this.#ws.send(text);
      return "sent";
    }
    if (this.#outbox.length >= this.#options.outboxLimit) return false;
    this.#outbox.push({ text, id });
    return "queued";
  }

  /** A request; `now` skips the outbox (joins, which go first). */
  #call(
    event: string,
    data: unknown,
    options: RequestOptions,
    now: boolean,
  ): Promise<never> {
    const id = this.#nextId++;
    const text = encodeEvent(event, data, id);
    return new Promise((resolve, reject) => {
      let sent: "sent" | "queued" | false;
      if (now && this.#ws?.readyState === WebSocket.OPEN) {
        this.#ws.send(text);
        sent = "sent";
      } else sent = this.#send(text, id);
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
        text,
        sent: sent === "sent",
        resend: options.resend ?? false,
      });
    });
  }

  /** Joins again, resuming the topic's stream from the last position. */
  #rejoin(key: string, entry: JoinEntry): Promise<void> {
    const stream = entry.topic === undefined
      ? undefined
      : this.#streams.get(entry.topic);
    let data = entry.data;
    if (stream?.position) {
      stream.resuming = true;
      stream.held.length = 0;
      data = resumeData(data, stream.position);
    }
    const waiting = entry.waiting;
    entry.waiting = undefined;
    return this.#call(entry.event, data, {}, true).then(
      (reply) => {
        this.#joined(key, reply, waiting === undefined);
        waiting?.resolve(reply);
      },
      (error: RequestError) => {
        waiting?.reject(error);
        this.#rejoinFailed(key, entry, error);
      },
    );
  }

  /** A join's reply: learn its topic, then settle its stream. */
  #joined(key: string, reply: unknown, isRejoin: boolean): void {
    const entry = this.#joins.get(key);
    const topic = (reply as { topic?: unknown } | null)?.topic;
    if (entry === undefined || typeof topic !== "string") return;
    entry.topic = topic;
    entry.retries = 0;
    const stream = this.#stream(topic);
    stream.joinKey = key;
    const { position, recovered } = reply as {
      position?: unknown;
      recovered?: unknown;
    };
    const at = isStreamPosition(position) ? position : undefined;
    stream.resuming = false;
    if (recovered === false) {
      // Nothing was replayed; the app is told. What the server did send
      // from the current stream meanwhile is still delivered, in order.
      stream.position = undefined;
      this.#release(stream, at?.epoch, true);
    } else {
      // The replay came before the reply and is held, in order.
      this.#release(stream, stream.position?.epoch, false);
    }
    const last = stream.position;
    if (
      at && (last === undefined ||
        (last.epoch === at.epoch && last.offset < at.offset))
    ) {
      stream.position = at;
    }
    if (typeof recovered === "boolean") stream.recovered = recovered;
    if (!isRejoin) return;
    this.#emitRejoin({
      event: entry.event,
      data: entry.data,
      topic,
      recovered: typeof recovered === "boolean" ? recovered : undefined,
      position: at,
    });
  }

  #rejoinFailed(key: string, entry: JoinEntry, error: RequestError): void {
    // A lost connection rejoins on the next one.
    if (
      error.code === ClientErrorCode.CONNECTION_LOST ||
      error.code === ClientErrorCode.CLOSED
    ) return;
    const stream = entry.topic === undefined
      ? undefined
      : this.#streams.get(entry.topic);
    if (stream) {
      stream.resuming = false;
      stream.held.length = 0;
    }
    if (TRANSIENT.has(error.code)) {
      // The server is busy or this client over a budget: try again later.
      const retry = setTimeout(() => {
        this.#retries.delete(retry);
        if (
          this.#joins.get(key) === entry &&
          this.#ws?.readyState === WebSocket.OPEN
        ) void this.#rejoin(key, entry);
      }, this.#retryDelay(entry));
      this.#retries.add(retry);
      return;
    }
    const followed = stream?.position !== undefined;
    if (followed) stream!.recovered = false;
    // Refused: it is not joined, so stop repeating it.
    this.#joins.delete(key);
    this.#emitRejoin({
      event: entry.event,
      data: entry.data,
      topic: entry.topic,
      recovered: followed ? false : undefined,
      error,
    });
  }

  /** Backoff for a rejoin refused for a while: 500 ms doubling, at most maxReconnectDelay. */
  #retryDelay(entry: JoinEntry): number {
    entry.retries = (entry.retries ?? 0) + 1;
    return Math.min(
      this.#options.maxReconnectDelay,
      500 * 2 ** Math.min(entry.retries - 1, 10),
    );
  }

  #emitRejoin(event: RejoinEvent): void {
    for (const listener of this.#rejoinListeners) listener(event);
  }

  #stream(topic: string): TopicStream {
    let stream = this.#streams.get(topic);
    if (!stream) {
      this.#streams.set(topic, stream = { resuming: false, held: [] });
    }
    return stream;
  }

  /**
   * Delivers what was held during a rejoin: the replay, and live pushes
   * sent before the server took the rejoin, which the replay repeats. In
   * offset order, each once; pushes of an older epoch are dropped.
   */
  #release(
    stream: TopicStream,
    epoch: string | undefined,
    acceptGaps: boolean,
  ): void {
    const held = stream.held.splice(0)
      .map((push) => ({ push, at: pushPosition(push.data)! }))
      .filter(({ at }) => epoch === undefined || at.epoch === epoch)
      .sort((a, b) => a.at.offset - b.at.offset);
    for (const { push, at } of held) {
      if (acceptGaps && streamStep(stream.position, at) === "gap") {
        stream.position = undefined;
      }
      this.#push(push);
    }
  }

  /** The join that can resume a topic, if any. */
  #resumable(topic: string): [string, JoinEntry] | undefined {
    const key = this.#streams.get(topic)?.joinKey;
    const entry = key === undefined ? undefined : this.#joins.get(key);
    return entry && this.#ws?.readyState === WebSocket.OPEN
      ? [key!, entry]
      : undefined;
  }

  /** The server asked for a rejoin, or the client saw a gap: resume the topic. */
  #resume(topic: string): void {
    const stream = this.#streams.get(topic);
    const join = this.#resumable(topic);
    if (stream && !stream.resuming && join) void this.#rejoin(...join);
  }

  #receive(text: string): void {
    const message = parseServerMessage(text);
    if (message === undefined) return;
    if (message.kind === "push") return this.#push(message);
    if (message.kind === "request") return this.#answer(message);
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

  /** A server request: run its handler and send the reply on the same socket. */
  #answer(request: { event: string; data: unknown; id: number }): void {
    const socket = this.#ws;
    const reply = (text: string) => {
      if (this.#ws === socket && socket?.readyState === WebSocket.OPEN) {
        socket.send(text);
      }
    };
    const handler = this.#answers.get(request.event);
    if (handler === undefined) {
      reply(encodeError(
        request.id,
        ErrorCode.UNKNOWN_EVENT,
        `No handler for "${request.event}"`,
      ));
      return;
    }
    new Promise((resolve) => resolve(handler(request.data as never))).then(
      (value) => reply(encodeReply(request.id, value)),
      (error) => {
        const code = typeof error?.code === "string"
          ? error.code
          : ErrorCode.HANDLER_ERROR;
        const message = error instanceof Error ? error.message : String(error);
        reply(encodeError(request.id, code, message));
      },
    );
  }

  /** A push: in order and once for a topic with history, then to the handlers. */
  #push(push: Push): void {
    const position = push.topic === undefined
      ? undefined
      : pushPosition(push.data);
    if (push.topic !== undefined && position) {
      const stream = this.#stream(push.topic);
      if (stream.resuming) return void stream.held.push(push);
      const step = streamStep(stream.position, position);
      if (step === "duplicate") return;
      if (step !== "next" && this.#resumable(push.topic)) {
        // The rejoin's replay brings this one again, in order.
        return this.#resume(push.topic);
      }
      stream.position = position;
    }
    if (push.event === STREAM_RESET) {
      const topic = (push.data as StreamReset | null)?.topic;
      if (typeof topic === "string") this.#resume(topic);
    }
    if (push.event === AUTH_REFRESH) {
      this.#refresh(push.data as AuthRefreshRequest);
    }
    if (push.event === TOPIC_LEFT) {
      const topic = (push.data as TopicLeft | null)?.topic;
      if (typeof topic === "string") this.#forget(topic);
    }
    if (push.event === PRESENCE_STATE || push.event === PRESENCE_DIFF) {
      this.#applyPresence(push.data as PresenceState | PresenceDiff);
    }
    for (const handler of this.#handlers.get(push.event) ?? []) {
      (handler as (data: unknown) => void)(push.data);
    }
  }

  /**
   * The server asks for a fresh token: `getToken`, then `auth.refresh` on
   * this connection, until it is taken or the deadline passes (a refused
   * token is asked for again a second later; another subject gets the
   * connection closed by the server).
   */
  #refresh(request: AuthRefreshRequest): void {
    const { getToken } = this.#options;
    if (!getToken || this.#refreshing) return;
    const deadline = typeof request?.deadline === "number"
      ? request.deadline
      : Date.now() + 10_000;
    const ws = this.#ws;
    const attempt = async (): Promise<void> => {
      while (Date.now() < deadline && this.#ws === ws && !this.#closedByUser) {
        try {
          const token = await getToken();
          if (token === undefined) return;
          await this.#call(AUTH_REFRESH, { token }, {
            timeout: Math.max(1, deadline - Date.now()),
          }, true);
          return;
        } catch (error) {
          const code = (error as RequestError).code;
          if (code === ErrorCode.FORBIDDEN) {
            this.#authError = error as Error;
            return;
          }
          if (code === ClientErrorCode.CONNECTION_LOST) return;
          if (!(error instanceof RequestError)) {
            this.#authError = error as Error;
          }
          await this.#sleep(1000);
        }
      }
    };
    this.#refreshing = attempt().finally(() => this.#refreshing = undefined);
  }

  /** Waits; a close cancels the wait (the promise then never settles). */
  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#retries.delete(timer);
        resolve();
      }, ms);
      this.#retries.add(timer);
    });
  }

  /** The server took the connection out of a topic: stop rejoining it. */
  #forget(topic: string): void {
    for (const [key, entry] of this.#joins) {
      if (entry.topic === topic) this.#joins.delete(key);
    }
    this.#streams.delete(topic);
    this.#presence.delete(topic);
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
    if (code === ClientErrorCode.CLOSED) {
      for (const entry of this.#joins.values()) {
        entry.waiting?.reject(new RequestError(code, reason));
        entry.waiting = undefined;
      }
      this.#ready.reject(new RequestError(code, reason));
    }
  }

  #setState(state: ClientState, code?: number): void {
    if (this.#state === state) return;
    this.#state = state;
    for (const listener of this.#stateListeners) listener(state, code);
  }
}

/** Codes after which a rejoin is tried again later rather than given up. */
const TRANSIENT = new Set<string>([
  ErrorCode.RATE_LIMITED,
  ErrorCode.BUSY,
  ClientErrorCode.TIMEOUT,
]);

/** A promise and its settlers (what `Promise.withResolvers` gives, for older browsers). */
function deferred(): {
  promise: Promise<void>;
  resolve: () => void;
  reject: (error: Error) => void;
} {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const promise = new Promise<void>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  return { promise, resolve, reject };
}

function joinKey(event: string, data: unknown): string {
  return `${event}\u0000${JSON.stringify(data ?? null)}`;
}

/** A join's data resuming from `since`: without `last`, which was for the first join. */
function resumeData(data: unknown, since: StreamPosition): unknown {
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    return data;
  }
  const { last: _last, ...rest } = data as Record<string, unknown>;
  return { ...rest, since };
}
