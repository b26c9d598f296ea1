/**
 * Streamed replies on the client: `client.stream(event, data)` reads a
 * stream's chunks in order, once, across reconnects (the stream's topic is
 * followed like a join: `stream.resume` with the last position after every
 * reconnect), and returns the handler's result at its end.
 *
 * @module
 */

import {
  ClientErrorCode,
  ErrorCode,
  isStreamOpening,
  STREAM_CANCEL,
  STREAM_CHUNK,
  STREAM_END,
  STREAM_ERROR,
  STREAM_RESUME,
  type StreamChunk,
  type StreamEnd,
  type StreamFailure,
  type StreamOpening,
} from "@duplex-ws/protocol";
import { RequestError } from "./errors.ts";
import type { Call } from "./requests.ts";
import type { Push, RejoinEvent } from "./topic_stream.ts";

/** A streamed reply being read: `for await` its chunks; `result` is its end. */
export interface ChunkStream<Chunk, Result> extends AsyncIterable<Chunk> {
  /** The stream's id, once the server has answered. */
  readonly id: string | undefined;
  /**
   * The handler's result once the stream ends; rejects with a
   * `RequestError` (`STREAM_EXPIRED`, `CANCELLED`, the handler's code…).
   */
  readonly result: Promise<Result>;
  /** Stops the stream on the server (its handler's signal aborts) and here. */
  cancel(): void;
  /** Reads the next chunk; `done` with the result at the end. */
  next(): Promise<IteratorResult<Chunk, Result>>;
}

/** What the readers need of the client. */
export interface ReadersPort {
  /** Sends a request. */
  readonly call: Call;
  /** Follows a stream's topic like a join (`stream.resume` after reconnects). */
  follow(event: string, data: unknown, reply: unknown): void;
  /** Stops following it. */
  leave(event: string, data: unknown): void;
}

/** Frames kept at most for a stream whose reader is not bound yet. */
const MAX_EARLY = 10_000;
/** Milliseconds an announced stream waits for its reader. */
const BIND_WAIT = 10_000;

type Waiter = {
  resolve: (r: IteratorResult<unknown, unknown>) => void;
  reject: (e: Error) => void;
};

/** One stream's reader. */
class Reader implements ChunkStream<unknown, unknown> {
  id: string | undefined;
  readonly result: Promise<unknown>;
  readonly #readers: ReplyReaders;
  readonly #chunks: unknown[] = [];
  readonly #waiters: Waiter[] = [];
  #end: { result: unknown } | { error: Error } | undefined;
  #settle!: { resolve: (r: unknown) => void; reject: (e: Error) => void };

  constructor(readers: ReplyReaders) {
    this.#readers = readers;
    this.result = new Promise((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    this.result.catch(() => {});
  }

  get ended(): boolean {
    return this.#end !== undefined;
  }

  chunk(chunk: unknown): void {
    if (this.#end) return;
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve({ value: chunk, done: false });
    else this.#chunks.push(chunk);
  }

  finish(end: { result: unknown } | { error: Error }): void {
    if (this.#end) return;
    this.#end = end;
    if ("error" in end) this.#settle.reject(end.error);
    else this.#settle.resolve(end.result);
    if (this.#chunks.length > 0) return;
    for (const waiter of this.#waiters.splice(0)) this.#deliverEnd(waiter);
  }

  cancel(): void {
    this.#readers.cancel(this);
  }

  next(): Promise<IteratorResult<unknown, unknown>> {
    if (this.#chunks.length > 0) {
      return Promise.resolve({ value: this.#chunks.shift(), done: false });
    }
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      if (this.#end) this.#deliverEnd(waiter);
      else this.#waiters.push(waiter);
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<unknown, unknown> {
    return {
      next: () => this.next(),
      // `break` in a `for await`: the stream is not wanted any more.
      return: (value?: unknown) => {
        if (!this.#end) this.cancel();
        return Promise.resolve({ value, done: true });
      },
    };
  }

  #deliverEnd(waiter: Waiter): void {
    const end = this.#end!;
    if ("error" in end) waiter.reject(end.error);
    else waiter.resolve({ value: end.result, done: true });
  }
}

/** Frames that came for a stream before its reader was bound. */
interface Early {
  frames: Push[];
  timer: ReturnType<typeof setTimeout>;
}

/** The client's stream readers (see the module docs). */
export class ReplyReaders {
  readonly #port: ReadersPort;
  readonly #readers = new Map<string, Reader>();
  readonly #early = new Map<string, Early>();

  /** @param port The client. */
  constructor(port: ReadersPort) {
    this.#port = port;
  }

  /** Sends the request and reads the stream its reply opens. */
  open(
    call: () => Promise<unknown>,
    id?: string,
  ): ChunkStream<unknown, unknown> {
    const reader = new Reader(this);
    // A known stream's replay comes before the reply: read it already.
    if (id !== undefined) this.#readers.set(reader.id = id, reader);
    call().then((reply) => {
      if (!isStreamOpening(reply)) return reader.finish({ result: reply });
      this.#bind(reader, reply);
    }, (error: Error) => {
      if (id !== undefined) this.#readers.delete(id);
      reader.finish({ error });
    });
    return reader;
  }

  /** Reads a running stream by id from the first chunk still kept (another tab's). */
  attach(stream: string): ChunkStream<unknown, unknown> {
    return this.open(
      () => this.#port.call(STREAM_RESUME, { stream }, {}, false),
      stream,
    );
  }

  /**
   * A reply opened a stream (called as the reply arrives, before its
   * caller runs): frames until the reader is bound are kept.
   */
  announce(opening: StreamOpening): void {
    if (this.#readers.has(opening.stream)) return;
    if (this.#early.has(opening.stream)) return;
    const timer = setTimeout(
      () => this.#early.delete(opening.stream),
      BIND_WAIT,
    );
    this.#early.set(opening.stream, { frames: [], timer });
  }

  /** A push: `true` when it was a stream's frame (taken here). */
  push(push: Push): boolean {
    const { event } = push;
    if (
      event !== STREAM_CHUNK && event !== STREAM_END && event !== STREAM_ERROR
    ) {
      return false;
    }
    const id = (push.data as { stream?: unknown } | null)?.stream;
    if (typeof id !== "string") return true;
    const reader = this.#readers.get(id);
    if (reader) return this.#apply(id, reader, push), true;
    const early = this.#early.get(id);
    if (early && early.frames.length < MAX_EARLY) early.frames.push(push);
    return true;
  }

  /** A rejoin went wrong for a stream: its reader fails. */
  rejoined(event: RejoinEvent): void {
    if (event.event !== STREAM_RESUME) return;
    const id = (event.data as { stream?: unknown } | null)?.stream;
    const reader = typeof id === "string" ? this.#readers.get(id) : undefined;
    if (!reader) return;
    if (event.error) this.#close(id as string, reader, { error: event.error });
    else if (event.recovered === false) {
      this.#close(id as string, reader, {
        error: new RequestError(ErrorCode.STREAM_EXPIRED, "Chunks were lost"),
      });
    }
  }

  /** Stops a stream on the server and here. */
  cancel(reader: Reader): void {
    const id = reader.id;
    const error = new RequestError(ErrorCode.CANCELLED, "Cancelled");
    if (id === undefined) return reader.finish({ error });
    this.#close(id, reader, { error });
    this.#port.call(STREAM_CANCEL, { stream: id }, {}, false).catch(() => {});
  }

  /** The client closed for good: every reader fails with `code`. */
  end(code: string, reason: string): void {
    for (const early of this.#early.values()) clearTimeout(early.timer);
    this.#early.clear();
    const error = new RequestError(code, reason);
    for (const [id, reader] of this.#readers) {
      this.#close(id, reader, { error });
    }
  }

  #bind(reader: Reader, opening: StreamOpening): void {
    const id = opening.stream;
    reader.id = id;
    this.#readers.set(id, reader);
    this.#port.follow(STREAM_RESUME, { stream: id }, opening);
    const early = this.#early.get(id);
    this.#early.delete(id);
    if (early) clearTimeout(early.timer);
    for (const push of early?.frames ?? []) this.#apply(id, reader, push);
  }

  #apply(id: string, reader: Reader, push: Push): void {
    if (push.event === STREAM_CHUNK) {
      return reader.chunk((push.data as StreamChunk).chunk);
    }
    if (push.event === STREAM_END) {
      this.#close(id, reader, { result: (push.data as StreamEnd).result });
      // Another node (or a later connection) may still count this one a reader.
      this.#port.call(STREAM_CANCEL, { stream: id }, {}, false).catch(() => {});
      return;
    }
    const { code, message, data } = (push.data as StreamFailure).error ?? {};
    this.#close(id, reader, {
      error: new RequestError(
        typeof code === "string" ? code : ClientErrorCode.CONNECTION_LOST,
        typeof message === "string" ? message : "The stream failed",
        data,
      ),
    });
  }

  #close(
    id: string,
    reader: Reader,
    end: { result: unknown } | { error: Error },
  ): void {
    this.#readers.delete(id);
    this.#port.leave(STREAM_RESUME, { stream: id });
    reader.finish(end);
  }
}
