/**
 * The protocol session of one connection, whatever its transport: who it
 * is (its state and identity over time), the `Context` its handlers see,
 * what its messages may do (its limiter), where they go (the dispatcher),
 * its topics and its requests to the client. The lifecycle under it is
 * `connection_state.ts`; the transport is whatever implements `Transport`.
 *
 * @module
 */

import {
  AUTH_REFRESH,
  type AuthRefreshReply,
  type ClientReplyEnvelope,
  type CloseInfo,
  encodePush,
  ReadyState,
  type WireError,
} from "@duplex-ws/protocol";
import { refreshIdentity } from "./auth/refresh.ts";
import { AuthSession } from "./auth/session.ts";
import { ConnectionState } from "./connection_state.ts";
import type { ReplyStream, StreamProducer } from "./reply_stream.ts";
import type {
  ConnectionIdentity,
  PublishData,
  PublishOptions,
  PushArgs,
  PushMap,
} from "./context.ts";
import type { DispatchTarget } from "./dispatch.ts";
import { EventError } from "./event_error.ts";
import { ConnectionLimiter, type Verdict } from "./limits.ts";
import { drained, roomUnder } from "./pubsub/paced.ts";
import type { Presence } from "./pubsub/backplane.ts";
import type { HistoryOptions, TopicHistory } from "./pubsub/history_view.ts";
import type {
  JoinOptions,
  JoinResult,
  PublishResult,
} from "./pubsub/pubsub.ts";
import {
  type ServerRequest,
  type ServerRequestOptions,
  ServerRequests,
} from "./server_request.ts";
import {
  joinTopic,
  leaveTopic,
  publishTo,
  type TopicAccess,
} from "./session_topics.ts";
import {
  LIMIT_LOG,
  type SessionInit,
  type SessionShared,
} from "./session_shared.ts";
import type { Transport } from "./transport.ts";

/**
 * A connection's session. Handlers see it as their `Context`. Internal:
 * applications only ever hold a `Context`.
 */
export class Session<State = unknown, Push extends PushMap = PushMap>
  extends ConnectionState
  implements DispatchTarget<State, Push> {
  /** The negotiated subprotocol, or `""`. */
  readonly protocol: string;
  /** The client's address, when known (counted per address until released). */
  readonly address: string | undefined;
  /** The authenticated subject counted against its limits (not for guests). */
  readonly subject: string | undefined;
  /** Pushes of a topic name it; a leave is told (`?push_topics=1`). */
  readonly namesTopics: boolean;
  #state: State;
  #auth: AuthSession<State> | undefined;
  #shared: SessionShared<State, Push>;
  #limiter: ConnectionLimiter | undefined;
  #requests: ServerRequests | undefined;
  #leftTopics: ReadonlySet<string> | undefined;

  /**
   * @param transport The connection under the session.
   * @param init What the handshake decided.
   * @param shared What every session of the server shares.
   */
  constructor(
    transport: Transport,
    init: SessionInit<State>,
    shared: SessionShared<State, Push>,
  ) {
    super(init.id, transport);
    this.#state = init.state;
    this.protocol = init.protocol;
    this.address = init.address;
    this.namesTopics = init.namesTopics ?? false;
    this.#shared = shared;
    const { identity } = init;
    this.subject = identity && !identity.guest ? identity.subject : undefined;
    if (identity) {
      this.#auth = new AuthSession(identity, shared.refreshGrace, {
        ask: (request) => this.send(encodePush(AUTH_REFRESH, request)),
        expire: () => this.closeFor("TOKEN_EXPIRED"),
      });
    }
  }

  /** The state the handshake (or the last refresh) gave it. */
  get state(): State {
    return this.#auth ? this.#auth.identity.state : this.#state;
  }

  /** Who it is, with the `auth` option. */
  get identity(): ConnectionIdentity | undefined {
    const identity = this.#auth?.identity;
    if (identity === undefined) return undefined;
    const { subject, expiresAt, guest = false } = identity;
    return { subject, expiresAt, guest };
  }

  /** The transport's kind (`websocket`, `sse`). */
  get transportKind(): string {
    return this.transport.kind;
  }

  /** Asks the client for a fresh token now (see `DuplexServer.reauthenticate`). */
  reauthenticate(): boolean {
    if (this.#auth === undefined || this.readyState !== ReadyState.OPEN) {
      return false;
    }
    this.#auth.request();
    return true;
  }

  /** Verifies a refreshed token and swaps the identity in (`auth/refresh.ts`). */
  refresh(token: string): Promise<AuthRefreshReply> {
    return refreshIdentity(this, this.#auth, this.#shared, token);
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
    if (this.readyState !== ReadyState.OPEN) return false;
    const bytes = typeof data === "string" ? data.length : data.byteLength;
    try {
      this.transport.send(data);
    } catch (error) {
      this.sendFailed(error);
      return false;
    }
    this.#shared.metrics.messageOut(bytes);
    const verdict = this.limiter().sent(bytes, this.transport);
    if (verdict) this.#act(verdict, undefined);
    return true;
  }

  /** Bytes it can queue now under half its `maxBufferedAmount` (paced sends wait past it). */
  room(): number {
    return roomUnder(this.#shared.limits.maxBufferedAmount, this.transport);
  }

  /** Resolves once a quarter of `maxBufferedAmount` or less is unsent; `false` once closed. */
  drained(): Promise<boolean> {
    const open = () => this.readyState === ReadyState.OPEN;
    const below = this.#shared.limits.maxBufferedAmount / 4;
    return drained(this.transport, open, below);
  }

  /** Whose request keys its are: its subject, or one scope for every guest. */
  get requestScope(): string {
    return this.subject ?? "guest";
  }

  /** Charges one request with a key (see `KeyRequester`). */
  keyedRefusal(): WireError | undefined {
    return this.limiter().keyedRequest();
  }

  /** Sends a request to this client and awaits its reply (see `Context.request`). */
  request<D, R>(
    definition: ServerRequest<string, D, R>,
    data: D,
    options: ServerRequestOptions = {},
  ): Promise<R> {
    const { maxPendingRequests, requestTimeout } = this.#shared;
    this.#requests ??= new ServerRequests(maxPendingRequests);
    return this.#requests.request(
      definition,
      data,
      options.timeout ?? requestTimeout,
      (text) => this.send(text),
    );
  }

  /** Settles a server request with the client's reply (the dispatcher's). */
  settleReply(reply: ClientReplyEnvelope): void {
    this.#requests?.settle(reply);
  }

  /** Joins a topic (see `Context.join`). */
  join(topic: string, options: JoinOptions = {}): Promise<JoinResult> {
    return joinTopic(this, this.#access(), topic, options);
  }

  /** Leaves a topic; `false` when not a member. */
  leave(topic: string): boolean {
    return leaveTopic(this, this.#shared.pubsub, topic);
  }

  /** Leaves a topic without charging it (the library's own decision). */
  leaveTopic(topic: string): boolean {
    return this.#shared.pubsub.leave(this, topic);
  }

  /** The topics it is in; once finished, the topics it was in. */
  get topics(): ReadonlySet<string> {
    return this.#leftTopics ?? this.#shared.pubsub.topicsOf(this);
  }

  /** Publishes to a topic on every node, charged to this connection's fan-out budget. */
  publish<E extends keyof Push & string>(
    topic: string,
    event: E,
    data: PublishData<Push[E]>,
    options: PublishOptions = {},
  ): Promise<PublishResult> {
    return publishTo(this, this.#access(), topic, event, data, options);
  }

  /** The member count of a topic on every live node. */
  presence(topic: string): Promise<Presence> {
    return this.#shared.pubsub.presence(topic);
  }

  /** Reads a topic's history (see `Context.history`). */
  history(topic: string, options?: HistoryOptions): Promise<TopicHistory> {
    return this.#shared.pubsub.history(topic, options);
  }

  /** Answers the request with a stream (see `Context.stream`). */
  stream<Chunk, Result>(
    produce: StreamProducer<Chunk, Result>,
  ): ReplyStream<Chunk, Result> {
    return this.#shared.replyStreams.open(this, produce);
  }

  /** A message arrived: judged by the limiter, then routed. */
  received(data: string | ArrayBuffer): void {
    if (this.readyState !== ReadyState.OPEN) return;
    const { metrics, dispatcher, logger } = this.#shared;
    try {
      if (typeof data === "string") {
        metrics.messageIn(data.length);
        const verdict = this.limiter().admitText(data);
        if (verdict) return this.#act(verdict, data);
        const pending = dispatcher.text(this, data);
        if (pending) this.#limiter!.track(pending);
        return;
      }
      metrics.messageIn(data.byteLength);
      const verdict = this.limiter().admitBinary(data.byteLength);
      if (verdict) return this.#act(verdict, undefined);
      if (!dispatcher.handlesBinary) return this.closeFor("UNSUPPORTED_DATA");
      const pending = dispatcher.binary(this, new Uint8Array(data));
      if (pending) this.#limiter!.track(pending);
    } catch (error) {
      logger.error("message routing failed", { conn: this.id, error });
      this.closeFor("INTERNAL");
    }
  }

  /** Its limiter, made on the first message or send: idle connections pay nothing. */
  limiter(): ConnectionLimiter {
    const { limits, budgets } = this.#shared;
    return this.#limiter ??= new ConnectionLimiter(
      limits,
      budgets.of(this.address),
    );
  }

  /** Throws a refusal for the handler to answer; a close is acted on. */
  charge(verdict: Verdict): void {
    if (verdict === undefined) return;
    if ("close" in verdict) return this.#act(verdict, undefined);
    throw new EventError(verdict.refuse, verdict.message);
  }

  /** What every session of the server shares. */
  protected get lifecycle(): SessionShared<State, Push> {
    return this.#shared;
  }

  /** Runs the open hook; a throw closes with 1011. */
  protected onOpen(): void {
    this.#shared.dispatcher.open(this).then((opened) => {
      if (!opened) this.closeFor("INTERNAL");
    });
  }

  /** Leaves every topic, rejects requests, stops the identity's timers. */
  protected onFinish(info: CloseInfo): void {
    const shared = this.#shared;
    this.#auth?.stop();
    this.#requests?.rejectAll();
    this.#leftTopics = new Set(shared.pubsub.leaveAll(this));
    shared.logger.info("connection closed", { conn: this.id, ...info });
    shared.metrics.closed(info.code);
    shared.onFinished(this, info);
  }

  /** Runs the app's close hook. */
  protected runCloseHook(info: CloseInfo): Promise<void> {
    return this.#shared.dispatcher.close(this, info);
  }

  /** Gives the connection's place back. */
  protected onRelease(): void {
    this.#shared.onReleased(this);
  }

  #access(): TopicAccess<State> {
    return {
      pubsub: this.#shared.pubsub,
      authorize: this.#shared.auth?.authorize,
      identity: () => this.#auth?.identity,
    };
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
}
