/**
 * Requests from the server to one client (docs/PROTOCOL.md §2.4): the other
 * direction of request and reply. A definition names the event and its
 * schemas, so `ctx.request` is typed end to end and the reply is validated;
 * `ServerRequests` is one connection's table of requests awaiting replies.
 *
 * @module
 */

import { EventError } from "./event_error.ts";
import {
  type ClientReplyEnvelope,
  encodeEvent,
  ErrorCode,
  NoReplyCode,
  PendingTable,
} from "@duplex-ws/protocol";
import {
  formatIssues,
  type InferInput,
  type InferOutput,
  isStandardSchema,
  type StandardSchemaV1,
} from "./standard_schema.ts";

/**
 * A request the server can send to a client: its event name, the schema of
 * what it sends (for the client's types and the AsyncAPI document) and the
 * schema the client's reply must pass.
 *
 * @typeParam Event The event name.
 * @typeParam Data What the server sends.
 * @typeParam Reply What the validated reply is.
 */
export interface ServerRequest<
  Event extends string = string,
  Data = unknown,
  Reply = unknown,
> {
  /** The event name (1–128 characters). */
  readonly event: Event;
  /** The schema of the request's payload. */
  readonly data: StandardSchemaV1<Data>;
  /** The schema every reply must pass; a reply that fails is `INVALID_DATA`. */
  readonly reply: StandardSchemaV1<unknown, Reply>;
  /** One line for the AsyncAPI document. */
  readonly summary?: string;
}

/** Options of {@linkcode defineRequest}. */
export interface DefineRequestOptions<
  D extends StandardSchemaV1,
  R extends StandardSchemaV1,
> {
  /** The schema of the request's payload. */
  data: D;
  /** The schema of the client's reply. */
  reply: R;
  /** One line for the AsyncAPI document. */
  summary?: string;
}

/**
 * Defines a request the server sends to clients. Register it on the router
 * with `router.request(definition)` (so the typed client and the AsyncAPI
 * document know it) and send it with `ctx.request(definition, data)`.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { defineRequest } from "./server_request.ts";
 *
 * const confirm = defineRequest("confirm", {
 *   data: z.object({ question: z.string() }),
 *   reply: z.boolean(),
 * });
 * console.assert(confirm.event === "confirm");
 * ```
 *
 * @throws {TypeError} for a bad name or a schema that is not Standard Schema.
 */
export function defineRequest<
  E extends string,
  D extends StandardSchemaV1,
  R extends StandardSchemaV1,
>(
  event: E,
  options: DefineRequestOptions<D, R>,
): ServerRequest<E, InferInput<D>, InferOutput<R>> {
  if (typeof event !== "string" || event.length === 0 || event.length > 128) {
    throw new TypeError(
      "Cannot define a request: name must be 1-128 characters",
    );
  }
  if (!isStandardSchema(options.data) || !isStandardSchema(options.reply)) {
    throw new TypeError(
      `Cannot define request "${event}": data and reply must implement Standard Schema v1`,
    );
  }
  return {
    event,
    data: options.data as StandardSchemaV1<InferInput<D>>,
    reply: options.reply as StandardSchemaV1<unknown, InferOutput<R>>,
    summary: options.summary,
  };
}

/** Options of `ctx.request`. */
export interface ServerRequestOptions {
  /**
   * Milliseconds to wait for the reply.
   * @default {SERVER_DEFAULTS.requestTimeout}
   */
  timeout?: number;
}

/**
 * One connection's requests awaiting replies, on the wire's pending table:
 * a cap, the reply's validation, and `CONNECTION_LOST` for every request
 * still awaiting when the connection goes. Internal to the library.
 */
export class ServerRequests {
  readonly #table = new PendingTable<StandardSchemaV1>(
    (code, message) => new EventError(code, message),
  );
  readonly #limit: number;

  /** @param limit How many requests may await replies at once. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** How many requests await replies. */
  get size(): number {
    return this.#table.size;
  }

  /**
   * Sends a request with `send` and settles with the validated reply.
   * Rejects with `EventError`: `BUSY` (too many pending), `CONNECTION_LOST`
   * (not sent, or the connection closed first), `TIMEOUT`, `INVALID_DATA`
   * (the reply failed the schema) or the client's own error code.
   */
  request<D, R>(
    definition: ServerRequest<string, D, R>,
    data: D,
    timeout: number,
    send: (text: string) => boolean,
  ): Promise<R> {
    const { event } = definition;
    if (this.#table.size >= this.#limit) {
      return Promise.reject(
        new EventError(
          ErrorCode.BUSY,
          `Too many requests awaiting replies (${this.#limit})`,
        ),
      );
    }
    const id = this.#table.nextId();
    if (!send(encodeEvent(event, data, id))) {
      return Promise.reject(
        new EventError(NoReplyCode.CONNECTION_LOST, lost(event)),
      );
    }
    return this.#table.wait<R>(id, event, timeout, definition.reply);
  }

  /** Settles the request a reply answers; ignores an id that is not pending. */
  settle(reply: ClientReplyEnvelope): void {
    const pending = this.#table.settle(reply.id);
    if (pending === undefined) return;
    if (reply.error !== undefined) {
      pending.reject(new EventError(reply.error.code, reply.error.message));
      return;
    }
    const invalid = (why: unknown) =>
      pending.reject(new EventError(ErrorCode.INVALID_DATA, String(why)));
    let result;
    try {
      result = pending.meta["~standard"].validate(reply.data);
    } catch (error) {
      return invalid(error);
    }
    Promise.resolve(result).then((settled) => {
      if (settled.issues) {
        invalid(`Reply to "${pending.event}": ${formatIssues(settled.issues)}`);
      } else pending.resolve(settled.value);
    }, invalid);
  }

  /** Rejects every pending request: the connection is gone. */
  rejectAll(): void {
    this.#table.rejectAll(NoReplyCode.CONNECTION_LOST, (p) => lost(p.event));
  }
}

function lost(event: string): string {
  return `The client is gone: no reply to "${event}"`;
}
