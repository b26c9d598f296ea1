/**
 * `createServer`: the one fetch handler for HTTP and WebSocket on one port,
 * the registry of open connections, and graceful shutdown.
 *
 * @module
 */

import { Connection, type ConnectionShared } from "./connection.ts";
import { Dispatcher } from "./dispatch.ts";
import type { PushMap } from "./context.ts";
import {
  checkHandshake,
  type HandshakeRefusal,
  isUpgradeAttempt,
  negotiateProtocol,
  refusal,
  refusalResponse,
} from "./handshake.ts";
import { HttpRouter } from "./http_router.ts";
import { Metrics } from "./metrics.ts";
import { createOriginPolicy } from "./origin_policy.ts";
import { encodePush } from "./protocol/envelope.ts";
import type { BackplaneHealth, Presence } from "./pubsub/backplane.ts";
import { type PublishResult, PubSub } from "./pubsub/pubsub.ts";
import type { Context } from "./context.ts";
import { resolveServerOptions, type ServerOptions } from "./server_options.ts";

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
  /** The backplane's kind and health. */
  backplane: BackplaneHealth & { kind: string };
}

/** A server made by {@linkcode createServer}. */
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
  /** The server's status, connection count and backplane health. */
  health(): ServerHealth;
  /** The metrics in the Prometheus text format, for a `/metrics` route. */
  metrics(): string;
}

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
 * import { createServer, EventRouter } from "@duplex-ws/duplex";
 *
 * const router = new EventRouter().on("echo", z.unknown(), (data) => data);
 * const server = createServer({ router });
 * const response = await server.fetch(new Request("http://localhost/nothing"));
 * console.assert(response.status === 404);
 * ```
 */
export function createServer<State, Push extends PushMap>(
  options: ServerOptions<State, Push>,
): DuplexServer<State, Push> {
  const config = resolveServerOptions(options);
  const { router, logger } = config;
  const http = config.http ?? new HttpRouter();
  const originAllowed = createOriginPolicy(config);
  const connections = new Map<string, Connection<State, Push>>();
  const metrics = new Metrics();
  const pubsub = new PubSub({
    backplane: config.backplane,
    maxTopicsPerConnection: config.maxTopicsPerConnection,
    logger,
  });
  const ready = pubsub.start();
  const retryLater = { "Retry-After": String(config.retryAfter) };
  let shutdownPromise: Promise<void> | undefined;
  let pendingHandshakes = 0;
  const shared: ConnectionShared<State, Push> = {
    dispatcher: new Dispatcher(router, { logger, metrics }),
    limits: config,
    closeTimeout: config.closeTimeout,
    logger,
    pubsub,
    metrics,
    onFinished: (finished) => connections.delete(finished.id),
  };

  /** Counts, logs and answers a refusal: the one way a handshake is refused. */
  function refuse(
    refused: HandshakeRefusal | Response,
    request: Request,
  ): Response {
    const reason = refused instanceof Response ? "auth" : refused.reason;
    metrics.handshakeRefused(reason);
    logger.info("handshake refused", {
      reason,
      status: refused.status,
      path: new URL(request.url).pathname,
      origin: request.headers.get("origin") ?? undefined,
    });
    return refused instanceof Response ? refused : refusalResponse(refused);
  }

  /** What the request itself gets wrong: path, RFC 6455, Origin. */
  function requestRefusal(request: Request): HandshakeRefusal | null {
    if (new URL(request.url).pathname !== config.path) {
      return refusal("bad_path");
    }
    const invalid = checkHandshake(request);
    if (invalid) return invalid;
    return originAllowed(request) ? null : refusal("bad_origin");
  }

  /** What the server cannot take now: shutdown, connection limit. */
  function capacityRefusal(): HandshakeRefusal | null {
    if (shutdownPromise) return refusal("shutting_down");
    if (connections.size >= config.maxConnections) {
      return refusal("too_many_connections", retryLater);
    }
    return null;
  }

  /** Runs `authenticate`, bounded by `maxPendingHandshakes`: the state, or the refusal. */
  async function authenticate(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<{ state: State } | HandshakeRefusal | Response> {
    if (!config.authenticate) return { state: undefined as State };
    if (pendingHandshakes >= config.maxPendingHandshakes) {
      return refusal("too_many_handshakes", retryLater);
    }
    pendingHandshakes++;
    try {
      const result = await config.authenticate(request, info);
      return result instanceof Response ? result : { state: result };
    } catch (error) {
      logger.error("authenticate failed", { error });
      return refusal("auth_error");
    } finally {
      pendingHandshakes--;
    }
  }

  async function upgrade(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Response> {
    const refused = requestRefusal(request) ?? capacityRefusal();
    if (refused) return refuse(refused, request);
    const auth = await authenticate(request, info);
    if (!("state" in auth)) return refuse(auth, request);
    // The hook may have waited: shutdown and capacity may have changed.
    const late = config.authenticate ? capacityRefusal() : null;
    if (late) return refuse(late, request);
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
      return refuse(refusal("upgrade_failed"), request);
    }
    const connection = new Connection<State, Push>(upgraded.socket, {
      id: crypto.randomUUID(),
      state: auth.state,
      protocol: protocol ?? "",
    }, shared);
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
    for (const connection of open) connection.closeFor("SHUTDOWN");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, drainTimeout);
    });
    await Promise.race([
      Promise.all(open.map((connection) => connection.finished)),
      deadline,
    ]);
    clearTimeout(timer);
    for (const connection of open) connection.terminate("drain timeout");
    await Promise.all(open.map((connection) => connection.finished));
    await pubsub.close();
  }

  function health(): ServerHealth {
    const backplane = pubsub.health();
    return {
      status: shutdownPromise
        ? "shutting_down"
        : backplane.state === "ok"
        ? "ok"
        : "degraded",
      connections: connections.size,
      backplane,
    };
  }

  const server: DuplexServer<State, Push> = {
    async fetch(request, info) {
      try {
        if (isUpgradeAttempt(request)) return await upgrade(request, info);
        return await http.handle(request, { info, server });
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
    health,
    metrics() {
      return metrics.render({
        connections: connections.size,
        backplane: pubsub.health(),
      });
    },
  };
  return server;
}
