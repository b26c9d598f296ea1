/**
 * One WebSocket connection: its state machine (CONNECTING → OPEN → CLOSING →
 * CLOSED), sending and closing, the close timer, and the `Context` its
 * handlers see. It is the only module that touches a `WebSocket`; what a
 * message may do is judged by its limiter (`limits.ts`), and what it means
 * by the router.
 *
 * @module
 */

import {
  assertApplicationClose,
  CloseCode,
  type CloseInfo,
  LibraryClose,
  type LibraryCloseKind,
  normalizeCloseInfo,
  ReadyState,
  truncateCloseReason,
} from "./protocol/close_code.ts";
import { encodePush } from "./protocol/envelope.ts";
import {
  AUTH_REFRESH,
  type AuthRefreshReply,
  TOPIC_LEFT,
} from "./protocol/auth.ts";
import { ErrorCode } from "./protocol/error_code.ts";
import {
  AuthFailure,
  type AuthOptions,
  AuthUnavailableError,
  type Identity,
  type TopicAction,
} from "./auth/identity.ts";
import { AuthSession } from "./auth/session.ts";
import type { Presence } from "./pubsub/backplane.ts";
import type {
  JoinOptions,
  JoinResult,
  PublishResult,
  PubSub,
} from "./pubsub/pubsub.ts";
import type {
  ConnectionIdentity,
  Context,
  PublishData,
  PublishOptions,
  PushArgs,
  PushMap,
} from "./context.ts";
import type { Dispatcher } from "./dispatch.ts";
import type { ClientReplyEnvelope } from "./protocol/envelope.ts";
import {
  PendingRequests,
  type ServerRequest,
  type ServerRequestOptions,
} from "./server_request.ts";
import { EventError } from "./event_error.ts";
import {
  ConnectionLimiter,
  type ConnectionLimits,
  type Verdict,
} from "./limits.ts";
import type { Logger } from "./logger.ts";
import type { Metrics } from "./metrics.ts";

const EVENTS = ["open", "message", "close", "error"] as const;

/**
 * What a connection needs of a server-side WebSocket. Deno's socket from
 * `Deno.upgradeWebSocket` fits, and so does npm:ws's (the `./node`
 * transport), which also has a real `terminate()`.
 */
export interface ServerSocket {
  /** `"arraybuffer"` is set by the connection. */
  binaryType: BinaryType;
  /** Bytes queued and not yet written to the peer. */
  readonly bufferedAmount: number;
  /** Queues a frame. */
  send(data: string | Uint8Array<ArrayBuffer> | ArrayBuffer): void;
  /** Sends a close frame. */
  close(code?: number, reason?: string): void;
  /** Drops the TCP connection at once, when the transport can. */
  terminate?(): void;
  /** Subscribes the connection to open, message, close and error. */
  addEventListener(type: string, listener: EventListenerObject): void;
  /** Unsubscribes it. */
  removeEventListener(type: string, listener: EventListenerObject): void;
}

/** How a close the limiter decided is logged. */
const LIMIT_LOG: Record<LibraryCloseKind, ["info" | "warn", string]> = {
  TOO_BIG: ["info", "message too big"],
  RATE_LIMIT: ["warn", "rate limit abuse"],
  SLOW_CONSUMER: ["warn", "slow consumer"],
  SHUTDOWN: ["info", "shutdown"],
  UNSUPPORTED_DATA: ["info", "unsupported data"],
  INTERNAL: ["warn", "internal error"],
  TOKEN_EXPIRED: ["info", "token expired"],
  FORBIDDEN: ["warn", "identity refused"],
};

/**
 * What every connection of one server shares: made once per server, so an
 * idle connection costs only its own fields.
 */
export interface ConnectionShared<State, Push extends PushMap> {
  /** Routes its messages. */
  readonly dispatcher: Dispatcher<State, Push>;
  /** The per-connection limits. */
  readonly limits: ConnectionLimits;
  /** Milliseconds to wait for the peer's close frame. */
  readonly closeTimeout: number;
  /** Where to log. */
  readonly logger: Logger;
  /** Topic membership and publishing. */
  readonly pubsub: PubSub;
  /** The server's counters. */
  readonly metrics: Metrics;
  /** Identities, refreshes and topic permissions (the `auth` option). */
  readonly auth: AuthOptions<State> | undefined;
  /** Milliseconds a connection has to refresh once asked. */
  readonly refreshGrace: number;
  /** Milliseconds a server request waits for its reply by default. */
  readonly requestTimeout: number;
  /** Server requests that may await replies at once. */
  readonly maxPendingRequests: number;
  /** Called once when the connection has finished, before the close hook. */
  readonly onFinished: (
    connection: Connection<State, Push>,
    info: CloseInfo,
  ) => void;
  /**
   * Called once when the runtime has let go of the socket: at the finish
   * when the runtime's close came first, else when it comes (a peer that
   * stopped reading can hold a terminated socket open for as long as it
   * likes; until then it still holds a descriptor and its unsent data).
   */
  readonly onReleased: (connection: Connection<State, Push>) => void;
}

/** What the handshake decided about a connection. */
export interface ConnectionInit<State> {
  /** A unique id. */
  readonly id: string;
  /** The per-connection state `authenticate` returned (with `auth`: the identity's). */
  readonly state: State;
  /** With the `auth` option: who it is. */
  readonly identity?: Identity<State>;
  /** The negotiated subprotocol, or `""`. */
  readonly protocol: string;
  /** The client's address, when known. */
  readonly address?: string;
}

/**
 * A server-side WebSocket connection. Handlers see it as their
 * {@linkcode Context}. Internal: applications only ever hold a `Context`.
 */
export class Connection<State = unknown, Push extends PushMap = PushMap>
  implements Context<State, Push> {
  /** A unique id (a random UUID). */
  readonly id: string;
  /** The negotiated subprotocol, or `""`. */
  readonly protocol: string;
  /** The client's address, when known (counted per address until released). */
  readonly address: string | undefined;
  /** The authenticated subject counted against its limits (not for guests). */
  readonly subject: string | undefined;
  #state: State;
  #auth: AuthSession<State> | undefined;
  #socket: ServerSocket;
  #shared: ConnectionShared<State, Push>;
  #readyState: ReadyState = ReadyState.CONNECTING;
  #abort: AbortController | undefined;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #pendingClose: { code: number; reason: string } | undefined;
  #sentClose: { code: number; reason: string } | undefined;
  #finished: Promise<CloseInfo> | undefined;
  #closeInfo: CloseInfo | undefined;
  #leftTopics: ReadonlySet<string> | undefined;
  #resolveFinished: ((info: CloseInfo) => void) | undefined;
  #limiter: ConnectionLimiter | undefined;
  #requests: PendingRequests | undefined;
  #released = false;

  /**
   * Wraps a socket from `Deno.upgradeWebSocket` (or npm:ws).
   *
   * @param socket The server side of the WebSocket.
   * @param init What the handshake decided: id, state, identity, subprotocol.
   * @param shared What every connection of the server shares.
   */
  constructor(
    socket: ServerSocket,
    init: ConnectionInit<State>,
    shared: ConnectionShared<State, Push>,
  ) {
    this.id = init.id;
    this.#state = init.state;
    this.protocol = init.protocol;
    this.address = init.address;
    this.#socket = socket;
    this.#shared = shared;
    const { identity } = init;
    this.subject = identity && !identity.guest ? identity.subject : undefined;
    if (identity) {
      this.#auth = new AuthSession(identity, shared.refreshGrace, {
        ask: (request) => this.send(encodePush(AUTH_REFRESH, request)),
        expire: () => this.closeFor("TOKEN_EXPIRED"),
      });
    }
    socket.binaryType = "arraybuffer";
    // The connection itself handles the events: no closures per connection.
    for (const type of EVENTS) socket.addEventListener(type, this);
  }

  /** The socket's event listener (`EventListenerObject`). */
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
        this.#shared.logger.debug("socket error", { conn: this.id, message });
      }
    }
  }

  /** CONNECTING, OPEN, CLOSING or CLOSED. */
  get readyState(): ReadyState {
    return this.#readyState;
  }

  /** The state the handshake (or the last refresh) gave it. */
  get state(): State {
    return this.#state;
  }

  /** Who it is, with the `auth` option. */
  get identity(): ConnectionIdentity | undefined {
    const identity = this.#auth?.identity;
    if (identity === undefined) return undefined;
    return {
      subject: identity.subject,
      expiresAt: identity.expiresAt,
      guest: identity.guest ?? false,
    };
  }

  /** Asks the client for a fresh token now (see `DuplexServer.reauthenticate`). */
  reauthenticate(): boolean {
    if (this.#auth === undefined || this.#readyState !== ReadyState.OPEN) {
      return false;
    }
    this.#auth.request();
    return true;
  }

  /**
   * Verifies a token sent in `auth.refresh` and, for the same subject,
   * swaps the identity in; the topics it may no longer join are left
   * (`topic.left`). Rejects with `UNAUTHORIZED` (the token is refused; the
   * deadline stands) or `FORBIDDEN` (another subject: the connection is then
   * closed with 4503).
   */
  async refresh(token: string): Promise<AuthRefreshReply> {
    const auth = this.#shared.auth;
    const session = this.#auth;
    if (!auth?.refresh || !session) {
      throw new EventError(
        ErrorCode.UNAUTHORIZED,
        "This server does not take refreshed tokens",
      );
    }
    let result: Identity<State> | AuthFailure;
    try {
      result = await auth.refresh(token, session.identity);
    } catch (error) {
      if (error instanceof AuthFailure) result = error;
      else if (error instanceof AuthUnavailableError) {
        throw new EventError(
          ErrorCode.UNAUTHORIZED,
          "Credentials cannot be checked now: try again",
        );
      } else throw error;
    }
    const metrics = this.#shared.metrics;
    if (result instanceof AuthFailure) {
      metrics.refreshed(`token_${result.reason}`);
      throw new EventError(ErrorCode.UNAUTHORIZED, result.message);
    }
    if (result.subject !== session.identity.subject || result.guest) {
      metrics.refreshed("subject_changed");
      this.#shared.logger.warn("refresh for another subject", {
        conn: this.id,
        subject: session.identity.subject,
      });
      // After the error reply has gone out.
      setTimeout(() => this.closeFor("FORBIDDEN"), 0);
      throw new EventError(
        ErrorCode.FORBIDDEN,
        "The token is for another subject",
      );
    }
    if (this.#readyState !== ReadyState.OPEN) return {};
    session.replace(result);
    this.#state = result.state;
    metrics.refreshed("ok");
    await this.#reauthorize(result);
    return result.expiresAt === undefined
      ? {}
      : { expiresAt: result.expiresAt };
  }

  /** Leaves the topics a new identity may no longer join, and says why. */
  async #reauthorize(identity: Identity<State>): Promise<void> {
    const authorize = this.#shared.auth?.authorize;
    if (!authorize) return;
    for (const topic of [...this.topics]) {
      if (await authorize(identity, topic, "join")) continue;
      if (!this.#shared.pubsub.leave(this, topic)) continue;
      this.send(encodePush(TOPIC_LEFT, {
        topic,
        code: ErrorCode.FORBIDDEN,
        message: `No longer allowed in "${topic}"`,
      }));
    }
  }

  /**
   * Runs `auth.authorize` for a topic: `then` at once when it answers
   * synchronously (or there is no rule), after it when it is async; a no is
   * `FORBIDDEN` naming the topic.
   */
  #authorized<T>(
    topic: string,
    action: TopicAction,
    then: () => Promise<T>,
  ): Promise<T> {
    const authorize = this.#shared.auth?.authorize;
    const identity = this.#auth?.identity;
    if (!authorize || !identity) return then();
    const forbidden = () =>
      Promise.reject(
        new EventError(
          ErrorCode.FORBIDDEN,
          `Not allowed to ${action} "${topic}"`,
        ),
      );
    const verdict = authorize(identity, topic, action);
    if (verdict === true) return then();
    if (verdict === false) return forbidden();
    return verdict.then((ok) => ok ? then() : forbidden());
  }

  /** Aborted as soon as the connection starts closing (made on first use). */
  get signal(): AbortSignal {
    if (this.#abort === undefined) {
      this.#abort = new AbortController();
      if (this.#readyState >= ReadyState.CLOSING) this.#abort.abort();
    }
    return this.#abort.signal;
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

  /** Sends a request to this client and awaits its reply (see `Context.request`). */
  request<D, R>(
    definition: ServerRequest<string, D, R>,
    data: D,
    options: ServerRequestOptions = {},
  ): Promise<R> {
    const shared = this.#shared;
    this.#requests ??= new PendingRequests(shared.maxPendingRequests);
    return this.#requests.request(
      definition,
      data,
      options.timeout ?? shared.requestTimeout,
      (text) => this.send(text),
    );
  }

  /** Settles a server request with the client's reply. Internal (the dispatcher's). */
  settleReply(reply: ClientReplyEnvelope): void {
    this.#requests?.settle(reply);
  }

  /**
   * Sends a raw text or binary frame; `false` when not open. Never blocks:
   * a peer that lets more than `maxBufferedAmount` bytes pile up unread is
   * closed with 1013 "slow consumer".
   */
  send(data: string | Uint8Array<ArrayBuffer> | ArrayBuffer): boolean {
    if (this.#readyState !== ReadyState.OPEN) return false;
    const bytes = typeof data === "string" ? data.length : data.byteLength;
    try {
      this.#socket.send(data);
    } catch (error) {
      this.#shared.logger.warn("send failed", { conn: this.id, error });
      return false;
    }
    this.#shared.metrics.messageOut(bytes);
    const verdict = this.#limits().sent(bytes, this.#socket);
    if (verdict) this.#act(verdict, undefined);
    return true;
  }

  /** Joins a topic (see `Context.join`). */
  join(topic: string, options: JoinOptions = {}): Promise<JoinResult> {
    if (this.#readyState !== ReadyState.OPEN) {
      return Promise.resolve({ topic, joined: false });
    }
    if (this.topics.has(topic) && !options.since && !options.last) {
      return this.#join(topic, options);
    }
    return this.#authorized(topic, "join", () => this.#join(topic, options));
  }

  #join(topic: string, options: JoinOptions): Promise<JoinResult> {
    if (this.#readyState !== ReadyState.OPEN) {
      return Promise.resolve({ topic, joined: false });
    }
    try {
      const pubsub = this.#shared.pubsub;
      // A join changes presence; so does new presence metadata on a rejoin.
      if (!pubsub.topicsOf(this).has(topic) || options.presence) {
        this.#charge(this.#limits().topicChange());
      }
      // A replay sends what a publish to this member would: it is charged
      // to the fan-out budget, and refused while that is spent.
      const replays = options.since !== undefined || options.last !== undefined;
      if (replays) this.#charge(this.#limits().replay());
      const joining = pubsub.join(this, topic, options);
      if (!replays) return joining;
      return joining.then((result) => {
        const { count = 0, bytes = 0 } = result.replayed ?? {};
        this.#limits().replayed(count, bytes);
        return result;
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Leaves a topic; `false` when not a member. */
  leave(topic: string): boolean {
    const pubsub = this.#shared.pubsub;
    if (!pubsub.topicsOf(this).has(topic)) return false;
    this.#charge(this.#limits().topicChange());
    return pubsub.leave(this, topic);
  }

  /** The topics it is in; once finished, the topics it was in. */
  get topics(): ReadonlySet<string> {
    return this.#leftTopics ?? this.#shared.pubsub.topicsOf(this);
  }

  /**
   * Publishes an event to a topic on every node, charged to this
   * connection's fan-out budget (members reached × bytes).
   */
  publish<E extends keyof Push & string>(
    topic: string,
    event: E,
    data: PublishData<Push[E]>,
    options: PublishOptions = {},
  ): Promise<PublishResult> {
    return this.#authorized(
      topic,
      "publish",
      () => this.#publish(topic, event, data, options),
    );
  }

  #publish<E extends keyof Push & string>(
    topic: string,
    event: E,
    data: PublishData<Push[E]>,
    options: PublishOptions,
  ): Promise<PublishResult> {
    try {
      const pubsub = this.#shared.pubsub;
      const publication = pubsub.encode(topic, event, data);
      const size = "text" in publication
        ? publication.text.length
        : publication.head.length;
      this.#charge(this.#limits().publish(pubsub.memberCount(topic), size));
      return pubsub.publish(topic, publication, {
        exclude: options.excludeSelf ? this.id : undefined,
        key: options.key,
      });
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** The member count of a topic on every live node. */
  presence(topic: string): Promise<Presence> {
    return this.#shared.pubsub.presence(topic);
  }

  /** Starts the close handshake with an application code (1000, 3000–4999). */
  close(code: number = CloseCode.NORMAL, reason = ""): void {
    assertApplicationClose(code, reason);
    this.#closeWith(code, reason);
  }

  /** Starts the close handshake with one of the library's closes. */
  closeFor(kind: LibraryCloseKind): void {
    const { code, reason } = LibraryClose[kind];
    this.#closeWith(code, reason);
  }

  /**
   * Treats the peer as gone without waiting any longer: the connection
   * finishes with 1006 and nothing more is routed to or from it. A transport
   * that can (npm:ws) drops the TCP connection at once; Deno has no
   * per-socket terminate, so its socket stays counted until the runtime
   * closes it (the peer or the server's shutdown drops it).
   */
  terminate(reason = "terminated"): void {
    this.#finish({ code: CloseCode.ABNORMAL, reason, wasClean: false });
    this.#socket.terminate?.();
  }

  /** Whether the runtime has let go of the socket. */
  get released(): boolean {
    return this.#released;
  }

  #closeWith(code: number, reason: string): void {
    reason = truncateCloseReason(reason);
    if (this.#readyState === ReadyState.CONNECTING) {
      this.#pendingClose ??= { code, reason };
      return;
    }
    if (this.#readyState !== ReadyState.OPEN) return;
    this.#readyState = ReadyState.CLOSING;
    this.#sentClose = { code, reason };
    this.#abort?.abort();
    const { closeTimeout } = this.#shared;
    this.#closeTimer = setTimeout(
      () =>
        this.terminate(
          `peer did not answer the close frame within ${closeTimeout} ms`,
        ),
      closeTimeout,
    );
    try {
      this.#socket.close(code, reason);
    } catch (error) {
      this.#shared.logger.warn("close failed", { conn: this.id, error });
      this.terminate("close frame could not be sent");
    }
  }

  /** Throws a refusal for the handler to answer; a close is acted on. */
  #charge(verdict: Verdict): void {
    if (verdict === undefined) return;
    if ("close" in verdict) return this.#act(verdict, undefined);
    throw new EventError(verdict.refuse, verdict.message);
  }

  #limits(): ConnectionLimiter {
    // Made on the first message or send: idle connections pay nothing.
    return this.#limiter ??= new ConnectionLimiter(this.#shared.limits);
  }

  /** Acts on a verdict: a close, or a refusal the router answers. */
  #act(verdict: NonNullable<Verdict>, text: string | undefined): void {
    if ("close" in verdict) {
      const [level, message] = LIMIT_LOG[verdict.close];
      this.#shared.logger[level](message, { conn: this.id });
      this.closeFor(verdict.close);
    } else {
      this.#shared.dispatcher.reject(this, text, verdict);
    }
  }

  #onOpen(): void {
    if (this.#readyState !== ReadyState.CONNECTING) return;
    this.#readyState = ReadyState.OPEN;
    const pending = this.#pendingClose;
    if (pending) {
      this.#closeWith(pending.code, pending.reason);
      return;
    }
    this.#shared.dispatcher.open(this).then((opened) => {
      if (!opened) this.closeFor("INTERNAL");
    });
  }

  #onClose(event: CloseEvent): void {
    if (this.#readyState === ReadyState.CLOSED) return this.#release();
    const info = normalizeCloseInfo(event.code, event.reason, event.wasClean);
    // When the server started the close, the peer's echo may carry no code
    // (Deno reports 1005 then): report what the server sent instead.
    const sent = this.#sentClose;
    if (sent && info.wasClean) this.#finish({ ...sent, wasClean: true }, true);
    else this.#finish(info, true);
  }

  #onMessage(data: unknown): void {
    if (this.#readyState !== ReadyState.OPEN) return;
    const shared = this.#shared;
    try {
      if (typeof data === "string") {
        shared.metrics.messageIn(data.length);
        const verdict = this.#limits().admitText(data);
        if (verdict) return this.#act(verdict, data);
        const pending = shared.dispatcher.text(this, data);
        if (pending) this.#limiter!.track(pending);
      } else if (data instanceof ArrayBuffer) {
        shared.metrics.messageIn(data.byteLength);
        const verdict = this.#limits().admitBinary(data.byteLength);
        if (verdict) return this.#act(verdict, undefined);
        if (!shared.dispatcher.handlesBinary) {
          return this.closeFor("UNSUPPORTED_DATA");
        }
        const bytes = new Uint8Array(data);
        const pending = shared.dispatcher.binary(this, bytes);
        if (pending) this.#limiter!.track(pending);
      }
    } catch (error) {
      shared.logger.error("message routing failed", { conn: this.id, error });
      this.closeFor("INTERNAL");
    }
  }

  #finish(info: CloseInfo, runtimeClosed = false): void {
    if (this.#readyState === ReadyState.CLOSED) return;
    this.#readyState = ReadyState.CLOSED;
    clearTimeout(this.#closeTimer);
    this.#auth?.stop();
    this.#abort?.abort();
    this.#requests?.rejectAll();
    for (const type of EVENTS) {
      // Until the runtime closes the socket, its close event is still awaited.
      if (type !== "close" || runtimeClosed) {
        this.#socket.removeEventListener(type, this);
      }
    }
    const shared = this.#shared;
    this.#leftTopics = new Set(shared.pubsub.leaveAll(this));
    shared.logger.info("connection closed", { conn: this.id, ...info });
    shared.metrics.closed(info.code);
    shared.onFinished(this, info);
    if (runtimeClosed) this.#release();
    shared.dispatcher.close(this, info).finally(() => {
      this.#closeInfo = info;
      this.#resolveFinished?.(info);
    });
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#socket.removeEventListener("close", this);
    this.#shared.onReleased(this);
  }
}
