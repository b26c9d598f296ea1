/**
 * Requests that carry a key (`{event, data, id, key}`, PROTOCOL.md §2.5):
 * the first run's reply is kept in the engine for `requestKeyTtl`, and the
 * same key sent again, on any node, gets that reply while the handler runs
 * once. A retry that comes while the first run is still going waits for
 * it (up to `wait`), then answers `BUSY` so the client tries again later.
 * The first run's claim is a lease as long as that wait, held while the
 * run goes on: when its node dies, a retry runs the request within `wait`
 * instead of answering `BUSY` for the reply's whole time to live.
 * Keys are scoped per subject (guests share one scope: their keys must be
 * unguessable, as the client's random ones are).
 *
 * @module
 */

import { ErrorCode, type WireError } from "@duplex-ws/protocol";
import type { Logger } from "./logger.ts";
import type { ReplyStore } from "./pubsub/reply_store.ts";

/** What a request came to: its reply's data, or its error. */
export type Outcome =
  /** `after` runs once the reply is sent (a streamed reply starts then). */
  | { data: unknown; after?: () => void }
  | { error: WireError };

/** Who sends a keyed request. */
export interface KeyRequester {
  /** Whose keys its are: its subject, or one scope for every guest. */
  readonly requestScope: string;
  /** Charges one keyed request: a refusal when it may send no more now. */
  keyedRefusal(): WireError | undefined;
}

/** Options of {@linkcode KeyedRequests}. */
export interface KeyedRequestsOptions {
  /** Where replies are kept. */
  readonly store: ReplyStore;
  /** Milliseconds a reply (and a running claim) is kept. */
  readonly ttl: number;
  /** Milliseconds a retry waits for a first run still going. */
  readonly wait: number;
  /** Where a store failure is logged. */
  readonly logger: Logger;
}

const POLL_EVERY = 25;
/** Milliseconds a running claim is held at the least (renewed a third of it apart). */
const MIN_LEASE = 1_000;

const busy = (message: string): Outcome => ({
  error: { code: ErrorCode.BUSY, message },
});

/** Runs keyed requests once per key (see the module docs). */
export class KeyedRequests {
  readonly #options: KeyedRequestsOptions;

  /** @param options The store, how long replies are kept and waited for. */
  constructor(options: KeyedRequestsOptions) {
    this.#options = options;
  }

  /**
   * The outcome of the first run of `key` in its sender's scope: `first`
   * runs when this is it, else the kept outcome is answered; a sender past
   * its rate of keyed requests is refused before anything is kept.
   */
  async once(
    sender: KeyRequester,
    key: string,
    first: () => Outcome | Promise<Outcome>,
  ): Promise<Outcome> {
    const refused = sender.keyedRefusal();
    if (refused) return { error: refused };
    const { store, ttl, wait, logger } = this.#options;
    const scope = sender.requestScope;
    const id = `${scope.length}:${scope}:${key}`;
    const deadline = Date.now() + wait;
    const lease = store.hold ? Math.max(MIN_LEASE, wait) : ttl;
    try {
      for (;;) {
        const seen = await store.claim(id, lease);
        if (typeof seen === "string") return JSON.parse(seen) as Outcome;
        if (seen === undefined) break;
        if (Date.now() > deadline) {
          return busy("The first request with this key is still running");
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_EVERY));
      }
    } catch (error) {
      logger.warn("request key not checked", { error });
      return busy("This request's key cannot be checked now: try again");
    }
    const hold = store.hold?.bind(store);
    const holding = hold && setInterval(() => {
      hold(id, lease).catch((error) =>
        logger.warn("request key not held", { error })
      );
    }, lease / 3);
    let outcome: Outcome;
    try {
      outcome = await first();
    } finally {
      clearInterval(holding);
    }
    let text: string;
    try {
      text = JSON.stringify(outcome);
    } catch (error) {
      logger.error("handler failed", { error });
      outcome = {
        error: { code: ErrorCode.HANDLER_ERROR, message: "Internal error" },
      };
      text = JSON.stringify(outcome);
    }
    await store.settle(id, text, ttl).catch((error) =>
      logger.warn("request reply not kept", { error })
    );
    return outcome;
  }
}
