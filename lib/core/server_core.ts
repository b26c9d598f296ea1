/**
 * A server's parts and what they do together: the handshake pipeline and
 * the Deno upgrade, sessions started on any transport, the HTTP routes,
 * health and shutdown. `createServer` wraps it in the public object; the
 * transports reach it through the server's internals.
 *
 * @module
 */

import { AUTH_REFRESH } from "@duplex-ws/protocol";
import { type Admission, createAdmission } from "./admission.ts";
import { refreshRoute } from "./auth/refresh_route.ts";
import { AddressBudgets } from "./budget.ts";
import type { PushMap } from "./context.ts";
import { upgradeDeno } from "./deno_websocket.ts";
import { Dispatcher } from "./dispatch.ts";
import { type Admitted, clientAddress, Gate } from "./gate.ts";
import { isStreamRequest, isUpgradeAttempt, refusal } from "./handshake.ts";
import { Occupancy, withOccupancyTopics } from "./occupancy.ts";
import { HttpRouter } from "./http_router.ts";
import { ClusterApi } from "./cluster_api.ts";
import { ControlPlane } from "./control.ts";
import { KeyedRequests } from "./keyed_requests.ts";
import { MemoryReplies } from "./pubsub/reply_store.ts";
import type { Logger } from "./logger.ts";
import { Metrics } from "./metrics.ts";
import { createOriginPolicy } from "./origin_policy.ts";
import { PubSub } from "./pubsub/pubsub.ts";
import { topicPolicies } from "./pubsub/topic_policy.ts";
import { ReplyStreams, withStreamTopics } from "./reply_streams.ts";
import type { ResolvedServerOptions } from "./server_options.ts";
import type { DuplexServer, ServerHealth } from "./server_types.ts";
import { Session } from "./session.ts";
import type { SessionShared } from "./session_shared.ts";
import { Sessions } from "./sessions.ts";
import type { FetchTransport, Transport } from "./transport.ts";

/** The node's pub/sub for a server's options, checked against its topic policies. */
function createPubSub<State, Push extends PushMap>(
  config: ResolvedServerOptions<State, Push>,
  control: (message: string) => void,
  occupancy: Occupancy | undefined,
): PubSub {
  const pubsub = new PubSub({
    ...config,
    policyOf: withOccupancyTopics(
      withStreamTopics(topicPolicies(config.topics), config),
    ),
    control,
    occupancy,
  });
  if (config.topics.some((policy) => policy.history) && !pubsub.numbers) {
    throw new TypeError(
      `Cannot create server: topics with history need an engine that numbers publishes (local or Redis), not ${pubsub.backplaneKind}`,
    );
  }
  return pubsub;
}

/** One server's parts, wired together. */
export class ServerCore<State, Push extends PushMap> {
  /** The resolved options. */
  readonly config: ResolvedServerOptions<State, Push>;
  /** The counters `/metrics` renders. */
  readonly metrics: Metrics = new Metrics();
  /** The node's topics, presence and history. */
  readonly pubsub: PubSub;
  /** The sessions not yet finished. */
  readonly sessions: Sessions<State, Push> = new Sessions();
  /** Who may connect now. */
  readonly admission: Admission;
  /** The handshake pipeline. */
  readonly gate: Gate<State>;
  /** Settles once the engine has started. */
  readonly ready: Promise<void>;
  /** Messages between this node and the others of the engine. */
  readonly control: ControlPlane;
  /** The node's streamed replies. */
  readonly replyStreams: ReplyStreams;
  /** The actions on every node (`server.cluster`). */
  readonly cluster: ClusterApi;
  readonly #http: HttpRouter;
  /** The HTTP transport (SSE down, `POST` up), when the options give one. */
  readonly #streams: ReturnType<FetchTransport> | undefined;
  readonly #originAllowed: (request: Request) => boolean;
  readonly #occupancy: Occupancy | undefined;
  readonly #logger: Logger;
  readonly #shared: SessionShared<State, Push>;
  #stopping: Promise<void> | undefined;

  /** Builds the parts; the engine starts at once. */
  constructor(config: ResolvedServerOptions<State, Push>) {
    this.config = config;
    this.#logger = config.logger;
    this.#http = config.http ?? new HttpRouter();
    const occupancy = config.occupancy &&
      new Occupancy(config.occupancy, () => this.pubsub, config.logger);
    this.#occupancy = occupancy;
    this.pubsub = createPubSub(
      config,
      (m) => this.control.receive(m),
      occupancy,
    );
    this.control = new ControlPlane(this.pubsub.engine, config.logger);
    this.cluster = new ClusterApi({
      control: this.control,
      pubsub: this.pubsub,
      sessions: () => this.sessions.map.values() as never,
      reauthenticate: (subject) => this.sessions.reauthenticate(subject),
      messages: () => this.metrics.messages,
    });
    this.replyStreams = new ReplyStreams({
      pubsub: this.pubsub,
      control: this.control,
      logger: config.logger,
      limits: config,
    });
    this.ready = this.pubsub.start();
    this.admission = createAdmission(config);
    this.#originAllowed = createOriginPolicy(config);
    this.gate = new Gate<State>(config, {
      admission: this.admission,
      metrics: this.metrics,
      closing: () => this.#stopping !== undefined,
      originAllowed: this.#originAllowed,
    });
    this.#shared = this.#sessionShared();
    this.#streams = config.httpTransport &&
      this.#fetchTransport(config.httpTransport);
  }

  /** Whether `shutdown` has begun. */
  get stopping(): boolean {
    return this.#stopping !== undefined;
  }

  /** Open sockets duplex no longer counts as connections. */
  lingering(): number {
    const { open, reserved } = this.admission;
    return open - reserved - this.sessions.size;
  }

  /** Answers a request: plain HTTP, the HTTP transport, or an upgrade through the Deno transport. */
  async fetch(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
    server: DuplexServer<State, never>,
  ): Promise<Response> {
    const upgrade = isUpgradeAttempt(request);
    const stream = !upgrade && this.#streams !== undefined &&
      isStreamRequest(request) &&
      new URL(request.url).pathname === this.config.path;
    if (!stream && !upgrade) return this.http(request, info, server);
    try {
      return await (stream
        ? this.#streams!.handle(request, info)
        : this.#upgrade(request, info));
    } catch (error) {
      this.#logger.error("request failed", { error });
      return new Response("Internal server error\n", { status: 500 });
    }
  }

  /** Answers a plain HTTP request with the routes, their handlers seeing `server`. */
  async http(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
    server: DuplexServer<State, never>,
  ): Promise<Response> {
    try {
      const address = clientAddress(request, info, this.config);
      return await this.#http.handle(request, { info, server, address });
    } catch (error) {
      this.#logger.error("request failed", { error });
      return new Response("Internal server error\n", { status: 500 });
    }
  }

  /** Starts a session on an upgraded transport (or a stream) and registers it. */
  accept(
    transport: Transport,
    admitted: Admitted<State>,
    id: string = crypto.randomUUID(),
  ): Session<State, Push> {
    const session = new Session<State, Push>(transport, {
      id,
      state: admitted.state,
      identity: admitted.identity,
      protocol: admitted.protocol ?? "",
      address: admitted.address,
      namesTopics: admitted.namesTopics,
    }, this.#shared);
    this.sessions.add(session);
    this.admission.commit(admitted.reservation);
    this.metrics.handshakeAccepted();
    this.#logger.info("connection opened", {
      conn: session.id,
      transport: transport.kind,
      protocol: session.protocol || undefined,
      remote: admitted.address,
      subject: admitted.identity?.subject,
    });
    return session;
  }

  /** The status, the connection count and the engine's health. */
  health(): ServerHealth {
    const backplane = this.pubsub.health();
    const status = this.#stopping
      ? "shutting_down"
      : backplane.state === "ok"
      ? "ok"
      : "degraded";
    const connections = this.sessions.size;
    return { status, connections, lingering: this.lingering(), backplane };
  }

  /** Drains the sessions, then stops the engine; once. */
  shutdown(drainTimeout = this.config.drainTimeout): Promise<void> {
    if (!this.#stopping) this.replyStreams.close();
    this.#stopping ??= this.sessions.drain(drainTimeout)
      .then(() => this.#occupancy?.settle())
      .then(() => this.control.close())
      .then(() => this.pubsub.close());
    return this.#stopping;
  }

  /** The HTTP transport on this server's parts. */
  #fetchTransport(make: FetchTransport): ReturnType<FetchTransport> {
    return make({
      admit: (request, info) => this.gate.admit(request, info, "stream"),
      accept: (transport, admitted, id) =>
        this.accept(transport, admitted as Admitted<State>, id),
      control: this.control,
      originAllowed: this.#originAllowed,
      address: (request, info) => clientAddress(request, info, this.config),
      config: this.config,
    });
  }

  async #upgrade(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Response> {
    const admitted = await this.gate.admit(request, info);
    if (admitted instanceof Response) return admitted;
    try {
      const { response, transport } = upgradeDeno(
        request,
        this.config.idleTimeout,
        admitted.protocol,
      );
      transport.attach(this.accept(transport, admitted));
      return response;
    } catch (error) {
      this.#logger.warn("upgrade failed", { error });
      this.gate.cancel(admitted);
      return this.gate.refuse(refusal("upgrade_failed"), request);
    }
  }

  #sessionShared(): SessionShared<State, Push> {
    const { config, metrics, pubsub, sessions, admission, replyStreams } = this;
    return {
      ...config,
      replyStreams,
      dispatcher: new Dispatcher(config.router, {
        logger: config.logger,
        metrics,
        library: new Map([
          ...this.replyStreams.routes(),
          ...config.auth ? [[AUTH_REFRESH, refreshRoute] as const] : [],
        ]),
        keyed: new KeyedRequests({
          store: config.backplane?.replies ?? new MemoryReplies(),
          ttl: config.publishKeyTtl,
          wait: config.requestTimeout,
          logger: config.logger,
        }),
      }),
      limits: config,
      budgets: new AddressBudgets(config, config.addressBudget),
      pubsub,
      metrics,
      onFinished: (session) => sessions.delete(session.id),
      onReleased: (session) =>
        admission.release(session.address, session.subject),
    };
  }
}
