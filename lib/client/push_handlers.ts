/**
 * Who the client's pushes go to: handlers by event (`on`, `once`) and the
 * handlers of binary frames.
 *
 * @module
 */

import { ClientErrorCode } from "@duplex-ws/protocol";
import { RequestError } from "./errors.ts";
import type { ClientState } from "./link.ts";

/** What a push handler learns besides the data. */
export interface PushInfo {
  /** The push's topic, when it is from a topic with history. */
  readonly topic?: string;
  /**
   * `true` when values of its topic were skipped before it: the member was
   * behind in a conflated topic and gets the latest per key.
   */
  readonly conflated?: true;
}

type Handler = (data: unknown, info: PushInfo) => void;

const PLAIN: PushInfo = {};

/** The push and binary handlers of one client. */
export class PushHandlers {
  readonly #handlers = new Map<string, Set<Handler>>();
  readonly #binary = new Set<(data: ArrayBuffer) => void>();

  /** Calls `handler` with every push of `event`; returns a function that stops it. */
  on(event: string, handler: Handler): () => void {
    let set = this.#handlers.get(event);
    if (!set) this.#handlers.set(event, set = new Set());
    set.add(handler);
    return () => set.delete(handler);
  }

  /** Calls `handler` with every binary frame; returns a function that stops it. */
  onBinary(handler: (data: ArrayBuffer) => void): () => void {
    this.#binary.add(handler);
    return () => this.#binary.delete(handler);
  }

  /** Hands a push to its handlers. */
  push(event: string, data: unknown, info: PushInfo = PLAIN): void {
    for (const handler of this.#handlers.get(event) ?? []) handler(data, info);
  }

  /** Hands a binary frame to its handlers. */
  binary(data: ArrayBuffer): void {
    for (const handler of this.#binary) handler(data);
  }

  /**
   * The next push of `event` that `filter` accepts; rejects with `TIMEOUT`
   * after `timeout` ms, or `CLOSED` when `onState` says the client closed.
   */
  once(
    event: string,
    filter: (data: unknown) => boolean,
    timeout: number,
    onState: (listener: (state: ClientState) => void) => () => void,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const done = () => {
        stop();
        stopState();
        clearTimeout(timer);
      };
      const stop = this.on(event, (data) => {
        if (!filter(data)) return;
        done();
        resolve(data);
      });
      const stopState = onState((state) => {
        if (state !== "closed") return;
        done();
        reject(new RequestError(ClientErrorCode.CLOSED, "Client closed"));
      });
      const timer = setTimeout(() => {
        done();
        const message = `No "${event}" push within ${timeout} ms`;
        reject(new RequestError(ClientErrorCode.TIMEOUT, message));
      }, timeout);
    });
  }
}
