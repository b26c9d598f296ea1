/**
 * The client's side of requests from the server (docs/PROTOCOL.md §2.4):
 * one handler per event, its return value (awaited) the reply, a throw an
 * error reply, and `UNKNOWN_EVENT` for an event with no handler.
 *
 * @module
 */

import { encodeError, encodeReply, ErrorCode } from "@duplex-ws/protocol";
import type { RequestHandler } from "./router_types.ts";

/** The handlers of the server's requests. */
export class Answers {
  readonly #handlers = new Map<string, RequestHandler<never, unknown>>();

  /** Sets the handler of `event`; returns a function that removes it. */
  handle(event: string, handler: RequestHandler<never, unknown>): () => void {
    this.#handlers.set(event, handler);
    return () => {
      if (this.#handlers.get(event) === handler) this.#handlers.delete(event);
    };
  }

  /**
   * Runs the handler of a server request and sends its reply with `reply`
   * (which drops it if the connection it came on is gone).
   */
  answer(
    request: { event: string; data: unknown; id: number },
    reply: (text: string) => void,
  ): void {
    const handler = this.#handlers.get(request.event);
    if (handler === undefined) {
      reply(encodeError(
        request.id,
        ErrorCode.UNKNOWN_EVENT,
        `No handler for "${request.event}"`,
      ));
      return;
    }
    new Promise((resolve) => resolve(handler(request.data as never))).then(
      (value) => reply(encodeReply(request.id, value)),
      (error) => {
        const code = typeof error?.code === "string"
          ? error.code
          : ErrorCode.HANDLER_ERROR;
        const message = error instanceof Error ? error.message : String(error);
        reply(encodeError(request.id, code, message));
      },
    );
  }
}
