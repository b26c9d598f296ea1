/**
 * `createServer`: the one fetch handler for HTTP and WebSocket on one port,
 * the registry of open connections, and graceful shutdown.
 *
 * @module
 */

import {
  Admission,
  descriptorBudget,
  PROCESS_SOCKETS,
  readDescriptorLimit,
  type Reservation,
} from "./admission.ts";
import {
  Connection,
  type ConnectionShared,
  type ServerSocket,
} from "./connection.ts";
import { Dispatcher } from "./dispatch.ts";
import type { PublishData, PushMap } from "./context.ts";
import {
  checkHandshake,
  type HandshakeRefusal,
  isUpgradeAttempt,
  negotiateProtocol,
  refusal,
  refusalResponse,
} from "./handshake.ts";
import { HttpRouter } from "./http_router.ts";
import { throttle } from "./logger.ts";
import { Metrics } from "./metrics.ts";
import { createOriginPolicy } from "./origin_policy.ts";
import type { BackplaneHealth, Presence } from "./pubsub/backplane.ts";
import { type PublishResult, PubSub } from "./pubsub/pubsub.ts";
import { topicPolicies } from "./pubsub/topic_policy.ts";
import type { Context } from "./context.ts";
import { resolveServerOptions, type ServerOptions } from "./server_options.ts";
import {
  AuthFailure,
  AuthUnavailableError,
  type Identity,
  unauthorizedResponse,
} from "./auth/identity.ts";
import { tokenFromProtocols } from "./auth/credentials.ts";
import { AUTH_PROTOCOL, AUTH_REFRESH } from "./protocol/auth.ts";
import { refreshRoute } from "./auth/refresh_route.ts";

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
    data: PublishData<Push[E]>,
    options?: { key?: string },
  ): Promise<PublishResult>;
  /** The member count of a topic on every live node. */
  presence(topic: string): Promise<Presence>;
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

/**
 * The client's address: the TCP peer's, or with `trustProxy` hops the entry
 * that many from the right of `X-Forwarded-For` (read before the upgrade,
 * after which Deno refuses).
 */
export function clientAddress(
  request: Request,
  info: Deno.ServeHandlerInfo | undefined,
  trustProxy: number,
): string | undefined {
  if (trustProxy > 0) {
    const hops = request.headers.get("x-forwarded-for")?.split(",");
    const entry = hops?.[hops.length - trustProxy]?.trim();
    if (entry) return entry.slice(0, 64);
  }
  const addr = info?.remoteAddr;
  return addr && "hostname" in addr ? addr.hostname : undefined;
}

/** What the handshake checks let through: who the connection will be. */
export interface Admitted<State> {
  /** The state `authenticate` returned. */
  readonly state: State;
  /** With the `auth` option: the verified identity. */
  readonly identity?: Identity<State>;
  /** The negotiated subprotocol, if any. */
  readonly protocol: string | undefined;
  /** The client's address, if known. */
  readonly address: string | undefined;
  /** The capacity held for it until it is accepted or cancelled. */
  readonly reservation: Reservation;
}

/** What a transport needs of a server besides `fetch`. Internal. */
export interface ServerInternals<State> {
  /** Runs every handshake check: a refusal `Response`, or who to accept. */
  admit(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Response | Admitted<State>>;
  /** Wraps an upgraded socket in a connection and registers it; `open` when it is open already. */
  accept(socket: ServerSocket, admitted: Admitted<State>, open?: boolean): void;
  /** Counts and logs a refusal decided by the transport itself. */
  refuse(refused: HandshakeRefusal, request: Request): Response;
  /** Gives back the capacity of an admitted handshake that was never accepted. */
  cancel(admitted: Admitted<State>): void;
  /** What a transport must enforce itself, and what `combineServers` routes by. */
  readonly config: {
    readonly path: string;
    readonly maxMessageSize: number;
    readonly idleTimeout: number;
    readonly closeTimeout: number;
  };
  /** Answers a plain HTTP request with the server's routes, `server` being the one named. */
  http(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
    server: DuplexServer<State, never>,
  ): Promise<Response>;
  /** Open sockets duplex no longer counts as connections (see `ServerHealth`). */
  lingering(): number;
}

const internals = new WeakMap<object, ServerInternals<unknown>>();

/** Gives a server object made elsewhere (`combineServers`) its internals. Internal. */
export function setServerInternals<State>(
  server: DuplexServer<State, never>,
  found: ServerInternals<State>,
): void {
  internals.set(server, found as ServerInternals<unknown>);
}

/** A server's internals, for the transports (`listen` and `./node`). Internal. */
export function serverInternals<State>(
  server: DuplexServer<State, never>,
): ServerInternals<State> {
  const found = internals.get(server);
  if (!found) throw new TypeError("Not a server made by createServer");
  return found as ServerInternals<State>;
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
    ...config,
    policyOf: topicPolicies(config.topics),
  });
  if (config.topics.some((policy) => policy.history) && !pubsub.numbers) {
    throw new TypeError(
      `Cannot create server: topics with history need an engine that numbers publishes (local or Redis), not ${pubsub.backplaneKind}`,
    );
  }
  const ready = pubsub.start();
  const limit = config.maxSockets === "auto"
    ? readDescriptorLimit()
    : undefined;
  const admission = new Admission({
    ...config,
    socketBudget: config.maxSockets !== "auto"
      ? config.maxSockets
      : limit
      ? descriptorBudget(limit)
      : Infinity,
    // Descriptors are the process's: every server in it spends one budget.
    sockets: PROCESS_SOCKETS,
  });
  const retryLater = { "Retry-After": String(config.retryAfter) };
  let shutdownPromise: Promise<void> | undefined;
  const shared: ConnectionShared<State, Push> = {
    dispatcher: new Dispatcher(router, {
      logger,
      metrics,
      library: config.auth
        ? new Map([[AUTH_REFRESH, refreshRoute]])
        : undefined,
    }),
    limits: config,
    closeTimeout: config.closeTimeout,
    logger,
    pubsub,
    metrics,
    auth: config.auth,
    refreshGrace: config.refreshGrace,
    requestTimeout: config.requestTimeout,
    maxPendingRequests: config.maxPendingRequests,
    onFinished: (finished) => connections.delete(finished.id),
    onReleased: (released) =>
      admission.release(released.address, released.subject),
  };

  // A peer can cause refusals at will: their log lines are bounded per second.
  const logRefusal = throttle(
    (message, fields) => logger.info(message, fields),
    20,
  );

  /** Counts, logs and answers a refusal: the one way a handshake is refused. */
  function refuse(
    refused: HandshakeRefusal | AuthFailure | Response,
    request: Request,
  ): Response {
    const reason = refused instanceof Response
      ? "auth"
      : refused instanceof AuthFailure
      ? `token_${refused.reason}`
      : refused.reason;
    const response = refused instanceof Response
      ? refused
      : refused instanceof AuthFailure
      ? unauthorizedResponse(refused)
      : refusalResponse(refused);
    metrics.handshakeRefused(reason);
    logRefusal("handshake refused", {
      reason,
      status: response.status,
      path: new URL(request.url).pathname,
      origin: request.headers.get("origin") ?? undefined,
    });
    return response;
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

  /**
   * What the server cannot take now (shutdown, sockets, the address's
   * share), or a reservation of a socket for this handshake.
   */
  function reserve(
    address: string | undefined,
  ): HandshakeRefusal | Reservation {
    if (shutdownPromise) return refusal("shutting_down");
    const reserved = admission.reserve(address);
    return typeof reserved === "string"
      ? refusal(reserved, retryLater)
      : reserved;
  }

  /**
   * Runs `authenticate` (or `auth.authenticate`), bounded by
   * `maxPendingHandshakes`: the state (and identity), or the refusal.
   */
  async function authenticate(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<
    | { state: State; identity?: Identity<State> }
    | HandshakeRefusal
    | AuthFailure
    | Response
  > {
    const hook = config.auth?.authenticate ?? config.authenticate;
    if (!hook) return { state: undefined as State };
    if (!admission.beginPending()) {
      return refusal("too_many_handshakes", retryLater);
    }
    try {
      const result = config.auth
        ? await config.auth.authenticate(request, info)
        : await config.authenticate!(request, info);
      if (result instanceof Response || result instanceof AuthFailure) {
        return result;
      }
      if (!config.auth) return { state: result as State };
      const identity = result as Identity<State>;
      if (typeof identity?.subject !== "string" || identity.subject === "") {
        throw new TypeError("auth.authenticate returned no subject");
      }
      return { state: identity.state, identity };
    } catch (error) {
      if (error instanceof AuthFailure) return error;
      if (error instanceof AuthUnavailableError) {
        logger.warn("credentials cannot be checked", { error: error.message });
        return refusal("auth_unavailable", retryLater);
      }
      logger.error("authenticate failed", { error });
      return refusal("auth_error");
    } finally {
      admission.endPending();
    }
  }

  async function admit(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Response | Admitted<State>> {
    const address = clientAddress(request, info, config.trustProxy);
    const invalid = requestRefusal(request);
    if (invalid) return refuse(invalid, request);
    // Capacity is reserved before the hook runs, so that handshakes waiting
    // in it at once cannot all take the last place.
    const reservation = reserve(address);
    if ("reason" in reservation) return refuse(reservation, request);
    const refuseReserved = (refused: Parameters<typeof refuse>[0]) => {
      admission.cancel(reservation);
      return refuse(refused, request);
    };
    let auth;
    try {
      auth = await authenticate(request, info);
    } catch (error) {
      admission.cancel(reservation);
      throw error;
    }
    if (!("state" in auth)) return refuseReserved(auth);
    // The hook may have waited: shutdown may have begun.
    if (shutdownPromise) return refuseReserved(refusal("shutting_down"));
    const { identity } = auth;
    if (identity && !identity.guest) {
      const reason = admission.reserveSubject(reservation, identity.subject);
      if (reason) return refuseReserved(refusal(reason, retryLater));
    }
    const offer = request.headers.get("sec-websocket-protocol");
    // A browser that carried its token in a subprotocol must get one back,
    // never the token itself: the marker it offered next to it.
    const protocol = negotiateProtocol(offer, config.protocols) ??
      (tokenFromProtocols(offer) !== undefined &&
          negotiateProtocol(offer, [AUTH_PROTOCOL])
        ? AUTH_PROTOCOL
        : undefined);
    return { state: auth.state, identity, protocol, address, reservation };
  }

  function accept(
    socket: ServerSocket,
    admitted: Admitted<State>,
    open = false,
  ): void {
    const connection = new Connection<State, Push>(socket, {
      id: crypto.randomUUID(),
      state: admitted.state,
      identity: admitted.identity,
      protocol: admitted.protocol ?? "",
      address: admitted.address,
    }, shared);
    connections.set(connection.id, connection);
    admission.commit(admitted.reservation);
    metrics.handshakeAccepted();
    logger.info("connection opened", {
      conn: connection.id,
      protocol: connection.protocol || undefined,
      remote: admitted.address,
      subject: admitted.identity?.subject,
    });
    // npm:ws hands over a socket that is already open: it fires no "open".
    if (open) connection.handleEvent(new Event("open"));
  }

  async function upgrade(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Response> {
    const admitted = await admit(request, info);
    if (admitted instanceof Response) return admitted;
    let upgraded;
    try {
      // The protocol header is set here, not through Deno's `protocol`
      // option: Deno splits the offer on ", " only and throws for
      // "a,b", which RFC 7230 lists and clients such as npm's ws send.
      upgraded = Deno.upgradeWebSocket(request, {
        idleTimeout: config.idleTimeout,
      });
      if (admitted.protocol) {
        upgraded.response.headers.set(
          "sec-websocket-protocol",
          admitted.protocol,
        );
      }
    } catch (error) {
      logger.warn("upgrade failed", { error });
      admission.cancel(admitted.reservation);
      return refuse(refusal("upgrade_failed"), request);
    }
    accept(upgraded.socket, admitted);
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
      lingering: admission.open - admission.reserved - connections.size,
      backplane,
    };
  }

  async function answerHttp(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
    on: DuplexServer<State, never>,
  ): Promise<Response> {
    try {
      return await http.handle(request, { info, server: on });
    } catch (error) {
      logger.error("request failed", { error });
      return new Response("Internal server error\n", { status: 500 });
    }
  }

  const server: DuplexServer<State, Push> = {
    async fetch(request, info) {
      if (!isUpgradeAttempt(request)) {
        return answerHttp(request, info, server as DuplexServer<State, never>);
      }
      try {
        return await upgrade(request, info);
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
    publish(topic, event, data, options = {}) {
      try {
        return pubsub.publish(
          topic,
          pubsub.encode(topic, event, data),
          options,
        );
      } catch (error) {
        return Promise.reject(error);
      }
    },
    presence(topic) {
      return pubsub.presence(topic);
    },
    reauthenticate(subject) {
      let asked = 0;
      for (const connection of connections.values()) {
        const identity = connection.identity;
        if (identity === undefined) continue;
        if (subject !== undefined && identity.subject !== subject) continue;
        if (connection.reauthenticate()) asked++;
      }
      return asked;
    },
    health,
    metrics() {
      return metrics.render({
        connections: connections.size,
        lingering: admission.open - admission.reserved - connections.size,
        backplane: pubsub.health(),
      });
    },
  };
  internals.set(
    server,
    {
      admit,
      accept,
      refuse,
      cancel: (admitted) => admission.cancel(admitted.reservation),
      config,
      http: answerHttp,
      lingering: () => admission.open - admission.reserved - connections.size,
    } as ServerInternals<unknown>,
  );
  return server;
}
