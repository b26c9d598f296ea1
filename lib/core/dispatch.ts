/**
 * How the server runs an app's `EventRouter`: parse, look up, validate, run,
 * reply, and the lifecycle hooks. The dispatcher is the only writer of error
 * replies: the envelope's and the router's own, a handler's `EventError`,
 * and the refusals a connection's limits decide. Internal to the library.
 *
 * @module
 */

import type { Context, PushMap } from "./context.ts";
import type { StandardSchemaV1 } from "./standard_schema.ts";
import { EventError } from "./event_error.ts";
import { ReplyStream } from "./reply_stream.ts";
import {
  type EventDefinitions,
  type EventRouter,
  type Route,
  type RouterParts,
  routerParts,
} from "./event_router.ts";
import type { KeyedRequests, KeyRequester, Outcome } from "./keyed_requests.ts";
import type { Logger } from "./logger.ts";
import type { Metrics } from "./metrics.ts";
import type { CloseInfo } from "@duplex-ws/protocol";
import {
  type AuthRefreshReply,
  type ClientReplyEnvelope,
  encodeError,
  encodeReply,
  type MessageId,
  parseEnvelope,
} from "@duplex-ws/protocol";
import { ErrorCode } from "@duplex-ws/protocol";
import { formatIssues, type StandardSchemaResult } from "./standard_schema.ts";

/** What dispatching needs from the server: where to log, what to count. */
export interface DispatchEnv {
  /** Where handler failures are logged. */
  readonly logger: Logger;
  /** Counts error envelopes by code, when given. */
  readonly metrics?: Metrics;
  /** The library's own events (`auth.refresh`), routed before the app's. */
  readonly library?: ReadonlyMap<string, LibraryRoute>;
  /** Runs requests that carry a key once per key (absent: keys are ignored). */
  readonly keyed?: KeyedRequests;
}

/**
 * What the dispatcher runs a message on: the handlers' `Context`, plus what
 * the library's own routing needs of the session (settling replies to its
 * server requests, refreshing its identity).
 */
export interface DispatchTarget<State, Push extends PushMap>
  extends Context<State, Push>, KeyRequester {
  /** Settles the server request a client's reply answers. */
  settleReply(reply: ClientReplyEnvelope): void;
  /** Verifies a refreshed token and swaps the identity in (`auth.refresh`). */
  refresh(token: string): Promise<AuthRefreshReply>;
}

/** One of the library's own events (`auth.refresh`), routed before the app's. */
export interface LibraryRoute {
  /** Validates the payload. */
  readonly schema: StandardSchemaV1;
  /** Runs with the validated payload and the session. */
  handler(data: unknown, target: DispatchTarget<unknown, PushMap>): unknown;
}

/** A refusal to answer instead of routing a message. */
export interface Refusal {
  /** The error code. */
  readonly refuse: string;
  /** The error message. */
  readonly message: string;
}

/** Runs one router for one server. */
export class Dispatcher<State, Push extends PushMap> {
  readonly #parts: RouterParts<State, Push>;
  readonly #env: DispatchEnv;

  /** @param router The app's router. @param env Where to log and count. */
  constructor(
    router: EventRouter<State, Push, EventDefinitions>,
    env: DispatchEnv,
  ) {
    this.#parts = routerParts(router);
    this.#env = env;
  }

  /** Whether binary messages have a handler. */
  get handlesBinary(): boolean {
    return this.#parts.binary !== undefined;
  }

  /**
   * Routes one text message: parse, look up, validate, run, reply. Never
   * throws: every problem becomes an error envelope on `ctx`.
   *
   * @returns A promise that settles when an asynchronous schema or handler
   * has finished (it never rejects), or `undefined` when all was done at once.
   */
  text(
    ctx: DispatchTarget<State, Push>,
    text: string,
  ): Promise<void> | undefined {
    const parsed = parseEnvelope(text);
    if ("problem" in parsed) {
      const { id, code, message } = parsed.problem;
      this.#sendError(ctx, id, code, message);
      return;
    }
    if ("reply" in parsed) {
      ctx.settleReply(parsed.reply);
      return;
    }
    const { event, data, id, key } = parsed;
    const route = this.#env.library?.get(event) ??
      this.#parts.routes.get(event);
    if (route === undefined) {
      this.#sendError(
        ctx,
        id,
        ErrorCode.UNKNOWN_EVENT,
        `Unknown event "${event}"`,
      );
      return;
    }
    const keyed = this.#env.keyed;
    if (key !== undefined && keyed !== undefined) {
      return keyed.once(
        ctx,
        key,
        () => this.#outcome(ctx, route, event, data),
      ).then((outcome) => this.#deliver(ctx, event, id, outcome));
    }
    const outcome = this.#outcome(ctx, route, event, data);
    if (outcome instanceof Promise) {
      return outcome.then((done) => this.#deliver(ctx, event, id, done));
    }
    this.#deliver(ctx, event, id, outcome);
  }

  /**
   * Answers a message the connection's limits refused, with the refusal's
   * code, to the message's id when one can be read.
   */
  reject(
    ctx: DispatchTarget<State, Push>,
    text: string | undefined,
    refusal: Refusal,
  ): void {
    const parsed = text === undefined ? undefined : parseEnvelope(text);
    const id = parsed === undefined || "reply" in parsed
      ? undefined
      : "problem" in parsed
      ? parsed.problem.id
      : parsed.id;
    this.#sendError(ctx, id, refusal.refuse, refusal.message);
  }

  /**
   * Routes one binary message to the binary handler (check
   * {@linkcode handlesBinary} first).
   *
   * @returns As {@linkcode text}.
   */
  binary(
    ctx: DispatchTarget<State, Push>,
    data: Uint8Array<ArrayBuffer>,
  ): Promise<void> | undefined {
    const handler = this.#parts.binary;
    if (handler === undefined) return undefined;
    try {
      const out = handler(data, ctx);
      if (out instanceof Promise) {
        return out.then(
          () => {},
          (error) =>
            this.#deliver(
              ctx,
              "binary",
              undefined,
              this.#failed(ctx, "binary", error),
            ),
        );
      }
    } catch (error) {
      this.#deliver(
        ctx,
        "binary",
        undefined,
        this.#failed(ctx, "binary", error),
      );
    }
    return undefined;
  }

  /**
   * Runs the open hook, logging (never throwing) a failure.
   * @returns `false` when the hook threw or rejected.
   */
  async open(ctx: DispatchTarget<State, Push>): Promise<boolean> {
    try {
      await this.#parts.open?.(ctx);
      return true;
    } catch (error) {
      this.#env.logger.error("open handler failed", { conn: ctx.id, error });
      return false;
    }
  }

  /** Runs the close hook, logging (never throwing) a failure. */
  async close(
    ctx: DispatchTarget<State, Push>,
    info: CloseInfo,
  ): Promise<void> {
    try {
      await this.#parts.close?.(ctx, info);
    } catch (error) {
      this.#env.logger.error("close handler failed", { conn: ctx.id, error });
    }
  }

  /** Validates and runs: what the message came to, at once when it can. */
  #outcome(
    ctx: DispatchTarget<State, Push>,
    route: Route | LibraryRoute,
    event: string,
    data: unknown,
  ): Outcome | Promise<Outcome> {
    let result;
    try {
      result = route.schema["~standard"].validate(data);
    } catch (error) {
      return this.#failed(ctx, event, error);
    }
    if (result instanceof Promise) {
      return result.then(
        (settled) => this.#run(ctx, route, event, settled),
        (error) => this.#failed(ctx, event, error),
      );
    }
    return this.#run(ctx, route, event, result);
  }

  #run(
    ctx: DispatchTarget<State, Push>,
    route: Route | LibraryRoute,
    event: string,
    result: StandardSchemaResult<unknown>,
  ): Outcome | Promise<Outcome> {
    if (result.issues) {
      const message = formatIssues(result.issues);
      return { error: { code: ErrorCode.INVALID_DATA, message } };
    }
    let out: unknown;
    try {
      out = route.handler(result.value, ctx as never);
    } catch (error) {
      return this.#failed(ctx, event, error);
    }
    if (out instanceof Promise) {
      return out.then(
        (value) => this.#answer(ctx, event, value),
        (error) => this.#failed(ctx, event, error),
      );
    }
    return this.#answer(ctx, event, out);
  }

  /** A handler's value as the reply: a stream's opening, started once sent. */
  #answer(
    ctx: DispatchTarget<State, Push>,
    event: string,
    value: unknown,
  ): Outcome | Promise<Outcome> {
    if (!(value instanceof ReplyStream)) return { data: value };
    const stream: ReplyStream = value;
    return stream.opened().then(
      (opening): Outcome => ({ data: opening, after: () => stream.start() }),
      (error) => {
        const outcome = this.#failed(ctx, event, error);
        stream.stop(new EventError(ErrorCode.STREAM_EXPIRED, "Not opened"));
        return outcome;
      },
    );
  }

  /** Sends what a message came to: a reply (to an id), or an error. */
  #deliver(
    ctx: DispatchTarget<State, Push>,
    event: string,
    id: MessageId | undefined,
    outcome: Outcome,
  ): void {
    if ("error" in outcome) {
      const { code, message, data } = outcome.error;
      return this.#sendError(ctx, id, code, message, data);
    }
    if (id === undefined) return outcome.after?.();
    let text: string;
    try {
      text = encodeReply(id, outcome.data);
    } catch (error) {
      return this.#deliver(ctx, event, id, this.#failed(ctx, event, error));
    }
    ctx.send(text);
    outcome.after?.();
  }

  #sendError(
    ctx: DispatchTarget<State, Push>,
    id: MessageId | undefined,
    code: string,
    message: string,
    data?: unknown,
  ): void {
    this.#env.metrics?.error(code);
    let text: string;
    try {
      text = encodeError(id, code, message, data);
    } catch (error) {
      // An EventError's data that is not JSON: the code and message still go.
      this.#env.logger.error("error data not serialisable", { code, error });
      text = encodeError(id, code, message);
    }
    ctx.send(text);
  }

  /** A failure as the client may see it: an `EventError`'s own, else `HANDLER_ERROR` (logged). */
  #failed(
    ctx: DispatchTarget<State, Push>,
    event: string,
    error: unknown,
  ): Outcome {
    if (error instanceof EventError) {
      const { code, message, data } = error;
      return {
        error: data === undefined ? { code, message } : { code, message, data },
      };
    }
    this.#env.logger.error("handler failed", { conn: ctx.id, event, error });
    return {
      error: { code: ErrorCode.HANDLER_ERROR, message: "Internal error" },
    };
  }
}
