/**
 * The typed event router: event name → payload schema → handler, plus the
 * binary handler and the connection lifecycle hooks. This is what an app
 * registers; `dispatch.ts` is how the server runs it.
 *
 * @module
 */

import type { PushMap } from "./context.ts";
import { MAX_EVENT_LENGTH } from "@duplex-ws/protocol";
import type { ServerRequest } from "./server_request.ts";
import {
  type InferInput,
  type InferOutput,
  isStandardSchema,
  type StandardSchemaV1,
} from "./standard_schema.ts";
export type {
  BinaryHandler,
  CloseHandler,
  ErrorSchemas,
  ErrorTypes,
  EventDefinition,
  EventDefinitions,
  EventDocs,
  EventHandler,
  EventOptions,
  OpenHandler,
  PushDocs,
  RequestDefinitions,
  Route,
  RouterDescription,
  RouterParts,
} from "./event_types.ts";
import type {
  BinaryHandler,
  CloseHandler,
  ErrorSchemas,
  ErrorTypes,
  EventDefinitions,
  EventDocs,
  EventHandler,
  EventOptions,
  OpenHandler,
  PushDocs,
  RequestDefinitions,
  Route,
  RouterDescription,
  RouterParts,
} from "./event_types.ts";

/** Reads a router's live parts; set by `EventRouter`'s static block. Internal. */
export let routerParts: <State, Push extends PushMap>(
  router: EventRouter<State, Push, EventDefinitions, RequestDefinitions>,
) => RouterParts<State, Push>;

/**
 * Describes a router: what the AsyncAPI generator (and any other
 * documentation tool) reads.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { describeRouter, EventRouter } from "./event_router.ts";
 * const router = new EventRouter().on("echo", z.string(), (s) => s, { summary: "Echoes" });
 * console.assert(describeRouter(router).events.get("echo")?.summary === "Echoes");
 * ```
 */
export function describeRouter(
  // deno-lint-ignore no-explicit-any
  router: EventRouter<any, any, EventDefinitions, RequestDefinitions>,
): RouterDescription {
  const { routes, pushes, requests, presence } = routerParts(router);
  const events = new Map<
    string,
    EventOptions & { readonly schema: StandardSchemaV1 }
  >();
  for (const [event, { handler: _handler, ...docs }] of routes) {
    events.set(event, docs);
  }
  return { events, pushes, requests, presence };
}

/**
 * Maps incoming messages to handlers with validated payloads.
 *
 * `on` returns the router with the new event in its type, so keep the
 * chain's result: its type is what the typed client reads.
 *
 * @typeParam State The per-connection state from `authenticate`.
 * @typeParam Push Pushes (server-to-client events) and their payloads.
 * @typeParam Events Client-to-server events, gathered by `on`.
 * @typeParam Requests Server-to-client requests, gathered by `request`.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { EventRouter } from "./event_router.ts";
 *
 * const router = new EventRouter<{ user: string }, { welcome: { user: string } }>()
 *   .onOpen((ctx) => { ctx.emit("welcome", { user: ctx.state.user }); })
 *   .on("add", z.object({ a: z.number(), b: z.number() }), ({ a, b }) => a + b);
 * console.assert(router.eventNames().includes("add"));
 * ```
 */
export class EventRouter<
  State = undefined,
  Push extends PushMap = PushMap,
  // deno-lint-ignore ban-types
  Events extends EventDefinitions = {},
  // deno-lint-ignore ban-types
  Requests extends RequestDefinitions = {},
  Meta = unknown,
> {
  #routes = new Map<string, Route>();
  #pushes = new Map<string, PushDocs>();
  #requests = new Map<string, ServerRequest>();
  #parts: RouterParts<State, Push> = {
    routes: this.#routes,
    pushes: this.#pushes,
    requests: this.#requests,
  };
  /** Type-only: the client-to-server events this router handles. */
  declare readonly events: Events;
  /** Type-only: the server-to-client events (pushes) of this router. */
  declare readonly pushes: Push;
  /** Type-only: the server-to-client requests of this router. */
  declare readonly requests: Requests;
  /** Type-only: the presence metadata of its topics (see `presence`). */
  declare readonly presenceMeta: Meta;

  /**
   * Registers the handler of one event.
   *
   * @param event The event name: 1–128 characters, not registered yet.
   * @param schema A Standard Schema for the payload (Zod, Valibot, ArkType…).
   * @param handler Gets the validated payload and the connection's context.
   * @param options The reply's schema, the error codes it may answer with,
   * and words, for the client's types and the AsyncAPI document.
   * @throws {TypeError} for a bad or duplicate name, or a schema that is not Standard Schema.
   */
  on<
    E extends string,
    S extends StandardSchemaV1,
    R,
    X extends ErrorSchemas = Record<never, never>,
    Chunks extends StandardSchemaV1 = StandardSchemaV1,
  >(
    event: E,
    schema: S,
    handler: EventHandler<InferOutput<S>, R, State, Push>,
    options: EventOptions & { errors?: X; stream?: Chunks } = {},
  ): EventRouter<
    State,
    Push,
    & Events
    & {
      [K in E]: {
        data: InferInput<S>;
        reply: Awaited<R>;
        errors: ErrorTypes<X>;
        chunk: InferOutput<Chunks>;
      };
    },
    Requests,
    Meta
  > {
    if (
      typeof event !== "string" || event.length === 0 ||
      event.length > MAX_EVENT_LENGTH
    ) {
      throw new TypeError(
        `Cannot register event: name must be 1-${MAX_EVENT_LENGTH} characters`,
      );
    }
    if (this.#routes.has(event)) {
      throw new TypeError(
        `Cannot register event: "${event}" is already registered`,
      );
    }
    if (!isStandardSchema(schema)) {
      throw new TypeError(
        `Cannot register event "${event}": schema does not implement Standard Schema v1`,
      );
    }
    this.#routes.set(event, {
      ...options,
      schema,
      handler: handler as Route["handler"],
    });
    return this as never;
  }

  /**
   * Documents a push with its schema, for the AsyncAPI document. The schema
   * must produce the push's declared type, so the two cannot drift.
   *
   * @throws {TypeError} for a schema that is not Standard Schema.
   */
  push<E extends keyof Push & string>(
    event: E,
    schema: StandardSchemaV1<unknown, Push[E]>,
    docs: EventDocs = {},
  ): this {
    if (!isStandardSchema(schema)) {
      throw new TypeError(
        `Cannot document push "${event}": schema does not implement Standard Schema v1`,
      );
    }
    this.#pushes.set(event, { ...docs, schema });
    return this;
  }

  /**
   * Registers a request the server sends to clients (made with
   * `defineRequest`): the typed client then knows its data and reply, and
   * the AsyncAPI document lists it. Send it with `ctx.request`.
   *
   * @throws {TypeError} when a request of that name is registered already.
   */
  request<E extends string, D, R>(
    definition: ServerRequest<E, D, R>,
  ): EventRouter<
    State,
    Push,
    Events,
    Requests & { [K in E]: { data: D; reply: R } },
    Meta
  > {
    if (this.#requests.has(definition.event)) {
      throw new TypeError(
        `Cannot register request: "${definition.event}" is already registered`,
      );
    }
    this.#requests.set(definition.event, definition as ServerRequest);
    return this as never;
  }

  /**
   * Declares the presence metadata its topics carry (what `ctx.join`'s
   * `presence.meta` holds): the typed client's `members()` gives it typed,
   * and the AsyncAPI document describes it. Not checked at run time.
   *
   * @throws {TypeError} for a schema that is not Standard Schema.
   */
  presence<S extends StandardSchemaV1>(
    schema: S,
  ): EventRouter<State, Push, Events, Requests, InferOutput<S>> {
    if (!isStandardSchema(schema)) {
      throw new TypeError(
        "Cannot declare presence metadata: schema does not implement Standard Schema v1",
      );
    }
    this.#parts.presence = schema;
    return this as never;
  }

  /** Registers the handler of binary messages; without one they close the connection with 1003. */
  binary(handler: BinaryHandler<State, Push>): this {
    this.#parts.binary = handler;
    return this;
  }

  /** Registers a hook run when a connection opens; a throw closes it with 1011. */
  onOpen(handler: OpenHandler<State, Push>): this {
    this.#parts.open = handler;
    return this;
  }

  /** Registers a hook run exactly once per connection, after it has closed. */
  onClose(handler: CloseHandler<State, Push>): this {
    this.#parts.close = handler;
    return this;
  }

  /** The registered event names. */
  eventNames(): string[] {
    return [...this.#routes.keys()];
  }

  static {
    // The dispatcher's way in: internals stay off the public surface.
    routerParts = (router) => router.#parts;
  }
}
