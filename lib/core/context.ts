/**
 * What handlers see of their connection: a small, runtime-independent
 * surface (the router never touches a `WebSocket`).
 *
 * @module
 */

import type { ReadyState } from "@duplex-ws/protocol";
import type { StreamPosition } from "@duplex-ws/protocol";
import type { Presence } from "./pubsub/backplane.ts";
import type { HistoryOptions, TopicHistory } from "./pubsub/history_view.ts";
import type { ReplyStream, StreamProducer } from "./reply_stream.ts";
import type { ServerRequest, ServerRequestOptions } from "./server_request.ts";
import type {
  JoinOptions,
  JoinResult,
  PublishResult,
} from "./pubsub/pubsub.ts";

/** Pushes (server-to-client events): event name → payload type. */
export type PushMap = Record<string, unknown>;

/**
 * What a publish takes for a push: a push declared with its position (as a
 * topic with history delivers it, `offset` and `epoch` in its data) is
 * published without it; the engine adds it.
 */
export type PublishData<T> = T extends StreamPosition
  ? Omit<T, keyof StreamPosition>
  : T;

/** What a push event's payload argument looks like: optional when the payload type allows `undefined`. */
export type PushArgs<Push extends PushMap, E extends keyof Push> =
  undefined extends Push[E] ? [data?: Push[E]] : [data: Push[E]];

/** Options of {@linkcode Context.publish}. */
export interface PublishOptions {
  /**
   * Leave the publishing connection out (not in a topic with history, where
   * every member gets every publish so that positions stay contiguous).
   * @default {false}
   */
  excludeSelf?: boolean;
  /**
   * In a topic with history: an idempotency key, 1–128 characters chosen by
   * the client. A publish with a key seen within `publishKeyTtl` is not
   * published again: it answers the first one's position, `duplicate: true`.
   */
  key?: string;
  /**
   * In a topic with history: publish only if the topic's latest position is
   * still this one (`null`: only if the topic has no publish yet), decided
   * in the engine's one atomic step, so two nodes racing from the same
   * position never both win. Otherwise nothing is published and it throws
   * `PositionConflict` (`CONFLICT`, with the topic's position now): read the
   * topic again (`ctx.history`) and decide again.
   */
  ifPosition?: StreamPosition | null;
  /**
   * In a topic with history, on an engine that can (Postgres): the app's
   * own open transaction (postgres.js `sql.begin`'s `tx`). The publish is
   * stored in it and delivered, to every node this one included, if and
   * only if it commits; its position is the one it commits with.
   */
  transaction?: unknown;
}

/** Who a connection is, as its handlers see it (the `auth` option). */
export interface ConnectionIdentity {
  /** Who (a token's `sub`). */
  readonly subject: string;
  /** When the identity expires, in milliseconds since the epoch. */
  readonly expiresAt?: number;
  /** Whether it came without credentials. */
  readonly guest: boolean;
}

/**
 * A connection as its handlers see it.
 *
 * @typeParam State The per-connection state `authenticate` returned.
 * @typeParam Push The pushes (server-to-client events) and their payloads.
 */
export interface Context<State = unknown, Push extends PushMap = PushMap> {
  /** A unique id for this connection (a random UUID). */
  readonly id: string;
  /**
   * The state `authenticate` (or `auth`) gave this connection; with `auth`,
   * a refresh replaces it.
   */
  readonly state: State;
  /**
   * With the `auth` option: who the connection is (its subject, when its
   * identity expires, whether it is a guest). `undefined` without `auth`.
   */
  readonly identity: ConnectionIdentity | undefined;
  /** The negotiated subprotocol, or `""`. */
  readonly protocol: string;
  /** CONNECTING, OPEN, CLOSING or CLOSED. */
  readonly readyState: ReadyState;
  /** Aborted as soon as the connection starts closing: stop long work with it. */
  readonly signal: AbortSignal;
  /**
   * Pushes an event to this connection.
   * @returns `false` when the connection is not open and nothing was sent.
   */
  emit<E extends keyof Push & string>(
    event: E,
    ...data: PushArgs<Push, E>
  ): boolean;
  /**
   * Sends a request to this client and awaits its reply, validated by the
   * definition's `reply` schema (see `defineRequest`; docs/PROTOCOL.md §2.4).
   * Rejects with `EventError`: `TIMEOUT` (`options.timeout`, default
   * `requestTimeout`), `CONNECTION_LOST` (the client is gone, or goes before
   * it replies), `BUSY` (`maxPendingRequests` already awaiting),
   * `INVALID_DATA` (a reply that fails the schema) or the code of the
   * client's own error reply (`UNKNOWN_EVENT` when it has no handler).
   */
  request<D, R>(
    definition: ServerRequest<string, D, R>,
    data: D,
    options?: ServerRequestOptions,
  ): Promise<R>;
  /**
   * Sends a raw frame: a string as text, bytes as binary.
   * @returns `false` when the connection is not open and nothing was sent.
   */
  send(data: string | Uint8Array<ArrayBuffer> | ArrayBuffer): boolean;
  /**
   * Starts the close handshake. A close already under way is a no-op.
   *
   * @param code 1000 (default) or 3000–4999; other codes are the library's.
   * @param reason At most 123 UTF-8 bytes.
   * @throws {RangeError} for any other code, or a longer reason.
   */
  close(code?: number, reason?: string): void;
  /**
   * Joins a topic; await it. Membership is immediate (`topics` has it at
   * once); leaving happens by itself when the connection closes. In a topic
   * with presence, `options.presence` names the presence key and metadata;
   * joining again with other metadata updates it. In a topic with history,
   * `options.since` recovers what the connection missed (or answers
   * `recovered: false`) and `options.last` replays recent publishes; they
   * are sent before the promise settles, before any newer publish.
   * @returns What the join did: `joined: false` when already a member (or
   * not open), the position in a topic with history, `recovered`.
   * Rejects with `EventError` `BAD_TOPIC` (1-128 characters of
   * `A-Z a-z 0-9 _ . : -`), `TOO_MANY_TOPICS`, `RATE_LIMITED` (joining and
   * leaving too fast), `FORBIDDEN` (`auth.authorize` said no) or
   * `INVALID_DATA` (a bad presence key or metadata, `since` or `last`); a
   * handler lets it through as an error envelope.
   */
  join(topic: string, options?: JoinOptions): Promise<JoinResult>;
  /**
   * Leaves a topic.
   * @returns `false` when not a member.
   */
  leave(topic: string): boolean;
  /**
   * The topics this connection is in. In the close hook: the topics it was
   * in, which it has already left.
   */
  readonly topics: ReadonlySet<string>;
  /**
   * Pushes an event to every member of a topic on every node, this
   * connection included unless `excludeSelf`. The envelope is encoded once.
   * Rejects with `EventError` `BAD_TOPIC`, `RATE_LIMITED` (the fan-out
   * budget) or `FORBIDDEN` (`auth.authorize` said no).
   */
  publish<E extends keyof Push & string>(
    topic: string,
    event: E,
    data: PublishData<Push[E]>,
    options?: PublishOptions,
  ): Promise<PublishResult>;
  /**
   * The member count of a topic on every live node.
   * @throws {EventError} `BAD_TOPIC`.
   */
  presence(topic: string): Promise<Presence>;
  /**
   * Reads a topic with history from the engine: its last `last` publishes
   * (or those after `since`), decoded, and its position now even when
   * history keeps nothing. With `ifPosition` on the next publish, a
   * decision made on what was read holds on every node.
   * @throws {EventError} `BAD_TOPIC` for a topic without history.
   */
  history(topic: string, options?: HistoryOptions): Promise<TopicHistory>;
  /**
   * Answers the request with a stream: return what this gives. `produce`
   * runs once the reply is sent, `write`s chunks (each waits while the
   * connection is over its buffer cap) and returns the result (or throws an
   * `EventError`); the client reads the chunks in order, once, across
   * reconnects, on any node (docs/PROTOCOL.md §8).
   * @throws {EventError} `BUSY` past `maxStreamsPerConnection`.
   */
  stream<Chunk = unknown, Result = unknown>(
    produce: StreamProducer<Chunk, Result>,
  ): ReplyStream<Chunk, Result>;
}
