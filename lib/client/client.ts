/**
 * The typed duplex client (`@duplex-ws/client`), for browsers and Deno: it
 * shares the server's event types (`typeof router`) and its wire module,
 * reconnects with exponential backoff and jitter, replays its joins after a
 * reconnect, keeps a bounded outbox while offline, and surfaces close codes.
 * Only web APIs: no Deno namespace, no server code. Its parts, one concept
 * each: the connection (`link.ts`), requests and the outbox
 * (`requests.ts`), topics with recovery and presence (`topics.ts`), the
 * server's requests (`answers.ts`), a refreshed identity (`refresh.ts`).
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
  encodeEvent,
  type StreamPosition,
} from "@duplex-ws/protocol";
import { ClientCore } from "./client_core.ts";
import type { ClientState, Transport } from "./link.ts";
import type { RequestOptions } from "./requests.ts";
import type {
  EventErrors,
  RequestHandler,
  RouterEvents,
  RouterPresence,
  RouterPushes,
  RouterRequests,
  RouterShape,
  StreamChunkOf,
  StreamResultOf,
} from "./router_types.ts";
import type { RejoinEvent } from "./topics.ts";
import type { PushInfo } from "./push_handlers.ts";
import type { ChunkStream } from "./reply_reader.ts";
import { RequestError } from "./errors.ts";
import { type ClientOptions, resolveClientOptions } from "./options.ts";

export { RequestError, UnauthorizedError } from "./errors.ts";
export type { ClientState, Transport } from "./link.ts";
export type { ClientOptions } from "./options.ts";
export type { RequestOptions } from "./requests.ts";
export type { RejoinEvent } from "./topics.ts";
export type { PushInfo } from "./push_handlers.ts";
export type { ChunkStream } from "./reply_reader.ts";
export type {
  EventErrors,
  RequestHandler,
  RouterEvents,
  RouterPresence,
  RouterPushes,
  RouterRequests,
  RouterShape,
  StreamChunkOf,
  StreamResultOf,
} from "./router_types.ts";
export {
  type AuthRefreshReply,
  type AuthRefreshRequest,
  ClientErrorCode,
  type LibraryPushes,
  type PresenceDiff,
  type PresenceMembers,
  type PresenceState,
  shouldReconnect,
  type StreamPosition,
  type StreamReset,
  type TopicLeft,
} from "@duplex-ws/protocol";

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
  readonly #core: ClientCore;
  /** Connects at once. */
  constructor(options: ClientOptions) {
    this.#core = new ClientCore(resolveClientOptions(options));
  }

  /** connecting, open, reconnecting, unauthorized or closed. */
  get state(): ClientState {
    return this.#core.link.state;
  }

  /**
   * The transport in use: `websocket`, or `sse` (HTTP streaming) when a
   * WebSocket could not open (see `transports`).
   */
  get transport(): Transport {
    return this.#core.link.transport;
  }

  /** The code and reason of the last close, if any. */
  get lastClose(): { code: number; reason: string } | undefined {
    return this.#core.link.lastClose;
  }

  /** Messages waiting in the outbox. */
  get queued(): number {
    return this.#core.requests.queued;
  }

  /** The last auth failure: `getToken`'s error, or the server's refusal. */
  get authError(): Error | undefined {
    return this.#core.link.authError;
  }

  /**
   * Connects again now: from `unauthorized` (after a new login, say) or
   * while waiting to reconnect. A no-op while open or connecting.
   */
  reconnect(): void {
    this.#core.link.reconnect();
  }

  /**
   * Resolves when the client is open and has joined its topics again (every
   * rejoin answered or failed); at once when it already is.
   * @throws {RequestError} `CLOSED` when the client closes first.
   */
  ready(): Promise<void> {
    return this.#core.ready();
  }

  /** Calls `listener` on every state change; returns a function that stops it. */
  onState(listener: (state: ClientState, code?: number) => void): () => void {
    return this.#core.link.onState(listener);
  }

  /**
   * Calls `listener` after every rejoin (after a reconnect, or when the
   * server asked with `stream.reset`): with `recovered` for a topic with
   * history, with `error` when the server refused it. Returns a function
   * that stops it.
   */
  onRejoin(listener: (event: RejoinEvent) => void): () => void {
    return this.#core.topics.onRejoin(listener);
  }

  /** Calls `handler` with every push of `event`; returns a function that stops it. */
  on<E extends keyof RouterPushes<R> & string>(
    event: E,
    handler: (data: RouterPushes<R>[E], info: PushInfo) => void,
  ): () => void;
  /** Error pushes (`{code, message}`) for messages sent without an id. */
  on(
    event: "error",
    handler: (data: { code: string; message: string }) => void,
  ): () => void;
  on(event: string, handler: (data: never, info: PushInfo) => void) {
    return this.#core.pushes.on(event, handler as (data: unknown) => void);
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
    return this.#core.answers.handle(
      event,
      handler as RequestHandler<never, unknown>,
    );
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
    const { filter = () => true, timeout = this.#core.requestTimeout } =
      options;
    return this.#core.pushes.once(
      event,
      filter as (data: unknown) => boolean,
      timeout,
      (listener) => this.onState(listener),
    ) as Promise<RouterPushes<R>[E]>;
  }

  /**
   * Sends an event without asking for a reply. Offline, it waits in the outbox.
   * @returns `false` when the outbox is full or the client is closed.
   */
  emit<E extends keyof RouterEvents<R> & string>(
    event: E,
    data: RouterEvents<R>[E]["data"],
  ): boolean {
    return this.#core.requests.send(encodeEvent(event, data)) !== false;
  }

  /**
   * Sends a binary frame now (to the server's `router.binary` handler).
   * Binary frames are not queued: they are for state that the next frame
   * replaces (a cursor, a level), so one sent while not open is dropped.
   * @returns `false` when nothing was sent: not open, or on HTTP streaming (text up only).
   */
  sendBinary(data: ArrayBuffer | Uint8Array<ArrayBuffer>): boolean {
    if (!this.#core.sendable || this.transport !== "websocket") return false;
    this.#core.link.send(data);
    return true;
  }

  /** Calls `handler` with every binary frame from the server; returns a function that stops it. */
  onBinary(handler: (data: ArrayBuffer) => void): () => void {
    return this.#core.pushes.onBinary(handler);
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
    return this.#core.requests.call(event, data, options);
  }

  /**
   * Whether `error` is `code` as the server's router declares it for
   * `event` (`errors` in `on`'s options): then its `data` is typed.
   *
   * @example
   * ```ts ignore
   * try {
   *   await client.request("bid", { amount: 50 });
   * } catch (error) {
   *   if (client.isError(error, "bid", "BID_TOO_LOW")) show(error.data.price);
   * }
   * ```
   */
  isError<
    E extends keyof RouterEvents<R> & string,
    C extends keyof EventErrors<R, E> & string,
  >(
    error: unknown,
    _event: E,
    code: C,
  ): error is RequestError<C, EventErrors<R, E>[C]> {
    return error instanceof RequestError && error.code === code;
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
    return this.#core.topics.join(event, data);
  }

  /**
   * Who is in a topic with presence, as the server last told: presence key
   * → metadata (empty for a topic without presence, or before the
   * snapshot). Kept up to date from `presence.state` and `presence.diff`:
   * updated before that push's handlers run, so a handler reads the new
   * membership. Typed by the router's `presence(schema)`.
   */
  members(topic: string): ReadonlyMap<string, RouterPresence<R>> {
    return this.#core.topics.members(topic) as ReadonlyMap<
      string,
      RouterPresence<R>
    >;
  }

  /** The last position delivered from a topic with history, if any. */
  position(topic: string): StreamPosition | undefined {
    return this.#core.topics.position(topic);
  }

  /**
   * Whether the last rejoin of a topic with history got every publish it
   * had missed; `undefined` before any rejoin.
   */
  recovered(topic: string): boolean | undefined {
    return this.#core.topics.recovered(topic);
  }

  /**
   * Sends an event whose handler answers with a stream (`ctx.stream`):
   * `for await` its chunks, in order and once across reconnects; `result`
   * (the iterator's return value) is the handler's; `cancel()` stops it.
   */
  stream<E extends keyof RouterEvents<R> & string>(
    event: E,
    data: RouterEvents<R>[E]["data"],
    options: RequestOptions = {},
  ): ChunkStream<StreamChunkOf<R, E>, StreamResultOf<R, E>> {
    const { readers, requests } = this.#core;
    return readers.open(() => requests.call(event, data, options)) as never;
  }

  /** Reads a running stream by id (another tab's), from its first chunk kept. */
  attach(stream: string): ChunkStream<unknown, unknown> {
    return this.#core.readers.attach(stream);
  }

  /** Stops replaying a join after reconnects (send your own leave event too). */
  leave<E extends keyof RouterEvents<R> & string>(
    event: E,
    data: RouterEvents<R>[E]["data"],
  ): void {
    this.#core.topics.leave(event, data);
  }

  /** Closes for good (1000 by default): no reconnection, pending requests rejected. */
  close(code: number = CloseCode.NORMAL, reason = ""): void {
    this.#core.close(code, reason);
  }
}
