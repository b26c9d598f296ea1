/**
 * `ReplyStream`: what a handler that answers with a stream writes to
 * (`ctx.stream`). Its chunks are publishes to the stream's own topic, kept
 * for the resume window, so a reader that reconnects (to any node) gets
 * every chunk once; `reply_streams.ts` keeps the node's streams.
 *
 * @module
 */

import {
  ErrorCode,
  ReadyState,
  STREAM_CHUNK,
  STREAM_END,
  STREAM_ERROR,
  type StreamedReply,
  type StreamOpening,
  type StreamPosition,
  streamTopic,
} from "@duplex-ws/protocol";
import { EventError } from "./event_error.ts";
import type { Logger } from "./logger.ts";

/** Produces a stream's chunks; its result ends the stream, its throw fails it. */
export type StreamProducer<Chunk, Result> = (
  stream: ReplyStream<Chunk, Result>,
) => Result | Promise<Result>;

/** What a stream needs of its node (`ReplyStreams`). */
export interface StreamHost {
  /** Stores and delivers one frame of the stream; its position, or `undefined` when not stored. */
  publish(
    topic: string,
    event: string,
    data: Record<string, unknown>,
  ): Promise<StreamPosition | undefined>;
  /** Resolves once the requester can take more (at once when it is elsewhere, or `signal` aborts). */
  room(signal: AbortSignal): Promise<void>;
  /** Joins the requester to the stream's topic; its position there. */
  join(topic: string): Promise<StreamPosition | undefined>;
  /** A frame could not be stored: tell the requester directly. */
  failed(stream: ReplyStream<unknown, unknown>, error: EventError): void;
  /** The stream ended, failed or was stopped. */
  finished(stream: ReplyStream<unknown, unknown>): void;
  /** Where a producer's failure is logged. */
  readonly logger: Logger;
}

/**
 * A streamed reply, as its handler sees it: `write` chunks (each waits
 * while the requester's connection is over its buffer cap), then `end`
 * with a result or `error`; a producer's return value ends it and its
 * throw fails it. `signal` aborts when the client cancels, when no reader
 * has been attached for the resume window, or at shutdown.
 */
export class ReplyStream<Chunk = unknown, Result = unknown>
  implements StreamedReply<Chunk, Result> {
  /** Type-only: the chunk and result types, for the client. */
  declare readonly "~streamed"?: { chunk: Chunk; result: Result };
  /** The stream's id: `<node>.<uuid>`. */
  readonly id: string;
  /** Its topic, which carries the chunks. */
  readonly topic: string;
  readonly #host: StreamHost;
  readonly #produce: StreamProducer<Chunk, Result>;
  readonly #abort = new AbortController();
  #started = false;
  #done = false;
  /** The frames in the order they were written: each waits for the one before. */
  #last: Promise<unknown> = Promise.resolve();
  #position: StreamPosition | null = null;

  /**
   * A stream not started yet (`ReplyStreams.open` makes them).
   *
   * @param id Its id.
   * @param host Its node.
   * @param produce What writes it.
   */
  constructor(
    id: string,
    host: StreamHost,
    produce: StreamProducer<Chunk, Result>,
  ) {
    this.id = id;
    this.topic = streamTopic(id);
    this.#host = host;
    this.#produce = produce;
  }

  /** Aborts when the stream is cancelled, abandoned or its server stops. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /** Whether it has ended, failed or been stopped. */
  get done(): boolean {
    return this.#done;
  }

  /**
   * Writes one chunk (JSON). Resolves once it is stored and the requester
   * has room for more; rejects once the stream is done or stopped.
   */
  write(chunk: Chunk): Promise<void> {
    if (this.#done) {
      return Promise.reject(
        this.#abort.signal.reason ?? new Error("The stream has ended"),
      );
    }
    return this.#frame(STREAM_CHUNK, { stream: this.id, chunk })
      .then(() => this.#host.room(this.#abort.signal));
  }

  /** Ends the stream with a result (the client's iterator returns it). */
  end(result?: Result): Promise<void> {
    return this.#finish(STREAM_END, {
      stream: this.id,
      result: result ?? null,
    });
  }

  /** Fails the stream: the client's iterator throws a `RequestError` with `code`. */
  error(code: string, message: string, data?: unknown): Promise<void> {
    const error = data === undefined
      ? { code, message }
      : { code, message, data };
    return this.#finish(STREAM_ERROR, { stream: this.id, error });
  }

  /** The reply to the request: where to read the stream. */
  toJSON(): StreamOpening {
    return { stream: this.id, topic: this.topic, position: this.#position };
  }

  /** Runs the producer (once the reply has gone out). */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    Promise.resolve().then(() => this.#produce(this)).then(
      (result) => this.#done ? undefined : this.end(result),
      (error) => this.#failed(error),
    ).catch((error) => this.#host.logger.warn("stream not ended", { error }));
  }

  /**
   * Stops the stream: the signal aborts with `reason`, writes reject, and
   * readers get `reason`'s code in a `stream.error`.
   */
  stop(reason: EventError): void {
    if (this.#done) return;
    this.#done = true;
    this.#abort.abort(reason);
    const error = { code: reason.code, message: reason.message };
    this.#frame(STREAM_ERROR, { stream: this.id, error })
      .catch(() => {})
      .finally(() => this.#host.finished(this));
  }

  /** Joins the requester to the topic; resolves with the reply. */
  async opened(): Promise<StreamOpening> {
    this.#position = await this.#host.join(this.topic) ?? null;
    return this.toJSON();
  }

  #failed(error: unknown): Promise<void> | undefined {
    if (this.#done) return;
    if (error instanceof EventError) {
      return this.error(error.code, error.message, error.data);
    }
    this.#host.logger.error("stream handler failed", {
      stream: this.id,
      error,
    });
    return this.error(ErrorCode.HANDLER_ERROR, "Internal error");
  }

  #finish(event: string, data: Record<string, unknown>): Promise<void> {
    if (this.#done) return Promise.resolve();
    this.#done = true;
    const sent = this.#frame(event, data);
    return sent.finally(() => {
      this.#abort.abort(new Error("The stream has ended"));
      this.#host.finished(this);
    });
  }

  #frame(event: string, data: Record<string, unknown>): Promise<void> {
    const sent = this.#last.then(() =>
      this.#host.publish(this.topic, event, data)
    ).then((position) => {
      if (position) return void (this.#position = position);
      const error = new EventError(
        ErrorCode.BUSY,
        "The stream could not be stored: the engine is unavailable",
      );
      if (!this.#abort.signal.aborted) {
        this.#host.failed(this as ReplyStream<unknown, unknown>, error);
        this.stop(error);
      }
      throw error;
    });
    this.#last = sent.catch(() => {});
    return sent;
  }
}

/**
 * Resolves once `session` has room again (or is gone, or `signal` aborts):
 * polled from 1 ms up to every 50 ms, the poll cleared on an abort.
 */
export function roomFor(
  session: { readonly readyState: number; room(): number },
  signal: AbortSignal,
): Promise<void> {
  return new Promise((resolve) => {
    let wait = 1;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const check = () => {
      const open = session.readyState === ReadyState.OPEN;
      if (signal.aborted || !open || session.room() > 0) return done();
      timer = setTimeout(check, wait);
      wait = Math.min(wait * 2, 50);
    };
    signal.addEventListener("abort", done);
    check();
  });
}
