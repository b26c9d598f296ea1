/**
 * The server's router as the client's types see it: `typeof router` on the
 * server gives the events, pushes and requests the client is typed with,
 * without any server code reaching the client.
 *
 * @module
 */

import type { LibraryPushes, StreamedReply } from "@duplex-ws/protocol";

/**
 * A router type, seen from the client: its events and its pushes. An
 * `EventRouter` chain's type (`typeof router`) has this shape.
 */
export interface RouterShape {
  /** Client-to-server events: name → `{ data, reply, errors? }`. */
  readonly events: Record<
    string,
    {
      data: unknown;
      reply: unknown;
      errors?: Record<string, unknown>;
      chunk?: unknown;
    }
  >;
  /** Pushes (server-to-client events): name → payload. */
  readonly pushes: Record<string, unknown>;
  /** Server-to-client requests: name → `{ data, reply }`. */
  readonly requests?: Record<string, { data: unknown; reply: unknown }>;
  /** The presence metadata of its topics (`router.presence(schema)`). */
  readonly presenceMeta?: unknown;
}

/** The presence metadata of a router type (`unknown` when undeclared). */
export type RouterPresence<R extends RouterShape> = unknown extends
  R["presenceMeta"] ? unknown : NonNullable<R["presenceMeta"]>;

/** The requests (server-to-client, with a reply) of a router type. */
export type RouterRequests<R extends RouterShape> = NonNullable<
  R["requests"]
>;

/** The events (client-to-server) of a router type. */
export type RouterEvents<R extends RouterShape> = R["events"];

/** The error codes an event of a router type declares, each with its `data`. */
export type EventErrors<R extends RouterShape, E extends keyof R["events"]> =
  NonNullable<R["events"][E]["errors"]>;

/** The pushes (server-to-client events) of a router type, with the library's own. */
export type RouterPushes<R extends RouterShape> = R["pushes"] & LibraryPushes;

/**
 * Answers one server request: its return value (awaited) is the reply; a
 * throw answers with an error (`code` when the thrown value has a string
 * one, else `HANDLER_ERROR`).
 */
export type RequestHandler<Data, Reply> = (
  data: Data,
) => Reply | Promise<Reply>;

/**
 * The chunks of an event answered with a stream: the schema declared with
 * `stream` in `on`'s options, else what the handler's `ctx.stream` writes.
 */
export type StreamChunkOf<R extends RouterShape, E extends keyof R["events"]> =
  unknown extends R["events"][E]["chunk"]
    ? R["events"][E]["reply"] extends StreamedReply<infer C, unknown> ? C
    : unknown
    : R["events"][E]["chunk"];

/** The result that ends an event's stream (the producer's return value). */
export type StreamResultOf<R extends RouterShape, E extends keyof R["events"]> =
  R["events"][E]["reply"] extends StreamedReply<unknown, infer X> ? X
    : unknown;
