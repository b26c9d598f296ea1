/**
 * Messages between the nodes of one engine: a node asks one node (by id)
 * or every node (`"*"`) to do something, and gathers the answers. This is
 * how a `POST` of the HTTP transport reaches the node that holds its
 * session, and how the server API acts on a subject wherever its
 * connections are, with no central table: a session's node is in its id.
 * On an engine without `control` there is one node, this one.
 *
 * @module
 */

import { type LogFields, type Logger, throttle } from "./logger.ts";
import type { Backplane } from "./pubsub/backplane.ts";

/** Handles one kind of request; its value is the answer (JSON). */
export type ControlHandler = (payload: unknown) => unknown | Promise<unknown>;

type Wire =
  | { t: "ask"; id: string; from: string; kind: string; payload: unknown }
  | { t: "answer"; id: string; payload: unknown };

/** Answers kept waiting at most (a node asking too much at once is refused). */
const MAX_WAITING = 10_000;
/** Milliseconds the live nodes last read are taken as they are (a node that died since is asked). */
const LIVE_FOR = 5_000;

/** Requests and answers between nodes (see the module docs). */
export class ControlPlane {
  /** This node's id: the engine's, or one made here. */
  readonly node: string;
  readonly #backplane: Backplane;
  readonly #logger: Logger;
  /** Sends that failed, at most 20 lines a second: a client can cause them (a forwarded POST while the engine is down). */
  readonly #warn: (message: string, fields: LogFields) => void;
  readonly #handlers = new Map<string, ControlHandler>();
  readonly #waiting = new Map<
    string,
    { answer: (payload: unknown) => void; done: () => void }
  >();
  /** The live nodes the engine last named, when, and a read of them under way. */
  #live: ReadonlySet<string> | undefined;
  #liveAt = -Infinity;
  #reading: Promise<ReadonlySet<string> | undefined> | undefined;

  /**
   * Makes the node's control plane on its engine.
   * @param backplane The engine.
   * @param logger Where failures go.
   */
  constructor(backplane: Backplane, logger: Logger) {
    this.#backplane = backplane;
    this.#logger = logger;
    this.#warn = throttle((m, fields) => logger.warn(m, fields), 20);
    this.node = backplane.node ?? crypto.randomUUID();
  }

  /** Whether other nodes can be reached. */
  get clustered(): boolean {
    return typeof this.#backplane.control === "function";
  }

  /** Answers requests of `kind` with `handler`. */
  handle(kind: string, handler: ControlHandler): void {
    this.#handlers.set(kind, handler);
  }

  /**
   * Asks node `to` (or every node, this one included, with `"*"`): the
   * answers that came within `timeout` ms (one from a node, or none when it
   * did not answer).
   */
  async ask(
    to: string,
    kind: string,
    payload: unknown,
    timeout: number,
  ): Promise<unknown[]> {
    const answers: unknown[] = [];
    if (to === this.node || to === "*" || !this.clustered) {
      if (to === this.node || to === "*") {
        answers.push(await this.#run(kind, payload));
      }
      if (to !== "*" || !this.clustered) return answers;
    }
    if (this.#waiting.size >= MAX_WAITING) return answers;
    // Every other live node (else: all that answer in time); read again for
    // a node not known, or known from long ago; a node not live is not asked.
    const known = performance.now() - this.#liveAt < LIVE_FOR &&
      this.#live?.has(to);
    const live = known ? this.#live : await this.#liveNodes();
    if (to !== "*" && live && !live.has(to)) return answers;
    const others = (live?.size ?? Infinity) - 1;
    const wanted = to === "*" ? answers.length + Math.max(others, 0) : 1;
    if (wanted === answers.length) return answers;
    const id = crypto.randomUUID();
    return await new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiting.delete(id);
        resolve(answers);
      };
      const timer = setTimeout(done, timeout);
      this.#waiting.set(id, {
        answer: (answer) => {
          answers.push(answer);
          if (answers.length >= wanted) done();
        },
        done,
      });
      const ask: Wire = { t: "ask", id, from: this.node, kind, payload };
      this.#backplane.control!(to, JSON.stringify(ask)).catch((error) => {
        this.#warn("control message not sent", { kind, error });
        done();
      });
    });
  }

  /** A message from another node (the engine's `control` event). */
  receive(message: string): void {
    let wire: Wire;
    try {
      wire = JSON.parse(message);
    } catch {
      return;
    }
    if (wire?.t === "answer") {
      return this.#waiting.get(wire.id)?.answer(wire.payload);
    }
    if (wire?.t !== "ask" || typeof wire.from !== "string") return;
    this.#run(wire.kind, wire.payload).then((payload) => {
      const answer: Wire = { t: "answer", id: wire.id, payload };
      return this.#backplane.control?.(wire.from, JSON.stringify(answer));
    }).catch((error) => this.#warn("control answer not sent", { error }));
  }

  /** Stops waiting: every ask under way resolves with what it has. */
  close(): void {
    for (const { done } of [...this.#waiting.values()]) done();
  }

  /** The engine's live nodes read afresh, one read shared by all who ask meanwhile. */
  #liveNodes(): Promise<ReadonlySet<string> | undefined> {
    const read = this.#backplane.liveNodes;
    if (!read) return Promise.resolve(undefined);
    return this.#reading ??= read.call(this.#backplane).then(
      (live) => {
        this.#liveAt = performance.now();
        return this.#live = live;
      },
      () => this.#live,
    ).finally(() => this.#reading = undefined);
  }

  async #run(kind: string, payload: unknown): Promise<unknown> {
    const handler = this.#handlers.get(kind);
    if (!handler) return undefined;
    try {
      return await handler(payload);
    } catch (error) {
      this.#logger.error("control handler failed", { kind, error });
      return undefined;
    }
  }
}
