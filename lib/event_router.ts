/**
 * The typed event router: event name → payload schema → handler, plus the
 * binary handler and the connection lifecycle hooks.
 *
 * @module
 */

import type { CloseInfo } from "./close_code.ts";
import type { Context, EventMap } from "./context.ts";
import {
  encodeError,
  encodeReply,
  MAX_EVENT_LENGTH,
  type MessageId,
  parseEnvelope,
} from "./envelope.ts";
import { ErrorCode, EventError } from "./event_error.ts";
import type { Logger } from "./logger.ts";
import type { Metrics } from "./metrics.ts";
import {
  formatIssues,
  type InferInput,
  type InferOutput,
  isStandardSchema,
  type StandardSchemaResult,
  type StandardSchemaV1,
} from "./standard_schema.ts";

/** What dispatching needs from the server: where to log, what to count. */
export interface DispatchEnv {
  /** Where handler failures are logged. */
  readonly logger: Logger;
  /** Counts error envelopes by code, when given. */
  readonly metrics?: Metrics;
}

/** A client-to-server event as the type system sees it: what it takes, what it replies. */
export interface EventDefinition {
  /** The payload the client sends (the schema's input type). */
  data: unknown;
  /** What the handler replies with. */
  reply: unknown;
}

/** Client-to-server events: event name → definition. */
export type EventDefinitions = Record<string, EventDefinition>;

/**
 * Handles one event. Its return value (awaited) is the reply when the client
 * sent an `id`; throw an {@linkcode EventError} to answer with your own code.
 */
export type EventHandler<Data, Reply, State, Push extends EventMap> = (
  data: Data,
  ctx: Context<State, Push>,
) => Reply | Promise<Reply>;

/** Handles one binary message. */
export type BinaryHandler<State, Push extends EventMap> = (
  data: Uint8Array<ArrayBuffer>,
  ctx: Context<State, Push>,
) => unknown;

/** Runs once when a connection opens. Throwing closes it with 1011. */
export type OpenHandler<State, Push extends EventMap> = (
  ctx: Context<State, Push>,
) => unknown;

/** Runs exactly once when a connection has closed. */
export type CloseHandler<State, Push extends EventMap> = (
  ctx: Context<State, Push>,
  info: CloseInfo,
) => unknown;

interface Route {
  schema: StandardSchemaV1;
  handler: (data: unknown, ctx: Context<never, never>) => unknown;
}

/**
 * Maps incoming messages to handlers with validated payloads.
 *
 * `on` returns the router with the new event in its type, so keep the
 * chain's result: its type is what the typed client reads.
 *
 * @typeParam State The per-connection state from `authenticate`.
 * @typeParam Push Server-to-client events and their payloads.
 * @typeParam Events Client-to-server events, gathered by `on`.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { EventRouter } from "./event_router.ts";
 *
 * const router = new EventRouter<{ user: string }, { welcome: { user: string } }>()
 *   .onOpen((ctx) => { ctx.emit("welcome", { user: ctx.state.user }); })
 *   .on("add", z.object({ a: z.number(), b: z.number() }), ({ a, b }) => a + b);
 * console.assert(router.has("add"));
 * ```
 */
export class EventRouter<
  State = undefined,
  Push extends EventMap = EventMap,
  // deno-lint-ignore ban-types
  Events extends EventDefinitions = {},
> {
  #routes = new Map<string, Route>();
  #binary?: BinaryHandler<State, Push>;
  #open?: OpenHandler<State, Push>;
  #close?: CloseHandler<State, Push>;
  /** Type-only: the client-to-server events this router handles. */
  declare readonly events: Events;
  /** Type-only: the server-to-client events (pushes) of this router. */
  declare readonly pushes: Push;

  /**
   * Registers the handler of one event.
   *
   * @param event The event name: 1–128 characters, not registered yet.
   * @param schema A Standard Schema for the payload (Zod, Valibot, ArkType…).
   * @param handler Gets the validated payload and the connection's context.
   * @throws {TypeError} for a bad or duplicate name, or a schema that is not Standard Schema.
   */
  on<E extends string, S extends StandardSchemaV1, R>(
    event: E,
    schema: S,
    handler: EventHandler<InferOutput<S>, R, State, Push>,
  ): EventRouter<
    State,
    Push,
    Events & { [K in E]: { data: InferInput<S>; reply: Awaited<R> } }
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
    this.#routes.set(event, { schema, handler: handler as Route["handler"] });
    return this as never;
  }

  /** Registers the handler of binary messages; without one they close the connection with 1003. */
  binary(handler: BinaryHandler<State, Push>): this {
    this.#binary = handler;
    return this;
  }

  /** Registers a hook run when a connection opens; a throw closes it with 1011. */
  onOpen(handler: OpenHandler<State, Push>): this {
    this.#open = handler;
    return this;
  }

  /** Registers a hook run exactly once per connection, after it has closed. */
  onClose(handler: CloseHandler<State, Push>): this {
    this.#close = handler;
    return this;
  }

  /** Whether an event has a handler. */
  has(event: string): boolean {
    return this.#routes.has(event);
  }

  /** The registered event names. */
  eventNames(): string[] {
    return [...this.#routes.keys()];
  }

  /** Whether binary messages have a handler. */
  get handlesBinary(): boolean {
    return this.#binary !== undefined;
  }

  /**
   * Routes one text message: parse, look up, validate, run, reply. Never
   * throws: every problem becomes an error envelope on `ctx`.
   *
   * @returns A promise that settles when an asynchronous schema or handler
   * has finished (it never rejects), or `undefined` when all was done at once.
   */
  dispatchText(
    ctx: Context<State, Push>,
    text: string,
    env: DispatchEnv,
  ): Promise<void> | undefined {
    const parsed = parseEnvelope(text);
    if (!parsed.ok) {
      const { id, code, message } = parsed.problem;
      this.#sendError(ctx, env, id, code, message);
      return;
    }
    const { event, data, id } = parsed.envelope;
    const route = this.#routes.get(event);
    if (route === undefined) {
      this.#sendError(
        ctx,
        env,
        id,
        ErrorCode.UNKNOWN_EVENT,
        `Unknown event "${event}"`,
      );
      return;
    }
    let result;
    try {
      result = route.schema["~standard"].validate(data);
    } catch (error) {
      this.#fail(ctx, event, id, error, env);
      return;
    }
    if (result instanceof Promise) {
      return result.then(
        (settled) => this.#run(ctx, route, event, id, settled, env),
        (error) => this.#fail(ctx, event, id, error, env),
      );
    }
    return this.#run(ctx, route, event, id, result, env);
  }

  /**
   * Routes one binary message to the binary handler.
   *
   * @returns `false` when there is no binary handler; else as `dispatchText`.
   */
  dispatchBinary(
    ctx: Context<State, Push>,
    data: Uint8Array<ArrayBuffer>,
    env: DispatchEnv,
  ): Promise<void> | undefined | false {
    const handler = this.#binary;
    if (handler === undefined) return false;
    try {
      const out = handler(data, ctx);
      if (out instanceof Promise) {
        return out.then(
          () => {},
          (error) => this.#fail(ctx, "binary", undefined, error, env),
        );
      }
    } catch (error) {
      this.#fail(ctx, "binary", undefined, error, env);
    }
    return undefined;
  }

  /** Runs the open hook; resolves once it has finished, rejects if it failed. */
  async runOpen(ctx: Context<State, Push>): Promise<void> {
    await this.#open?.(ctx);
  }

  /** Runs the close hook, logging (never throwing) a failure. */
  async runClose(
    ctx: Context<State, Push>,
    info: CloseInfo,
    env: DispatchEnv,
  ): Promise<void> {
    try {
      await this.#close?.(ctx, info);
    } catch (error) {
      env.logger.error("close handler failed", { conn: ctx.id, error });
    }
  }

  #run(
    ctx: Context<State, Push>,
    route: Route,
    event: string,
    id: MessageId | undefined,
    result: StandardSchemaResult<unknown>,
    env: DispatchEnv,
  ): Promise<void> | undefined {
    if (result.issues) {
      this.#sendError(
        ctx,
        env,
        id,
        ErrorCode.INVALID_DATA,
        formatIssues(result.issues),
      );
      return;
    }
    let out: unknown;
    try {
      out = route.handler(result.value, ctx as Context<never, never>);
    } catch (error) {
      this.#fail(ctx, event, id, error, env);
      return;
    }
    if (out instanceof Promise) {
      return out.then(
        (value) => this.#reply(ctx, event, id, value, env),
        (error) => this.#fail(ctx, event, id, error, env),
      );
    }
    this.#reply(ctx, event, id, out, env);
  }

  #reply(
    ctx: Context<State, Push>,
    event: string,
    id: MessageId | undefined,
    value: unknown,
    env: DispatchEnv,
  ): void {
    if (id === undefined) return;
    let text: string;
    try {
      text = encodeReply(id, value);
    } catch (error) {
      this.#fail(ctx, event, id, error, env);
      return;
    }
    ctx.send(text);
  }

  #sendError(
    ctx: Context<State, Push>,
    env: DispatchEnv,
    id: MessageId | undefined,
    code: string,
    message: string,
  ): void {
    env.metrics?.error(code);
    ctx.send(encodeError(id, code, message));
  }

  #fail(
    ctx: Context<State, Push>,
    event: string,
    id: MessageId | undefined,
    error: unknown,
    env: DispatchEnv,
  ): void {
    if (error instanceof EventError) {
      this.#sendError(ctx, env, id, error.code, error.message);
      return;
    }
    env.logger.error("handler failed", { conn: ctx.id, event, error });
    this.#sendError(ctx, env, id, ErrorCode.HANDLER_ERROR, "Internal error");
  }
}
