/**
 * The router's type vocabulary: what an event takes, replies and may fail
 * with, its handlers and hooks, and what the dispatcher and documentation
 * tools read of a router. `event_router.ts` is the router itself.
 *
 * @module
 */

import type { CloseInfo } from "@duplex-ws/protocol";
import type { Context, PushMap } from "./context.ts";
import type { ServerRequest } from "./server_request.ts";
import type { InferOutput, StandardSchemaV1 } from "./standard_schema.ts";

/** A client-to-server event as the type system sees it: what it takes, what it replies. */
export interface EventDefinition {
  /** The payload the client sends (the schema's input type). */
  data: unknown;
  /** What the handler replies with. */
  reply: unknown;
  /** The error codes it declares, each with its `data`. */
  errors?: Record<string, unknown>;
}

/** Client-to-server events: event name → definition. */
export type EventDefinitions = Record<string, EventDefinition>;

/**
 * Handles one event. Its return value (awaited) is the reply when the client
 * sent an `id`; throw an {@linkcode EventError} to answer with your own code.
 */
export type EventHandler<Data, Reply, State, Push extends PushMap> = (
  data: Data,
  ctx: Context<State, Push>,
) => Reply | Promise<Reply>;

/** Handles one binary message. */
export type BinaryHandler<State, Push extends PushMap> = (
  data: Uint8Array<ArrayBuffer>,
  ctx: Context<State, Push>,
) => unknown;

/** Runs once when a connection opens. Throwing closes it with 1011. */
export type OpenHandler<State, Push extends PushMap> = (
  ctx: Context<State, Push>,
) => unknown;

/** Runs exactly once when a connection has closed. */
export type CloseHandler<State, Push extends PushMap> = (
  ctx: Context<State, Push>,
  info: CloseInfo,
) => unknown;

/** What an event, a push or a request says about itself, for the AsyncAPI document. */
export interface EventDocs {
  /** One line. */
  summary?: string;
  /** More, in CommonMark. */
  description?: string;
}

/** Options of {@linkcode EventRouter.on}. */
export interface EventOptions extends EventDocs {
  /**
   * The schema of the handler's reply: documentation for the AsyncAPI
   * document (replies are not validated at run time).
   */
  reply?: StandardSchemaV1;
  /**
   * The error codes the event may answer with (an `EventError`'s code),
   * each with the schema of its `data`: they type the client's
   * `RequestError` for this event (`client.isError`) and are listed in the
   * AsyncAPI document (not checked at run time).
   */
  errors?: ErrorSchemas;
  /**
   * The schema of the chunks the handler's stream writes (`ctx.stream`):
   * it types the client's `stream()` and is listed in the AsyncAPI
   * document (not checked at run time).
   */
  stream?: StandardSchemaV1;
}

/** Error codes → the schema of their `data`. */
export type ErrorSchemas = Record<string, StandardSchemaV1>;

/** What each declared error code's `data` is, by code. */
export type ErrorTypes<X extends ErrorSchemas> = {
  [C in keyof X]: InferOutput<X[C]>;
};

/** One registered event: its schema and handler. */
export interface Route extends EventOptions {
  /** Validates the payload. */
  schema: StandardSchemaV1;
  /** Runs with the validated payload. */
  handler: (data: unknown, ctx: Context<never, never>) => unknown;
}

/** A documented push: its schema and words. */
export interface PushDocs extends EventDocs {
  /** The schema of the push's payload. */
  schema: StandardSchemaV1;
}

/** Server-to-client requests as the type system sees them: event name → data and reply. */
export type RequestDefinitions = Record<string, EventDefinition>;

/** What the dispatcher reads of a router (internal to the library). */
export interface RouterParts<State, Push extends PushMap> {
  /** Event name → route. */
  routes: ReadonlyMap<string, Route>;
  /** The binary handler, if any. */
  binary?: BinaryHandler<State, Push>;
  /** The open hook, if any. */
  open?: OpenHandler<State, Push>;
  /** The close hook, if any. */
  close?: CloseHandler<State, Push>;
  /** Documented pushes, by event. */
  pushes: ReadonlyMap<string, PushDocs>;
  /** Registered server-to-client requests, by event. */
  requests: ReadonlyMap<string, ServerRequest>;
  /** The presence metadata's schema, if declared. */
  presence?: StandardSchemaV1;
}

/** What a router says about itself: its events, pushes and requests, without the handlers. */
export interface RouterDescription {
  /** Client-to-server events: name → payload schema, reply schema and words. */
  readonly events: ReadonlyMap<
    string,
    EventOptions & { readonly schema: StandardSchemaV1 }
  >;
  /** Documented pushes, by event. */
  readonly pushes: ReadonlyMap<string, PushDocs>;
  /** Registered server-to-client requests, by event. */
  readonly requests: ReadonlyMap<string, ServerRequest>;
  /** The presence metadata's schema, if declared. */
  readonly presence?: StandardSchemaV1;
}
