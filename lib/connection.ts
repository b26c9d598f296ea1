/**
 * One WebSocket connection: its state machine (CONNECTING → OPEN → CLOSING →
 * CLOSED), message intake, size limit, and close semantics. It is the only
 * module that touches a `WebSocket`.
 *
 * @module
 */

import {
  assertApplicationClose,
  CloseCode,
  type CloseInfo,
  normalizeCloseInfo,
  ReadyState,
  truncateCloseReason,
  utf8Length,
} from "./close_code.ts";
import type { Presence } from "./backplane.ts";
import type { Context, EventMap, PublishOptions, PushArgs } from "./context.ts";
import { encodeError, encodePush, parseEnvelope } from "./envelope.ts";
import { ErrorCode } from "./event_error.ts";
import type {
  DispatchEnv,
  EventDefinitions,
  EventRouter,
} from "./event_router.ts";
import type { Logger } from "./logger.ts";
import type { Metrics } from "./metrics.ts";
import type { PublishResult, PubSub } from "./pubsub.ts";
import { ConnectionRateLimit, type ResolvedRateLimit } from "./rate_limit.ts";

/** The per-connection limits (see `ServerOptions` for their meaning and defaults). */
export interface ConnectionLimits {
  /** The largest message accepted, in bytes; larger ones close with 1009. */
  maxMessageSize: number;
  /** Milliseconds to wait for the peer's close frame. */
  closeTimeout: number;
  /** Bytes the runtime may hold unsent before the peer is closed with 1013; 0: no cap. */
  maxBufferedAmount: number;
  /** Handlers that may be running at once; past it messages get `BUSY`. */
  maxInFlight: number;
  /** The rate limit, or `false`. */
  rateLimit: ResolvedRateLimit | false;
}

const EVENTS = ["open", "message", "close", "error"] as const;

/** Bytes sent between two checks of `bufferedAmount` (a sync op each). */
const BUFFER_CHECK_EVERY = 16_384;

/**
 * What every connection of one server shares: made once per server, so an
 * idle connection costs only its own fields.
 */
export interface ConnectionInit<State, Push extends EventMap>
  extends DispatchEnv {
  /** Routes its messages. */
  router: EventRouter<State, Push, EventDefinitions>;
  /** The per-connection limits. */
  limits: ConnectionLimits;
  /** Where to log. */
  logger: Logger;
  /** Topic membership and publishing. */
  pubsub: PubSub;
  /** The server's counters. */
  metrics: Metrics;
  /** Called once when the connection has finished, before the close hook. */
  onFinished: (connection: Connection<State, Push>, info: CloseInfo) => void;
}

/**
 * A server-side WebSocket connection. Handlers see it as their
 * {@linkcode Context}.
 */
export class Connection<State = unknown, Push extends EventMap = EventMap>
  implements Context<State, Push> {
  /** A unique id (a random UUID). */
  readonly id: string;
  /** The per-connection state `authenticate` returned. */
  readonly state: State;
  /** The negotiated subprotocol, or `""`. */
  readonly protocol: string;
  #socket: WebSocket;
  #init: ConnectionInit<State, Push>;
  #readyState: ReadyState = ReadyState.CONNECTING;
  #abort: AbortController | undefined;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #pendingClose: { code: number; reason: string } | undefined;
  #sentClose: { code: number; reason: string } | undefined;
  #finished: Promise<CloseInfo> | undefined;
  #closeInfo: CloseInfo | undefined;
  #leftTopics: ReadonlySet<string> | undefined;
  #resolveFinished: ((info: CloseInfo) => void) | undefined;
  #rateLimit: ConnectionRateLimit | undefined;
  #inFlight = 0;
  #sentSinceCheck = 0;

  /**
   * Wraps a socket from `Deno.upgradeWebSocket`.
   *
   * @param id A unique id.
   * @param state The per-connection state.
   * @param protocol The negotiated subprotocol, or `""`.
   * @param init What every connection of the server shares.
   */
  constructor(
    socket: WebSocket,
    id: string,
    state: State,
    protocol: string,
    init: ConnectionInit<State, Push>,
  ) {
    this.id = id;
    this.state = state;
    this.protocol = protocol;
    this.#socket = socket;
    this.#init = init;
    socket.binaryType = "arraybuffer";
    // The connection itself handles the events: no closures per connection.
    for (const type of EVENTS) socket.addEventListener(type, this);
  }

  /** The socket's event listener (`EventListenerObject`); not for applications. */
  handleEvent(event: Event): void {
    switch (event.type) {
      case "message":
        return this.#onMessage((event as MessageEvent).data);
      case "open":
        return this.#onOpen();
      case "close":
        return this.#onClose(event as CloseEvent);
      case "error": {
        const message = event instanceof ErrorEvent ? event.message : "error";
        this.#init.logger.debug("socket error", { conn: this.id, message });
      }
    }
  }

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

  /** Bytes queued by the runtime and not yet written to the peer. */
  get bufferedAmount(): number {
    return this.#socket.bufferedAmount;
  }

  /** Settles with the close info once the connection has finished and its close hook has run. */
  get finished(): Promise<CloseInfo> {
    if (this.#finished === undefined) {
      this.#finished = this.#closeInfo
        ? Promise.resolve(this.#closeInfo)
        : new Promise((resolve) => this.#resolveFinished = resolve);
    }
    return this.#finished;
  }

  /** Pushes an event; `false` when not open. */
  emit<E extends keyof Push & string>(
    event: E,
    ...data: PushArgs<Push, E>
  ): boolean {
    return this.send(encodePush(event, data[0]));
  }

  /**
   * Sends a raw text or binary frame; `false` when not open. Never blocks:
   * a peer that lets more than `maxBufferedAmount` bytes pile up unread is
   * closed with 1013 "slow consumer".
   */
  send(data: string | Uint8Array<ArrayBuffer> | ArrayBuffer): boolean {
    if (this.#readyState !== ReadyState.OPEN) return false;
    try {
      this.#socket.send(data);
      this.#init.metrics.messageOut(
        typeof data === "string" ? data.length : data.byteLength,
      );
    } catch (error) {
      this.#init.logger.warn("send failed", { conn: this.id, error });
      return false;
    }
    const cap = this.#init.limits.maxBufferedAmount;
    if (cap > 0) {
      this.#sentSinceCheck += typeof data === "string"
        ? data.length
        : data.byteLength;
      if (this.#sentSinceCheck >= BUFFER_CHECK_EVERY) {
        this.#sentSinceCheck = 0;
        const buffered = this.#socket.bufferedAmount;
        if (buffered > cap) {
          this.#init.logger.warn("slow consumer", { conn: this.id, buffered });
          this.closeWith(CloseCode.TRY_AGAIN_LATER, "slow consumer");
        }
      }
    }
    return true;
  }

  /** Joins a topic; `false` when already a member or not open. */
  join(topic: string): boolean {
    if (this.#readyState !== ReadyState.OPEN) return false;
    return this.#init.pubsub.join(this, topic);
  }

  /** Leaves a topic; `false` when not a member. */
  leave(topic: string): boolean {
    return this.#init.pubsub.leave(this, topic);
  }

  /** The topics it is in; once finished, the topics it was in. */
  get topics(): ReadonlySet<string> {
    return this.#leftTopics ?? this.#init.pubsub.topicsOf(this);
  }

  /** Publishes an event to a topic on every node. */
  publish<E extends keyof Push & string>(
    topic: string,
    event: E,
    data: Push[E],
    options: PublishOptions = {},
  ): Promise<PublishResult> {
    const exclude = options.excludeSelf ? this.id : undefined;
    return this.#init.pubsub.publish(topic, encodePush(event, data), exclude);
  }

  /** The member count of a topic on every live node. */
  presence(topic: string): Promise<Presence> {
    return this.#init.pubsub.presence(topic);
  }

  /** Starts the close handshake with an application code (1000, 3000–4999). */
  close(code: number = CloseCode.NORMAL, reason = ""): void {
    assertApplicationClose(code, reason);
    this.closeWith(code, reason);
  }

  /**
   * Starts the close handshake with any code the library may send (1001,
   * 1003, 1008, 1009, 1011…). Not for applications: use `close`.
   */
  closeWith(code: number, reason: string): void {
    reason = truncateCloseReason(reason);
    if (this.#readyState === ReadyState.CONNECTING) {
      this.#pendingClose ??= { code, reason };
      return;
    }
    if (this.#readyState !== ReadyState.OPEN) return;
    this.#readyState = ReadyState.CLOSING;
    this.#sentClose = { code, reason };
    this.#abort?.abort();
    this.#closeTimer = setTimeout(
      () =>
        this.terminate(
          `peer did not answer the close frame within ${this.#init.limits.closeTimeout} ms`,
        ),
      this.#init.limits.closeTimeout,
    );
    try {
      this.#socket.close(code, reason);
    } catch (error) {
      this.#init.logger.warn("close failed", { conn: this.id, error });
      this.terminate("close frame could not be sent");
    }
  }

  /**
   * Treats the peer as gone without waiting any longer: the connection
   * finishes with 1006 and nothing more is routed to or from it. (Deno has no
   * per-socket terminate; the runtime frees the TCP socket when the peer or
   * the server's shutdown drops it.)
   */
  terminate(reason = "terminated"): void {
    this.#finish({ code: CloseCode.ABNORMAL, reason, wasClean: false });
  }

  #onOpen(): void {
    if (this.#readyState !== ReadyState.CONNECTING) return;
    this.#readyState = ReadyState.OPEN;
    const pending = this.#pendingClose;
    if (pending) {
      this.closeWith(pending.code, pending.reason);
      return;
    }
    this.#init.router.runOpen(this).catch((error) => {
      this.#init.logger.error("open handler failed", { conn: this.id, error });
      this.closeWith(CloseCode.INTERNAL_ERROR, "internal error");
    });
  }

  #onClose(event: CloseEvent): void {
    const info = normalizeCloseInfo(event.code, event.reason, event.wasClean);
    // When the server started the close, the peer's echo may carry no code
    // (Deno reports 1005 then): report what the server sent instead.
    const sent = this.#sentClose;
    if (sent && info.wasClean) this.#finish({ ...sent, wasClean: true });
    else this.#finish(info);
  }

  #onMessage(data: unknown): void {
    if (this.#readyState !== ReadyState.OPEN) return;
    const init = this.#init;
    const { router, logger, limits } = init;
    try {
      if (typeof data === "string") {
        init.metrics.messageIn(data.length);
        if (tooBig(data, limits.maxMessageSize)) return this.#tooBig();
        if (!this.#admit(data, data.length)) return;
        const pending = router.dispatchText(this, data, init);
        if (pending) this.#track(pending);
      } else if (data instanceof ArrayBuffer) {
        init.metrics.messageIn(data.byteLength);
        if (data.byteLength > limits.maxMessageSize) return this.#tooBig();
        if (!this.#admit(undefined, data.byteLength)) return;
        const pending = router.dispatchBinary(this, new Uint8Array(data), init);
        if (pending === false) {
          this.closeWith(
            CloseCode.UNSUPPORTED_DATA,
            "binary messages are not supported",
          );
        } else if (pending) this.#track(pending);
      }
    } catch (error) {
      logger.error("message routing failed", { conn: this.id, error });
      this.closeWith(CloseCode.INTERNAL_ERROR, "internal error");
    }
  }

  /** Rate limit and in-flight cap: `false` when the message was answered with an error instead. */
  #admit(text: string | undefined, bytes: number): boolean {
    const { rateLimit } = this.#init.limits;
    // The buckets are made on the first message: idle connections pay nothing.
    if (rateLimit && this.#rateLimit === undefined) {
      this.#rateLimit = new ConnectionRateLimit(rateLimit);
    }
    const verdict = this.#rateLimit?.admit(bytes) ?? "ok";
    if (verdict === "close") {
      this.#init.logger.warn("rate limit abuse", { conn: this.id });
      this.closeWith(CloseCode.POLICY_VIOLATION, "rate limit exceeded");
      return false;
    }
    if (verdict === "refuse") {
      this.#refuse(
        text,
        ErrorCode.RATE_LIMITED,
        "Too many messages: slow down",
      );
      return false;
    }
    if (this.#inFlight >= this.#init.limits.maxInFlight) {
      this.#refuse(
        text,
        ErrorCode.BUSY,
        "Too many requests in progress: wait for replies",
      );
      return false;
    }
    return true;
  }

  #refuse(text: string | undefined, code: string, message: string): void {
    const parsed = text === undefined ? undefined : parseEnvelope(text);
    const id = parsed?.ok ? parsed.envelope.id : parsed?.problem.id;
    this.#init.metrics.error(code);
    this.send(encodeError(id, code, message));
  }

  #track(pending: Promise<void>): void {
    this.#inFlight++;
    pending.finally(() => this.#inFlight--);
  }

  #tooBig(): void {
    this.#init.logger.info("message too big", { conn: this.id });
    this.closeWith(
      CloseCode.MESSAGE_TOO_BIG,
      `message exceeds ${this.#init.limits.maxMessageSize} bytes`,
    );
  }

  #finish(info: CloseInfo): void {
    if (this.#readyState === ReadyState.CLOSED) return;
    this.#readyState = ReadyState.CLOSED;
    clearTimeout(this.#closeTimer);
    this.#abort?.abort();
    for (const type of EVENTS) this.#socket.removeEventListener(type, this);
    const { logger, router, onFinished, pubsub } = this.#init;
    this.#leftTopics = new Set(pubsub.leaveAll(this));
    logger.info("connection closed", { conn: this.id, ...info });
    this.#init.metrics.closed(info.code);
    onFinished(this, info);
    router.runClose(this, info, this.#init).finally(() => {
      this.#closeInfo = info;
      this.#resolveFinished?.(info);
    });
  }
}

function tooBig(text: string, limit: number): boolean {
  if (text.length > limit) return true;
  if (text.length * 3 <= limit) return false;
  return utf8Length(text) > limit;
}
