/**
 * Requests from the server to one client (docs/PROTOCOL.md §2.4): the other
 * direction of request and reply. A definition names the event and its
 * schemas, so `ctx.request` is typed end to end and the reply is validated;
 * `PendingRequests` is one connection's table of requests awaiting replies.
 *
 * @module
 */

import { EventError } from "./event_error.ts";
import { type ClientReplyEnvelope, encodeEvent } from "./protocol/envelope.ts";
import { ClientErrorCode, ErrorCode } from "./protocol/error_code.ts";
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

interface Pending {
  resolve(value: unknown): void;
  reject(error: EventError): void;
  timer: ReturnType<typeof setTimeout>;
  reply: StandardSchemaV1;
  event: string;
}

/**
 * One connection's requests awaiting replies. Ids are numbers counted per
 * connection; a reply to an id that is not pending (late, or made up) is
 * ignored. Internal to the library.
 */
export class PendingRequests {
  #pending = new Map<number, Pending>();
  #next = 1;
  readonly #limit: number;

  /** @param limit How many requests may await replies at once. */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** How many requests await replies. */
  get size(): number {
    return this.#pending.size;
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
    if (this.#pending.size >= this.#limit) {
      return Promise.reject(
        new EventError(
          ErrorCode.BUSY,
          `Too many requests awaiting replies (${this.#limit})`,
        ),
      );
    }
    const id = this.#next++;
    if (!send(encodeEvent(event, data, id))) {
      return Promise.reject(lost(event));
    }
    return new Promise<R>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(
          new EventError(
            ClientErrorCode.TIMEOUT,
            `No reply to "${event}" within ${timeout} ms`,
          ),
        );
      }, timeout);
      this.#pending.set(id, {
        resolve: resolve as (value: unknown) => void,
        reject,
        timer,
        reply: definition.reply,
        event,
      });
    });
  }

  /** Settles the request a reply answers; ignores an id that is not pending. */
  settle(reply: ClientReplyEnvelope): void {
    const pending = this.#pending.get(reply.id);
    if (pending === undefined) return;
    this.#pending.delete(reply.id);
    clearTimeout(pending.timer);
    if (reply.error !== undefined) {
      pending.reject(new EventError(reply.error.code, reply.error.message));
      return;
    }
    let result;
    try {
      result = pending.reply["~standard"].validate(reply.data);
    } catch (error) {
      pending.reject(new EventError(ErrorCode.INVALID_DATA, String(error)));
      return;
    }
    Promise.resolve(result).then((settled) => {
      if (settled.issues) {
        pending.reject(
          new EventError(
            ErrorCode.INVALID_DATA,
            `Reply to "${pending.event}": ${formatIssues(settled.issues)}`,
          ),
        );
      } else pending.resolve(settled.value);
    }, (error) => {
      pending.reject(new EventError(ErrorCode.INVALID_DATA, String(error)));
    });
  }

  /** Rejects every pending request: the connection is gone. */
  rejectAll(): void {
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(lost(pending.event));
    }
    this.#pending.clear();
  }
}

function lost(event: string): EventError {
  return new EventError(
    ClientErrorCode.CONNECTION_LOST,
    `The client is gone: no reply to "${event}"`,
  );
}
