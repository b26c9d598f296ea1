/**
 * `createServer`: the one fetch handler for HTTP and WebSocket on one port,
 * the registry of open connections, and graceful shutdown.
 *
 * @module
 */

import { CloseCode } from "./close_code.ts";
import {
  Connection,
  type ConnectionInit,
  type ConnectionLimits,
} from "./connection.ts";
import type { BackplaneHealth, Presence } from "./backplane.ts";
import type { EventMap } from "./context.ts";
import { encodePush } from "./envelope.ts";
import {
  checkHandshake,
  type HandshakeRefusal,
  isUpgradeAttempt,
  negotiateProtocol,
  refusalResponse,
} from "./handshake.ts";
import { HttpRouter } from "./http_router.ts";
import { createOriginPolicy } from "./origin_policy.ts";
import { Metrics } from "./metrics.ts";
import { installProcessGuard } from "./process_guard.ts";
import { type PublishResult, PubSub } from "./pubsub.ts";
import { resolveServerOptions, type ServerOptions } from "./server_options.ts";

/** Options of {@linkcode DuplexServer.shutdown}. */
export interface ShutdownOptions {
  /**
   * Milliseconds to wait for close handshakes.
   * @default {the server's drainTimeout}
   */
  drainTimeout?: number;
}

/** A server made by {@linkcode createServer}. */
export interface DuplexServer<
  State = unknown,
  Push extends EventMap = EventMap,
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
  /** The connections not yet finished, by id. */
  readonly connections: ReadonlyMap<string, Connection<State, Push>>;
  /** Whether `shutdown` has been called. */
  readonly shuttingDown: boolean;
  /** Settles once the backplane has started (Redis connected, or retrying). */
  readonly ready: Promise<void>;
  /**
   * Pushes an event to every member of a topic on every node; the envelope
   * is encoded once.
   * @throws {EventError} `BAD_TOPIC`.
   */
  publish<E extends keyof Push & string>(
    topic: string,
    event: E,
    data: Push[E],
  ): Promise<PublishResult>;
  /** The member count of a topic on every live node. */
  presence(topic: string): Promise<Presence>;
  /** The backplane's kind and health. */
  backplane(): BackplaneHealth & { kind: string };
  /** The metrics in the Prometheus text format, for a `/metrics` route. */
  metrics(): string;
}

const SHUTDOWN_REASON = "server shutting down";

/** The peer's address; read before the upgrade, after which Deno refuses. */
function remoteHost(
  info: Deno.ServeHandlerInfo | undefined,
): string | undefined {
  const addr = info?.remoteAddr;
  return addr && "hostname" in addr ? addr.hostname : undefined;
}

/**
 * Creates a duplex server: give its `fetch` to `Deno.serve` or export it
 * for `deno serve`.
 *
 * @throws {TypeError | RangeError} when an option is invalid.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { createServer, EventRouter } from "./mod.ts";
 *
 * const router = new EventRouter().on("echo", z.unknown(), (data) => data);
 * const server = createServer({ router });
 * const response = await server.fetch(new Request("http://localhost/nothing"));
 * console.assert(response.status === 404);
 * ```
 */
export function createServer<State, Push extends EventMap>(
  options: ServerOptions<State, Push>,
): DuplexServer<State, Push> {
  const config = resolveServerOptions(options);
  const { router, logger } = config;
  const http = config.http ?? new HttpRouter();
  const originAllowed = createOriginPolicy(config);
  const connections = new Map<string, Connection<State, Push>>();
  const pubsub = new PubSub({
    backplane: config.backplane,
    maxTopicsPerConnection: config.maxTopicsPerConnection,
    logger,
  });
  const ready = pubsub.start();
  let shutdownPromise: Promise<void> | undefined;
  let pendingHandshakes = 0;
  const limits: ConnectionLimits = {
    maxMessageSize: config.maxMessageSize,
    closeTimeout: config.closeTimeout,
    maxBufferedAmount: config.maxBufferedAmount,
    maxInFlight: config.maxInFlight,
    rateLimit: config.rateLimit,
  };
  const metrics = new Metrics();
  const shared: ConnectionInit<State, Push> = {
    router,
    limits,
    logger,
    pubsub,
    metrics,
    onFinished: (finished) => connections.delete(finished.id),
  };
  if (config.guardProcess) installProcessGuard(logger);

  function refuse(refusal: HandshakeRefusal, request: Request): Response {
    metrics.handshakeRefused(refusal.reason);
    logger.info("handshake refused", {
      reason: refusal.reason,
      status: refusal.status,
      path: new URL(request.url).pathname,
      origin: request.headers.get("origin") ?? undefined,
    });
    return refusalResponse(refusal);
  }

  /** What the request itself gets wrong: path, RFC 6455, Origin. */
  function requestRefusal(request: Request): HandshakeRefusal | null {
    if (new URL(request.url).pathname !== config.path) {
      return {
        status: 404,
        reason: "bad_path",
        message: "No WebSocket endpoint on this path",
      };
    }
    const invalid = checkHandshake(request);
    if (invalid) return invalid;
    if (!originAllowed(request)) {
      return {
        status: 403,
        reason: "bad_origin",
        message: "Origin not allowed",
      };
    }
    return null;
  }

  /** What the server cannot take now: shutdown, connection limit. */
  function capacityRefusal(): HandshakeRefusal | null {
    if (shutdownPromise) {
      return {
        status: 503,
        reason: "shutting_down",
        message: "Server is shutting down",
      };
    }
    if (connections.size >= config.maxConnections) {
      return {
        status: 503,
        reason: "too_many_connections",
        message: "Too many connections",
        headers: { "Retry-After": String(config.retryAfter) },
      };
    }
    return null;
  }

  /** Runs `authenticate`, bounded by `maxPendingHandshakes`: the state, or the answer. */
  async function authenticateHandshake(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<{ state: State } | Response> {
    if (!config.authenticate) return { state: undefined as State };
    if (pendingHandshakes >= config.maxPendingHandshakes) {
      return refuse({
        status: 503,
        reason: "too_many_handshakes",
        message: "Too many handshakes in progress",
        headers: { "Retry-After": String(config.retryAfter) },
      }, request);
    }
    pendingHandshakes++;
    try {
      const result = await config.authenticate(request, info);
      if (!(result instanceof Response)) return { state: result };
      metrics.handshakeRefused("auth");
      logger.info("handshake refused", {
        reason: "auth",
        status: result.status,
      });
      return result;
    } catch (error) {
      logger.error("authenticate failed", { error });
      return refuse({
        status: 500,
        reason: "auth_error",
        message: "Authentication failed",
      }, request);
    } finally {
      pendingHandshakes--;
    }
  }

  async function upgrade(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Response> {
    const refusal = requestRefusal(request) ?? capacityRefusal();
    if (refusal) return refuse(refusal, request);
    const auth = await authenticateHandshake(request, info);
    if (auth instanceof Response) return auth;
    // The hook may have waited: shutdown and capacity may have changed.
    const late = config.authenticate ? capacityRefusal() : null;
    if (late) return refuse(late, request);
    const { state } = auth;
    const protocol = negotiateProtocol(
      request.headers.get("sec-websocket-protocol"),
      config.protocols,
    );
    const remote = remoteHost(info);
    let upgraded;
    try {
      // The protocol header is set here, not through Deno's `protocol`
      // option: Deno splits the offer on ", " only and throws for
      // "a,b", which RFC 7230 lists and clients such as npm's ws send.
      upgraded = Deno.upgradeWebSocket(request, {
        idleTimeout: config.idleTimeout,
      });
      if (protocol) {
        upgraded.response.headers.set("sec-websocket-protocol", protocol);
      }
    } catch (error) {
      logger.warn("upgrade failed", { error });
      return refuse(
        {
          status: 400,
          reason: "upgrade_failed",
          message: "WebSocket upgrade failed",
        },
        request,
      );
    }
    const connection = new Connection<State, Push>(
      upgraded.socket,
      crypto.randomUUID(),
      state,
      protocol ?? "",
      shared,
    );
    connections.set(connection.id, connection);
    metrics.handshakeAccepted();
    logger.info("connection opened", {
      conn: connection.id,
      protocol: connection.protocol || undefined,
      remote,
    });
    return upgraded.response;
  }

  async function drain(drainTimeout: number): Promise<void> {
    const open = [...connections.values()];
    for (const connection of open) {
      connection.closeWith(CloseCode.GOING_AWAY, SHUTDOWN_REASON);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, drainTimeout);
    });
    await Promise.race([
      Promise.all(open.map((connection) => connection.finished)),
      deadline,
    ]);
    clearTimeout(timer);
    for (const connection of open) {
      connection.terminate("drain timeout");
    }
    await Promise.all(open.map((connection) => connection.finished));
    await pubsub.close();
  }

  return {
    async fetch(request, info) {
      try {
        if (isUpgradeAttempt(request)) return await upgrade(request, info);
        return await http.handle(request, info);
      } catch (error) {
        logger.error("request failed", { error });
        return new Response("Internal server error\n", { status: 500 });
      }
    },
    shutdown(options = {}) {
      const { drainTimeout = config.drainTimeout } = options;
      shutdownPromise ??= drain(drainTimeout);
      return shutdownPromise;
    },
    get connections() {
      return connections;
    },
    get shuttingDown() {
      return shutdownPromise !== undefined;
    },
    ready,
    publish(topic, event, data) {
      return pubsub.publish(topic, encodePush(event, data));
    },
    presence(topic) {
      return pubsub.presence(topic);
    },
    backplane() {
      return pubsub.health();
    },
    metrics() {
      return metrics.render({
        connections: connections.size,
        backplane: pubsub.health(),
      });
    },
  };
}
