/**
 * The client's parts, wired together: the connection (`link.ts`), the
 * outbox and requests, the topics, the server's requests, the push
 * handlers, and what each connection's opening and closing means for them.
 * `DuplexClient` is the typed face of it.
 *
 * @module
 */

import {
  AUTH_REFRESH,
  type AuthRefreshRequest,
  ClientErrorCode,
  isStreamOpening,
  parseServerMessage,
} from "@duplex-ws/protocol";
import { Answers } from "./answers.ts";
import { deferred } from "./deferred.ts";
import { DeltaBases } from "./deltas.ts";
import { RequestError } from "./errors.ts";
import { type ClientState, Link } from "./link.ts";
import type { ResolvedClientOptions } from "./options.ts";
import { PushHandlers } from "./push_handlers.ts";
import { refreshToken } from "./refresh.ts";
import { ReplyReaders } from "./reply_reader.ts";
import { Requests } from "./requests.ts";
import { Topics } from "./topics.ts";
import type { Push } from "./topic_stream.ts";

/** One client's parts. */
export class ClientCore {
  /** The connection. */
  readonly link: Link;
  /** The outbox and the requests awaiting replies. */
  readonly requests: Requests;
  /** The joins, streams and presence. */
  readonly topics: Topics;
  /** The handlers of the server's requests. */
  readonly answers: Answers = new Answers();
  /** The push and binary handlers. */
  readonly pushes: PushHandlers = new PushHandlers();
  /** The streamed replies being read. */
  readonly readers: ReplyReaders;
  /** Milliseconds a request waits for its reply by default. */
  readonly requestTimeout: number;
  /** Waits of the refresh loop, cancelled by a close. */
  readonly #sleeps = new Set<ReturnType<typeof setTimeout>>();
  /** Whether the joins are being repeated: new messages wait in the outbox. */
  #settling = false;
  /** Counts connections, so a late answer knows whether its one is current. */
  #generation = 0;
  #ready = deferred();
  /** Whether `#ready` has resolved: the next loss starts a new one. */
  #isReady = false;
  /** The last push of each followed topic, for `topic.delta`. */
  readonly #deltas = new DeltaBases();
  /** The refresh under way, if the server asked for one. */
  #refreshing: Promise<void> | undefined;

  /** Builds the parts and connects at once. */
  constructor(options: ResolvedClientOptions) {
    this.requestTimeout = options.requestTimeout;
    const open = () => this.link?.isOpen ?? false;
    const closed = () => this.link?.state === "closed";
    const ready = () => open() && !this.#settling;
    this.requests = new Requests(
      { ready, open, closed, write: (text) => this.link.send(text) },
      options.outboxLimit,
      options.requestTimeout,
    );
    this.topics = new Topics({
      call: (event, data, options, now) =>
        this.requests.call(event, data, options, now),
      open,
      closed,
      deliver: (push) => this.#push(push),
      maxRetryDelay: options.maxReconnectDelay,
      forgot: (topic) => this.#deltas.forget(topic),
    });
    this.readers = new ReplyReaders({
      call: (event, data, options, now) =>
        this.requests.call(event, data, options, now),
      follow: (event, data, reply) => this.topics.follow(event, data, reply),
      leave: (event, data) => this.topics.leave(event, data),
    });
    this.topics.onRejoin((event) => this.readers.rejoined(event));
    this.#ready.promise.catch(() => {});
    this.link = new Link(options, {
      opened: () => this.#opened(),
      message: (data) => this.#message(data),
      closed: (code, _reason, next) => this.#closed(code, next),
    });
  }

  /** Whether binary frames may go out now (open, and not rejoining). */
  get sendable(): boolean {
    return this.link.isOpen && !this.#settling;
  }

  /** Resolves when open and rejoined; rejects once closed for good. */
  ready(): Promise<void> {
    if (this.link.state !== "closed" && !this.link.closedByUser) {
      return this.#ready.promise;
    }
    return Promise.reject(
      new RequestError(ClientErrorCode.CLOSED, "Client closed"),
    );
  }

  /** Closes for good. */
  close(code: number, reason: string): void {
    this.link.close(code, reason);
    this.#end("Client closed");
  }

  #opened(): void {
    const generation = ++this.#generation;
    this.#settling = true;
    this.topics.rejoinAll().then(() => {
      if (generation !== this.#generation || !this.link.isOpen) return;
      // The joins are repeated: resends, then the outbox, then open for all.
      this.#settling = false;
      this.requests.flush();
      this.#isReady = true;
      this.#ready.resolve();
    });
  }

  #closed(code: number, next: ClientState): void {
    this.#generation++;
    this.#settling = false;
    this.topics.closed();
    this.#cancelSleeps();
    if (next === "closed") return this.#end(`Connection closed (${code})`);
    if (next === "reconnecting" && this.#isReady) {
      this.#isReady = false;
      this.#ready = deferred();
      this.#ready.promise.catch(() => {});
    }
    this.requests.lost(code);
  }

  /** The client is closed for good: everything waiting fails with `CLOSED`. */
  #end(reason: string): void {
    this.#cancelSleeps();
    this.requests.end(ClientErrorCode.CLOSED, reason);
    this.topics.end(ClientErrorCode.CLOSED, reason);
    this.readers.end(ClientErrorCode.CLOSED, reason);
    this.#ready.reject(new RequestError(ClientErrorCode.CLOSED, reason));
  }

  #message(data: string | ArrayBuffer): void {
    if (typeof data !== "string") return this.pushes.binary(data);
    const message = parseServerMessage(data);
    if (message === undefined) return;
    if (message.kind === "push") {
      const push = this.#deltas.expand(message, data);
      return push ? this.#push(push) : this.topics.resume(message.topic!);
    }
    if (message.kind === "request") {
      const generation = this.#generation;
      return this.answers.answer(message, (text) => {
        if (generation === this.#generation && this.link.isOpen) {
          this.link.send(text);
        }
      });
    }
    if (message.kind === "error") {
      return this.requests.settle(message.id, undefined, message.error);
    }
    // A stream's frames may follow its opening before its caller runs.
    if (isStreamOpening(message.data)) this.readers.announce(message.data);
    this.requests.settle(message.id, message.data);
  }

  /** A push: in order and once for a topic with history, then to the handlers. */
  #push(push: Push): void {
    if (!this.topics.accept(push) || this.readers.push(push)) return;
    if (push.event === AUTH_REFRESH) {
      this.#refresh(push.data as AuthRefreshRequest);
    }
    this.pushes.push(push.event, push.data, push);
  }

  /** The server asks for a fresh token: see `refresh.ts`. */
  #refresh(request: AuthRefreshRequest): void {
    if (this.#refreshing || !this.link.refreshes) return;
    const generation = this.#generation;
    this.#refreshing = refreshToken({
      token: () => this.link.token(),
      call: (event, data, options, now) =>
        this.requests.call(event, data, options, now),
      current: () => generation === this.#generation && !this.link.closedByUser,
      failed: (error) => this.link.authError = error,
      sleep: (ms) =>
        new Promise((resolve) => {
          const timer = setTimeout(() => {
            this.#sleeps.delete(timer);
            resolve();
          }, ms);
          this.#sleeps.add(timer);
        }),
    }, request).finally(() => this.#refreshing = undefined);
  }

  #cancelSleeps(): void {
    for (const timer of this.#sleeps) clearTimeout(timer);
    this.#sleeps.clear();
  }
}
