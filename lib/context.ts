/**
 * What handlers see of their connection: a small, runtime-independent
 * surface (the router never touches a `WebSocket`).
 *
 * @module
 */

import type { ReadyState } from "./close_code.ts";

/** Server-to-client events: event name → payload type. */
export type EventMap = Record<string, unknown>;

/** What a push event's payload argument looks like: optional when the payload type allows `undefined`. */
export type PushArgs<Push extends EventMap, E extends keyof Push> =
  undefined extends Push[E] ? [data?: Push[E]] : [data: Push[E]];

/**
 * A connection as its handlers see it.
 *
 * @typeParam State The per-connection state `authenticate` returned.
 * @typeParam Push The server-to-client events and their payloads.
 */
export interface Context<State = unknown, Push extends EventMap = EventMap> {
  /** A unique id for this connection (a random UUID). */
  readonly id: string;
  /** The state `authenticate` returned for this connection. */
  readonly state: State;
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
}
