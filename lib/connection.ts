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
import { encodePush } from "./envelope.ts";
import type { EventDefinitions, EventRouter } from "./event_router.ts";
import type { Logger } from "./logger.ts";
import type { PublishResult, PubSub } from "./pubsub.ts";

/** What a {@linkcode Connection} needs besides its socket. */
export interface ConnectionInit<State, Push extends EventMap> {
  /** The connection id. */
  id: string;
  /** The per-connection state. */
  state: State;
  /** The negotiated subprotocol, or `""`. */
  protocol: string;
  /** Routes its messages. */
  router: EventRouter<State, Push, EventDefinitions>;
  /** The largest message accepted, in bytes; larger ones close with 1009. */
  maxMessageSize: number;
  /** How long to wait for the peer's close frame, in milliseconds. */
  closeTimeout: number;
  /** Where to log. */
  logger: Logger;
  /** Topic membership and publishing. */
  pubsub: PubSub;
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
  #abort = new AbortController();
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #pendingClose: { code: number; reason: string } | undefined;
  #sentClose: { code: number; reason: string } | undefined;
  #finished: Promise<CloseInfo>;
  #leftTopics: ReadonlySet<string> | undefined;
  #resolveFinished!: (info: CloseInfo) => void;

  /** Wraps a socket from `Deno.upgradeWebSocket`. */
  constructor(socket: WebSocket, init: ConnectionInit<State, Push>) {
    this.id = init.id;
    this.state = init.state;
    this.protocol = init.protocol;
    this.#socket = socket;
    this.#init = init;
    this.#finished = new Promise((resolve) => this.#resolveFinished = resolve);
    socket.binaryType = "arraybuffer";
    socket.onopen = () => this.#onOpen();
    socket.onmessage = (event) => this.#onMessage(event.data);
    socket.onclose = (event) => this.#onClose(event);
    socket.onerror = (event) => {
      const message = event instanceof ErrorEvent ? event.message : "error";
      this.#init.logger.debug("socket error", { conn: this.id, message });
    };
  }

  /** CONNECTING, OPEN, CLOSING or CLOSED. */
  get readyState(): ReadyState {
    return this.#readyState;
  }

  /** Aborted as soon as the connection starts closing. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Bytes queued by the runtime and not yet written to the peer. */
  get bufferedAmount(): number {
    return this.#socket.bufferedAmount;
  }

  /** Settles with the close info once the connection has finished. */
  get finished(): Promise<CloseInfo> {
    return this.#finished;
  }

  /** Pushes an event; `false` when not open. */
  emit<E extends keyof Push & string>(
    event: E,
    ...data: PushArgs<Push, E>
  ): boolean {
    return this.send(encodePush(event, data[0]));
  }

  /** Sends a raw text or binary frame; `false` when not open. */
  send(data: string | Uint8Array<ArrayBuffer> | ArrayBuffer): boolean {
    if (this.#readyState !== ReadyState.OPEN) return false;
    try {
      this.#socket.send(data);
      return true;
    } catch (error) {
      this.#init.logger.warn("send failed", { conn: this.id, error });
      return false;
    }
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
    this.#abort.abort();
    this.#closeTimer = setTimeout(
      () =>
        this.terminate(
          `peer did not answer the close frame within ${this.#init.closeTimeout} ms`,
        ),
      this.#init.closeTimeout,
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
    const { router, logger, maxMessageSize } = this.#init;
    try {
      if (typeof data === "string") {
        if (tooBig(data, maxMessageSize)) return this.#tooBig();
        router.dispatchText(this, data, logger);
      } else if (data instanceof ArrayBuffer) {
        if (data.byteLength > maxMessageSize) return this.#tooBig();
        if (!router.dispatchBinary(this, new Uint8Array(data), logger)) {
          this.closeWith(
            CloseCode.UNSUPPORTED_DATA,
            "binary messages are not supported",
          );
        }
      }
    } catch (error) {
      logger.error("message routing failed", { conn: this.id, error });
      this.closeWith(CloseCode.INTERNAL_ERROR, "internal error");
    }
  }

  #tooBig(): void {
    this.#init.logger.info("message too big", { conn: this.id });
    this.closeWith(
      CloseCode.MESSAGE_TOO_BIG,
      `message exceeds ${this.#init.maxMessageSize} bytes`,
    );
  }

  #finish(info: CloseInfo): void {
    if (this.#readyState === ReadyState.CLOSED) return;
    this.#readyState = ReadyState.CLOSED;
    clearTimeout(this.#closeTimer);
    this.#abort.abort();
    const socket = this.#socket;
    socket.onopen =
      socket.onmessage =
      socket.onerror =
      socket.onclose =
        null;
    const { logger, router, onFinished, pubsub } = this.#init;
    this.#leftTopics = new Set(pubsub.leaveAll(this));
    logger.info("connection closed", { conn: this.id, ...info });
    onFinished(this, info);
    router.runClose(this, info, logger).finally(() =>
      this.#resolveFinished(info)
    );
  }
}

function tooBig(text: string, limit: number): boolean {
  if (text.length > limit) return true;
  if (text.length * 3 <= limit) return false;
  return utf8Length(text) > limit;
}
