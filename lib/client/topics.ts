/**
 * The client's topics: the joins it repeats after every reconnect, each
 * topic's stream resumed from its last position (`since`), who is in a
 * topic with presence, and what `stream.reset`, `topic.left` and presence
 * pushes say.
 *
 * @module
 */

import {
  applyPresence,
  ClientErrorCode,
  isStreamPosition,
  PRESENCE_DIFF,
  PRESENCE_STATE,
  type PresenceDiff,
  type PresenceState,
  pushPosition,
  STREAM_RESET,
  type StreamPosition,
  type StreamReset,
  TEMPORARY_ERROR_CODES,
  TOPIC_LEFT,
  type TopicLeft,
} from "@duplex-ws/protocol";
import { Backoff } from "./backoff.ts";
import { RequestError } from "./errors.ts";
import type { Call } from "./requests.ts";
import {
  judge,
  type Push,
  type RejoinEvent,
  release,
  resumeData,
  type TopicStream,
} from "./topic_stream.ts";

export type { RejoinEvent } from "./topic_stream.ts";

/** A join the client repeats after every reconnect. */
interface JoinEntry {
  event: string;
  data: unknown;
  /** The topic, once a reply named it. */
  topic?: string;
  /** Rejoins refused for a while in a row (busy, rate limited, timed out). */
  retries?: Backoff;
  /** The caller of a join made while offline, answered by the first rejoin. */
  waiting?: { resolve: (reply: unknown) => void; reject: (e: Error) => void };
}

/** What the topics need of the client. */
export interface TopicsPort {
  /** Sends a request (`now`: before the outbox). */
  readonly call: Call;
  /** Whether the connection is open. */
  open(): boolean;
  /** Whether the client has closed for good. */
  closed(): boolean;
  /** Delivers a push (released from a rejoin) as if it had just arrived. */
  deliver(push: Push): void;
  /** The longest delay between a rejoin's retries. */
  readonly maxRetryDelay: number;
  /** The client no longer follows a topic. */
  forgot(topic: string): void;
}

/** The joins, streams and presence of one client. */
export class Topics {
  readonly #port: TopicsPort;
  readonly #joins = new Map<string, JoinEntry>();
  readonly #streams = new Map<string, TopicStream>();
  /** Topic → who is in it, from presence pushes. */
  readonly #presence = new Map<string, Map<string, unknown>>();
  readonly #listeners = new Set<(event: RejoinEvent) => void>();
  readonly #retries = new Set<ReturnType<typeof setTimeout>>(); // rejoins to retry

  /** @param port The client. */
  constructor(port: TopicsPort) {
    this.#port = port;
  }

  /** Calls `listener` after every rejoin; returns a function that stops it. */
  onRejoin(listener: (event: RejoinEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Joins now, or on the next connection; again after every reconnect. */
  join(event: string, data: unknown): Promise<unknown> {
    const key = joinKey(event, data);
    const entry: JoinEntry = { ...this.#joins.get(key), event, data };
    this.#joins.set(key, entry);
    const port = this.#port;
    if (port.closed()) {
      return Promise.reject(
        new RequestError(ClientErrorCode.CLOSED, "Client closed"),
      );
    }
    if (!port.open()) {
      // The rejoin on open sends it, once.
      return new Promise((resolve, reject) => {
        entry.waiting = { resolve, reject };
      });
    }
    return port.call(event, data, {}, true).then(
      (reply) => {
        this.#joined(key, reply, false);
        return reply;
      },
      (error: RequestError) => {
        // Refused (FORBIDDEN, BAD_TOPIC…): not a join to repeat.
        const lost = error.code === ClientErrorCode.CONNECTION_LOST ||
          TEMPORARY_ERROR_CODES.has(error.code);
        if (!lost && this.#joins.get(key) === entry) this.#joins.delete(key);
        throw error;
      },
    );
  }

  /** Follows what a reply opened (a stream) as if it were a join's. */
  follow(event: string, data: unknown, reply: unknown): void {
    const key = joinKey(event, data);
    this.#joins.set(key, { event, data });
    this.#joined(key, reply, false);
  }

  /** Stops repeating a join. */
  leave(event: string, data: unknown): void {
    const key = joinKey(event, data);
    const topic = this.#joins.get(key)?.topic;
    this.#joins.delete(key);
    if (topic !== undefined) this.#forget(topic);
  }

  /** Who is in a topic with presence, as the server last told. */
  members(topic: string): ReadonlyMap<string, unknown> {
    return this.#presence.get(topic) ?? new Map();
  }

  /** The last position delivered from a topic with history. */
  position(topic: string): StreamPosition | undefined {
    return this.#streams.get(topic)?.position;
  }

  /** Whether the last rejoin of a topic got every publish it missed. */
  recovered(topic: string): boolean | undefined {
    return this.#streams.get(topic)?.recovered;
  }

  /** A connection opened: repeats every join, resuming each stream. */
  rejoinAll(): Promise<unknown> {
    return Promise.allSettled(
      [...this.#joins].map(([key, entry]) => this.#rejoin(key, entry)),
    );
  }

  /** The connection closed: rejoins under way and held pushes are dropped. */
  closed(): void {
    for (const stream of this.#streams.values()) {
      stream.resuming = false;
      stream.held.length = 0;
    }
    for (const retry of this.#retries) clearTimeout(retry);
    this.#retries.clear();
  }

  /** The client closed for good: joins waiting for a connection fail with `code`. */
  end(code: string, reason: string): void {
    this.closed();
    for (const entry of this.#joins.values()) {
      entry.waiting?.reject(new RequestError(code, reason));
      entry.waiting = undefined;
    }
  }

  /**
   * Judges a push: `true` to deliver it now; `false` when it is held (a
   * rejoin is on its way), a duplicate, or the start of a resume. Applies
   * what the library's pushes say about topics.
   */
  accept(push: Push): boolean {
    const position = push.topic && pushPosition(push.data);
    if (push.topic !== undefined && position) {
      const stream = this.#stream(push.topic);
      const resumable = this.#resumable(push.topic);
      const step = judge(stream, position, resumable, push.conflated);
      if (step === "hold") stream.held.push(push);
      if (step === "resume") this.resume(push.topic);
      if (step !== "deliver") return false;
    }
    const topic = (push.data as { topic?: unknown } | null)?.topic;
    if (typeof topic !== "string") return true;
    if (push.event === STREAM_RESET) {
      this.resume((push.data as StreamReset).topic);
    }
    if (push.event === TOPIC_LEFT) {
      this.#forgetJoins((push.data as TopicLeft).topic);
    }
    if (push.event === PRESENCE_STATE || push.event === PRESENCE_DIFF) {
      let members = this.#presence.get(topic);
      if (!members) this.#presence.set(topic, members = new Map());
      applyPresence(members, push.data as PresenceState | PresenceDiff);
    }
    return true;
  }

  /** Joins again, resuming the topic's stream from the last position. */
  #rejoin(key: string, entry: JoinEntry): Promise<void> {
    const stream = this.#streams.get(entry.topic ?? "");
    let data = entry.data;
    if (stream?.position) {
      stream.resuming = true;
      stream.held.length = 0;
      data = resumeData(data, stream.position);
    }
    const waiting = entry.waiting;
    entry.waiting = undefined;
    return this.#port.call(entry.event, data, {}, true).then(
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
    entry.retries = undefined;
    const stream = this.#stream(topic);
    stream.joinKey = key;
    const { position, recovered } = reply as {
      position?: unknown;
      recovered?: unknown;
    };
    const at = isStreamPosition(position) ? position : undefined;
    stream.resuming = false;
    const deliver = (push: Push) => this.#port.deliver(push);
    if (recovered === false) {
      // Nothing was replayed; the app is told. What the server did send
      // from the current stream meanwhile is still delivered, in order.
      stream.position = undefined;
      release(stream, at?.epoch, true, deliver);
    } else {
      // The replay came before the reply and is held, in order.
      release(stream, stream.position?.epoch, false, deliver);
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
    const { event, data } = entry;
    this.#emit({
      event,
      data,
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
    const stream = this.#streams.get(entry.topic ?? "");
    if (stream) {
      stream.resuming = false;
      stream.held.length = 0;
    }
    if (TEMPORARY_ERROR_CODES.has(error.code)) {
      // The server is busy or this client over a budget: try again later.
      entry.retries ??= new Backoff(1_000, this.#port.maxRetryDelay);
      const retry = setTimeout(() => {
        this.#retries.delete(retry);
        if (this.#joins.get(key) === entry && this.#port.open()) {
          void this.#rejoin(key, entry);
        }
      }, entry.retries.next());
      this.#retries.add(retry);
      return;
    }
    const followed = stream?.position !== undefined;
    if (followed) stream!.recovered = false;
    // Refused: it is not joined, so stop repeating it.
    this.#joins.delete(key);
    const { event, data, topic } = entry;
    this.#emit({ event, data, topic, recovered: followed && false, error });
  }

  #emit(event: RejoinEvent): void {
    for (const listener of this.#listeners) listener(event);
  }

  #stream(topic: string): TopicStream {
    let stream = this.#streams.get(topic);
    if (!stream) {
      this.#streams.set(topic, stream = { resuming: false, held: [] });
    }
    return stream;
  }

  /** Whether a topic has a join that can resume it now. */
  #resumable(topic: string): boolean {
    const key = this.#streams.get(topic)?.joinKey;
    return key !== undefined && this.#joins.has(key) && this.#port.open();
  }

  /** The server asked for a rejoin, or the client saw a gap: resume the topic. */
  resume(topic: string): void {
    const stream = this.#streams.get(topic);
    if (!stream || stream.resuming || !this.#resumable(topic)) return;
    const key = stream.joinKey!;
    void this.#rejoin(key, this.#joins.get(key)!);
  }

  /** The server took the client out of a topic. */
  #forgetJoins(topic: string): void {
    for (const [key, entry] of this.#joins) {
      if (entry.topic === topic) this.#joins.delete(key);
    }
    this.#forget(topic);
  }

  #forget(topic: string): void {
    this.#port.forgot(topic);
    this.#streams.delete(topic);
    this.#presence.delete(topic);
  }
}

function joinKey(event: string, data: unknown): string {
  return `${event}\u0000${JSON.stringify(data ?? null)}`;
}
