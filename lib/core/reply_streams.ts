/**
 * A node's streamed replies: it opens them (`ctx.stream`), gives their
 * topics a history the length of the resume window, answers the library's
 * `stream.resume` and `stream.cancel` on any node (asking the stream's own
 * node, named in its id, through the control plane), and stops a stream no
 * one has read for the resume window. What a client makes it keep is
 * bounded: streams per connection (opened or attached), chunks per stream,
 * and the window.
 *
 * @module
 */

import {
  encodePush,
  ErrorCode,
  isStreamId,
  isStreamPosition,
  ReadyState,
  STREAM_CANCEL,
  STREAM_ERROR,
  STREAM_RESUME,
  STREAM_TOPIC_PREFIX,
  type StreamOpening,
  type StreamResume,
  streamTopic,
} from "@duplex-ws/protocol";
import type { ControlPlane } from "./control.ts";
import type { DispatchTarget, LibraryRoute } from "./dispatch.ts";
import { EventError } from "./event_error.ts";
import type { Logger } from "./logger.ts";
import type { Member } from "./pubsub/hub.ts";
import type { PubSub } from "./pubsub/pubsub.ts";
import type { ResolvedTopicPolicy } from "./pubsub/topic_policy.ts";
import {
  ReplyStream,
  roomFor,
  type StreamHost,
  type StreamProducer,
} from "./reply_stream.ts";
import type { StandardSchemaV1 } from "./standard_schema.ts";

/** The bounds of streamed replies (server options; defaults in `SERVER_DEFAULTS`). */
export interface StreamLimits {
  /** Milliseconds a stream's chunks are kept, and a stream with no reader runs. */
  readonly streamWindow: number;
  /** Chunks a stream keeps at most for a resume. */
  readonly maxStreamChunks: number;
  /** Streams one connection may have open or attached at once. */
  readonly maxStreamsPerConnection: number;
  /** Chunks replayed at most to one reader (`maxReplay`). */
  readonly maxReplay: number;
}

/** A session as a stream sees it. */
export interface StreamSession extends Member {
  /** Its authenticated subject (none for guests). */
  readonly subject: string | undefined;
  /** Whether it is open. */
  readonly readyState: ReadyState;
  /** Bytes it can take now under half its buffer cap. */
  room(): number;
}

/** One stream this node runs. */
interface Entry {
  readonly stream: ReplyStream<unknown, unknown>;
  readonly subject: string | undefined;
  readonly requester: StreamSession;
  /** Since when no one has read it. */
  idle?: number;
  /** When it ended. */
  ended?: number;
}

/** What the streams need of the server. */
export interface ReplyStreamsOptions {
  /** The node's pub/sub. */
  readonly pubsub: PubSub;
  /** Messages to the other nodes. */
  readonly control: ControlPlane;
  /** Where failures go. */
  readonly logger: Logger;
  /** The bounds. */
  readonly limits: StreamLimits;
}

/** How long a node waits for a stream's node to answer. */
const ASK_TIMEOUT = 2_000;

/** The node's streamed replies (see the module docs). */
export class ReplyStreams {
  readonly #options: ReplyStreamsOptions;
  readonly #entries = new Map<string, Entry>();
  #sweeper: ReturnType<typeof setInterval> | undefined;

  /** Registers the control plane's handlers. */
  constructor(options: ReplyStreamsOptions) {
    this.#options = options;
    options.control.handle("stream.attach", (p) => this.#attach(p));
    options.control.handle("stream.cancel", (p) => this.#cancel(p));
  }

  /** Streams this node runs, ended ones still kept for a resume included. */
  get size(): number {
    return this.#entries.size;
  }

  /** Opens a stream for `session` (`ctx.stream`); it starts once replied. */
  open<Chunk, Result>(
    session: StreamSession,
    produce: StreamProducer<Chunk, Result>,
  ): ReplyStream<Chunk, Result> {
    const { pubsub, control } = this.#options;
    if (!pubsub.numbers) {
      throw new TypeError(
        "ctx.stream needs an engine that numbers publishes (local, Redis, Redis Cluster)",
      );
    }
    this.#charge(session, undefined);
    const id = `${control.node}.${crypto.randomUUID()}`;
    const stream = new ReplyStream(id, this.#host(session), produce);
    this.#entries.set(id, {
      stream: stream as ReplyStream<unknown, unknown>,
      subject: session.subject,
      requester: session,
    });
    this.#sweeper ??= setInterval(
      () => this.#sweep(),
      Math.min(1_000, Math.max(50, this.#options.limits.streamWindow / 4)),
    );
    return stream;
  }

  /** The library's `stream.resume` and `stream.cancel`, routed before the app's. */
  routes(): [string, LibraryRoute][] {
    return [
      [STREAM_RESUME, {
        schema: streamSchema(true),
        handler: (data, target) =>
          this.#resume(data as StreamResume, target as never),
      }],
      [STREAM_CANCEL, {
        schema: streamSchema(false),
        handler: (data, target) =>
          this.#cancelFor(data as { stream: string }, target as never),
      }],
    ];
  }

  /** Stops every stream (shutdown): readers are told `STREAM_EXPIRED`. */
  close(): void {
    clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    for (const { stream } of this.#entries.values()) {
      stream.stop(expired("The stream's server is shutting down"));
    }
    this.#entries.clear();
  }

  #host(session: StreamSession): StreamHost {
    const { pubsub, logger } = this.#options;
    return {
      logger,
      join: (topic) =>
        pubsub.join(session, topic).then((joined) => joined.position),
      publish: (topic, event, data) =>
        pubsub.publish(topic, event, data).then((done) => done.position),
      room: (signal) => roomFor(session, signal),
      failed: (stream, { code, message }) =>
        session.send(
          encodePush(STREAM_ERROR, {
            stream: stream.id,
            error: { code, message },
          }),
        ),
      finished: (stream) => {
        const entry = this.#entries.get(stream.id);
        if (entry) entry.ended = Date.now();
        pubsub.leave(session, stream.topic);
      },
    };
  }

  /** Refuses a connection's stream past its bound (`BUSY`, temporary). */
  #charge(session: StreamSession, topic: string | undefined): void {
    const { pubsub, limits } = this.#options;
    let count = 0;
    for (const joined of pubsub.topicsOf(session)) {
      if (joined === topic) return;
      if (joined.startsWith(STREAM_TOPIC_PREFIX)) count++;
    }
    if (count >= limits.maxStreamsPerConnection) {
      throw new EventError(
        ErrorCode.BUSY,
        `A connection may read at most ${limits.maxStreamsPerConnection} streams at once`,
      );
    }
  }

  async #resume(
    data: StreamResume,
    session: DispatchTarget<unknown, never> & StreamSession,
  ): Promise<StreamOpening> {
    const { pubsub, control, limits } = this.#options;
    const topic = streamTopic(data.stream);
    this.#charge(session, topic);
    const node = data.stream.slice(0, data.stream.indexOf("."));
    const [answer] = await control.ask(node, "stream.attach", {
      stream: data.stream,
      subject: session.subject,
    }, ASK_TIMEOUT);
    if (answer === "forbidden") {
      throw new EventError(ErrorCode.FORBIDDEN, "Not your stream");
    }
    if (answer !== "ok") {
      throw expired("The stream is over, or its node is gone");
    }
    const joined = await pubsub.join(
      session,
      topic,
      data.since ? { since: data.since } : { last: limits.maxReplay },
    );
    if (joined.recovered === false) {
      pubsub.leave(session, topic);
      throw expired("The chunks after that position are no longer kept");
    }
    const opening: StreamOpening = {
      stream: data.stream,
      topic,
      position: joined.position ?? null,
    };
    if (joined.recovered !== undefined) opening.recovered = joined.recovered;
    return opening;
  }

  async #cancelFor(
    data: { stream: string },
    session: DispatchTarget<unknown, never> & StreamSession,
  ): Promise<Record<string, never>> {
    const node = data.stream.slice(0, data.stream.indexOf("."));
    await this.#options.control.ask(node, "stream.cancel", {
      stream: data.stream,
      subject: session.subject,
    }, ASK_TIMEOUT);
    this.#options.pubsub.leave(session, streamTopic(data.stream));
    return {};
  }

  /** Another node (or this one) asks whether a reader may attach. */
  #attach(payload: unknown): string {
    const entry = this.#find(payload);
    if (!entry) return "expired";
    if (!entry.owned) return "forbidden";
    entry.entry.idle = undefined;
    return "ok";
  }

  /** A reader asks to stop a stream: its handler's signal aborts. */
  #cancel(payload: unknown): string {
    const entry = this.#find(payload);
    if (!entry?.owned) return entry ? "forbidden" : "expired";
    entry.entry.stream.stop(
      new EventError(ErrorCode.CANCELLED, "The stream was cancelled"),
    );
    return "ok";
  }

  #find(payload: unknown) {
    const { stream, subject } = (payload ?? {}) as Record<string, unknown>;
    const entry = typeof stream === "string"
      ? this.#entries.get(stream)
      : undefined;
    if (!entry) return undefined;
    // A guest's stream is read by whoever holds its (unguessable) id.
    return {
      entry,
      owned: entry.subject === undefined || entry.subject === subject,
    };
  }

  /** Forgets ended streams after the window; stops those no one reads. */
  #sweep(): void {
    const now = Date.now();
    const { pubsub, limits } = this.#options;
    for (const [id, entry] of this.#entries) {
      if (entry.ended !== undefined) {
        if (now - entry.ended > limits.streamWindow) this.#entries.delete(id);
        continue;
      }
      if (pubsub.memberCount(entry.stream.topic) > 0) entry.idle = undefined;
      else if ((entry.idle ??= now) + limits.streamWindow <= now) {
        entry.stream.stop(expired("No one read the stream for its window"));
      }
    }
    if (this.#entries.size === 0) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }
}

function expired(message: string): EventError {
  return new EventError(ErrorCode.STREAM_EXPIRED, message);
}

/** A stream topic's policy: history as long as the window, as many chunks as allowed. */
export function withStreamTopics(
  policyOf: (topic: string) => ResolvedTopicPolicy,
  limits: Pick<StreamLimits, "streamWindow" | "maxStreamChunks">,
): (topic: string) => ResolvedTopicPolicy {
  const policy: ResolvedTopicPolicy = {
    presence: undefined,
    // One more than the chunks: the end (or the error) is kept too.
    history: { size: limits.maxStreamChunks + 1, ttl: limits.streamWindow },
    latest: undefined,
  };
  return (topic) =>
    topic.startsWith(STREAM_TOPIC_PREFIX) ? policy : policyOf(topic);
}

/** `{stream}` (and `{since}` for a resume), nothing else. */
function streamSchema(resume: boolean): StandardSchemaV1 {
  return {
    "~standard": {
      version: 1,
      vendor: "duplex",
      validate(value) {
        const { stream, since, ...rest } = (value ?? {}) as StreamResume;
        const ok = typeof value === "object" && value !== null &&
          isStreamId(stream) && Object.keys(rest).length === 0 &&
          (since === undefined || (resume && isStreamPosition(since)));
        return ok ? { value: { stream, since } } : {
          issues: [{
            message: resume
              ? "Expected {stream, since?}: a stream id and a position"
              : "Expected {stream}: a stream id",
          }],
        };
      },
    },
  };
}
