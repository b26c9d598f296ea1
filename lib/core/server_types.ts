/**
 * What a server is, seen from outside: the object `createServer` returns
 * and what it reports, and what a transport needs of it. Types only, so
 * that HTTP handlers, transports and `combineServers` can name a server
 * without importing how one is made.
 *
 * @module
 */

import type { ClusterApi } from "./cluster_api.ts";
import type { Admitted, Refused } from "./gate.ts";
import type { MetricFamily } from "./metrics.ts";
import type {
  Context,
  PublishData,
  PublishOptions,
  PushMap,
} from "./context.ts";
import type { BackplaneHealth, Presence } from "./pubsub/backplane.ts";
import type { PublishResult } from "./pubsub/pubsub.ts";
import type { HistoryOptions, TopicHistory } from "./pubsub/history_view.ts";
import type { SessionDriver, Transport } from "./transport.ts";

/** Options of {@linkcode DuplexServer.shutdown}. */
export interface ShutdownOptions {
  /**
   * Milliseconds to wait for close handshakes.
   * @default {the server's drainTimeout}
   */
  drainTimeout?: number;
}

/** What `/healthz` reports: {@linkcode DuplexServer.health}. */
export interface ServerHealth {
  /** `ok`; `degraded` while the backplane cannot reach the other nodes; `shutting_down`. */
  status: "ok" | "degraded" | "shutting_down";
  /** Open connections. */
  connections: number;
  /**
   * Sockets duplex has closed (or given up on) that the runtime still holds,
   * because their peer neither answered nor dropped TCP; they count against
   * the connection cap until it does.
   */
  lingering: number;
  /** The backplane's kind and health. */
  backplane: BackplaneHealth & { kind: string };
}

/** A server made by `createServer`. */
export interface DuplexServer<
  State = unknown,
  Push extends PushMap = PushMap,
> {
  /** The handler for `Deno.serve`, `deno serve` and Deno Deploy. */
  fetch(request: Request, info?: Deno.ServeHandlerInfo): Promise<Response>;
  /**
   * Graceful shutdown: new handshakes get 503, every connection gets 1001
   * "server shutting down", close handshakes get up to `drainTimeout`, the
   * rest are ended (their `onClose` sees 1006). Resolves when every
   * connection has finished and its close hook has run. Calling it again
   * returns the same promise.
   */
  shutdown(options?: ShutdownOptions): Promise<void>;
  /** The connections not yet finished, by id, as their handlers see them. */
  readonly connections: ReadonlyMap<string, Context<State, Push>>;
  /** Whether `shutdown` has been called. */
  readonly shuttingDown: boolean;
  /** Settles once the backplane has started (Redis connected, or retrying). */
  readonly ready: Promise<void>;
  /**
   * Actions on every node of the engine: disconnect, subscribe or
   * unsubscribe a subject, refresh it, a topic's members, topics, nodes.
   */
  readonly cluster: ClusterApi;
  /**
   * Pushes an event to every member of a topic on every node; the envelope
   * is encoded once. `key` and `ifPosition` are as for `ctx.publish` (the
   * server's own keys are one scope).
   * @throws {EventError} `BAD_TOPIC`.
   * @throws {PositionConflict} when `ifPosition` no longer holds.
   */
  publish<E extends keyof Push & string>(
    topic: string,
    event: E,
    data: PublishData<Push[E]>,
    options?: Pick<PublishOptions, "key" | "ifPosition" | "transaction">,
  ): Promise<PublishResult>;
  /** The member count of a topic on every live node. */
  presence(topic: string): Promise<Presence>;
  /** Reads a topic with history (see `Context.history`). */
  history(topic: string, options?: HistoryOptions): Promise<TopicHistory>;
  /**
   * Asks connections for a fresh token now (after a permission change,
   * say): those of `subject`, or all. Each gets `auth.refresh` with reason
   * `requested` and `refreshGrace` to answer, then is closed with 4001.
   * Needs the `auth` option.
   * @returns How many connections were asked.
   */
  reauthenticate(subject?: string): number;
  /** The server's status, connection count and backplane health. */
  health(): ServerHealth;
  /** The metrics in the Prometheus text format, for a `/metrics` route. */
  metrics(): string;
}

/** What a transport needs of a server besides `fetch`. */
export interface ServerInternals<State> {
  /** Runs every handshake check: a refusal `Response`, or who to accept. */
  admit(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Response | Admitted<State>>;
  /**
   * Starts a session on an upgraded transport and registers it; the
   * transport then tells the returned driver what happens.
   */
  accept(transport: Transport, admitted: Admitted<State>): SessionDriver;
  /** Counts and logs a refusal decided by the transport itself. */
  refuse(refused: Refused, request: Request): Response;
  /** Gives back the capacity of an admitted handshake that was never accepted. */
  cancel(admitted: Admitted<State>): void;
  /** What a transport must enforce itself, and what `combineServers` routes by. */
  readonly config: {
    readonly path: string;
    readonly maxMessageSize: number;
    readonly idleTimeout: number;
    readonly closeTimeout: number;
    /** Sockets the process may hold at most (`Infinity`: no budget). */
    readonly socketBudget: number;
  };
  /** Answers a plain HTTP request with the server's routes, `server` being the one named. */
  http(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
    server: DuplexServer<State, never>,
  ): Promise<Response>;
  /** Open sockets duplex no longer counts as connections (see `ServerHealth`). */
  lingering(): number;
  /** What its `metrics()` renders, for `combineServers` to merge. */
  metricFamilies(): MetricFamily[];
}
