/**
 * `createServer`: the one fetch handler for HTTP and WebSocket on one port,
 * assembled from its parts: the options (`server_options.ts`), the
 * handshake pipeline (`gate.ts`), the Deno transport (`deno_websocket.ts`),
 * the sessions (`session.ts`, `sessions.ts`), the node's pub/sub and the
 * counters.
 *
 * @module
 */

import { AUTH_REFRESH } from "@duplex-ws/protocol";
import {
  Admission,
  descriptorBudget,
  PROCESS_SOCKETS,
  readDescriptorLimit,
} from "./admission.ts";
import { refreshRoute } from "./auth/refresh_route.ts";
import type { PushMap } from "./context.ts";
import { upgradeDeno } from "./deno_websocket.ts";
import { Dispatcher } from "./dispatch.ts";
import { type Admitted, Gate } from "./gate.ts";
import { isUpgradeAttempt, refusal } from "./handshake.ts";
import { HttpRouter } from "./http_router.ts";
import { Metrics } from "./metrics.ts";
import { createOriginPolicy } from "./origin_policy.ts";
import { PubSub } from "./pubsub/pubsub.ts";
import { topicPolicies } from "./pubsub/topic_policy.ts";
import { setServerInternals } from "./server_internals.ts";
import {
  type ResolvedServerOptions,
  resolveServerOptions,
  type ServerOptions,
} from "./server_options.ts";
import type { DuplexServer, ServerHealth } from "./server_types.ts";
import { Session, type SessionShared } from "./session.ts";
import { Sessions } from "./sessions.ts";
import type { Transport } from "./transport.ts";

/** The node's pub/sub for a server's options, checked against its topic policies. */
function createPubSub<State, Push extends PushMap>(
  config: ResolvedServerOptions<State, Push>,
): PubSub {
  const pubsub = new PubSub({
    ...config,
    policyOf: topicPolicies(config.topics),
  });
  if (config.topics.some((policy) => policy.history) && !pubsub.numbers) {
    throw new TypeError(
      `Cannot create server: topics with history need an engine that numbers publishes (local or Redis), not ${pubsub.backplaneKind}`,
    );
  }
  return pubsub;
}

/** The admission counts, with the descriptor budget the options ask for. */
function createAdmission<State, Push extends PushMap>(
  config: ResolvedServerOptions<State, Push>,
): Admission {
  const limit = config.maxSockets === "auto"
    ? readDescriptorLimit()
    : undefined;
  return new Admission({
    ...config,
    socketBudget: config.maxSockets !== "auto"
      ? config.maxSockets
      : limit
      ? descriptorBudget(limit)
      : Infinity,
    // Descriptors are the process's: every server in it spends one budget.
    sockets: PROCESS_SOCKETS,
  });
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
  const { logger } = config;
  const http = config.http ?? new HttpRouter();
  const metrics = new Metrics();
  const pubsub = createPubSub(config);
  const ready = pubsub.start();
  const admission = createAdmission(config);
  const sessions = new Sessions<State, Push>();
  let stopping: Promise<void> | undefined;
  const gate = new Gate<State>(config, {
    admission,
    metrics,
    closing: () => stopping !== undefined,
    originAllowed: createOriginPolicy(config),
  });
  const shared: SessionShared<State, Push> = {
    ...config,
    dispatcher: new Dispatcher(config.router, {
      logger,
      metrics,
      library: config.auth
        ? new Map([[AUTH_REFRESH, refreshRoute]])
        : undefined,
    }),
    limits: config,
    pubsub,
    metrics,
    onFinished: (session) => sessions.delete(session),
    onReleased: (session) =>
      admission.release(session.address, session.subject),
  };
  const lingering = () => admission.open - admission.reserved - sessions.size;

  function accept(
    transport: Transport,
    admitted: Admitted<State>,
  ): Session<State, Push> {
    const session = new Session<State, Push>(transport, {
      id: crypto.randomUUID(),
      state: admitted.state,
      identity: admitted.identity,
      protocol: admitted.protocol ?? "",
      address: admitted.address,
    }, shared);
    sessions.add(session);
    admission.commit(admitted.reservation);
    metrics.handshakeAccepted();
    logger.info("connection opened", {
      conn: session.id,
      transport: transport.kind,
      protocol: session.protocol || undefined,
      remote: admitted.address,
      subject: admitted.identity?.subject,
    });
    return session;
  }

  async function upgrade(
    request: Request,
    info?: Deno.ServeHandlerInfo,
  ): Promise<Response> {
    const admitted = await gate.admit(request, info);
    if (admitted instanceof Response) return admitted;
    try {
      const { response, transport } = upgradeDeno(
        request,
        config.idleTimeout,
        admitted.protocol,
      );
      transport.attach(accept(transport, admitted));
      return response;
    } catch (error) {
      logger.warn("upgrade failed", { error });
      gate.cancel(admitted);
      return gate.refuse(refusal("upgrade_failed"), request);
    }
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

  function health(): ServerHealth {
    const backplane = pubsub.health();
    const status = stopping
      ? "shutting_down"
      : backplane.state === "ok"
      ? "ok"
      : "degraded";
    return {
      status,
      connections: sessions.size,
      lingering: lingering(),
      backplane,
    };
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
    shutdown({ drainTimeout = config.drainTimeout } = {}) {
      stopping ??= sessions.drain(drainTimeout).then(() => pubsub.close());
      return stopping;
    },
    get connections() {
      return sessions.map;
    },
    get shuttingDown() {
      return stopping !== undefined;
    },
    ready,
    publish: (topic, event, data, options = {}) =>
      pubsub.publish(topic, event, data, options),
    presence: (topic) => pubsub.presence(topic),
    reauthenticate: (subject) => sessions.reauthenticate(subject),
    health,
    metrics: () => metrics.render({ ...health(), backplane: pubsub.health() }),
  };
  setServerInternals<State>(server as DuplexServer<State, never>, {
    admit: (request, info) => gate.admit(request, info),
    accept,
    refuse: (refused, request) => gate.refuse(refused, request),
    cancel: (admitted) => gate.cancel(admitted),
    config,
    http: answerHttp,
    lingering,
  });
  return server;
}
