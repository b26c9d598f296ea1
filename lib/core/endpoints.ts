/**
 * Several WebSocket endpoints on one port: `combineServers` routes each
 * upgrade by its path to the server made for it (its own router, `auth`,
 * limits and topics), answers plain HTTP with the first server's routes,
 * and shuts them all down together. One `fetch` for `Deno.serve`, `deno
 * serve` or Deploy, one `listen`, one drain.
 *
 * @module
 */

import type { PushMap } from "./context.ts";
import { isStreamRequest, isUpgradeAttempt, pathOf } from "./handshake.ts";
import type { Admitted } from "./gate.ts";
import { labelled, renderMetrics } from "./metrics.ts";
import { serverInternals, setServerInternals } from "./server_internals.ts";
import type {
  DuplexServer,
  ServerHealth,
  ServerInternals,
} from "./server_types.ts";

/** A server of any state and pushes, as `combineServers` takes the others. */
// deno-lint-ignore no-explicit-any
export type AnyServer = DuplexServer<any, any>;

/**
 * Puts several servers on one port. Each keeps its own path (`path`
 * option), router, `auth`/`authenticate`, connection limits and topics (each
 * has its own engine: give Redis engines of different endpoints different
 * prefixes); the socket budget is the process's, shared by all. Plain HTTP
 * requests go to the first server's `http` routes, whose handlers get the
 * combined server (so `/healthz` reports every endpoint).
 *
 * @param main The server whose HTTP routes answer plain requests, and whose
 * `publish` and `presence` the combined server offers.
 * @param more The other endpoints.
 * @throws {TypeError} when two servers have the same path.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { combineServers, createServer, EventRouter } from "@duplex-ws/duplex";
 *
 * const chat = createServer({
 *   router: new EventRouter().on("echo", z.unknown(), (d) => d),
 * });
 * const admin = createServer({
 *   path: "/admin",
 *   router: new EventRouter().on("stats", z.undefined(), () => ({})),
 *   authenticate: () => new Response("Forbidden", { status: 403 }),
 * });
 * const app = combineServers(chat, admin);
 * console.assert(app.health().connections === 0);
 * await app.shutdown();
 * ```
 */
export function combineServers<State, Push extends PushMap>(
  main: DuplexServer<State, Push>,
  ...more: AnyServer[]
): DuplexServer<State, Push> {
  const all: AnyServer[] = [main, ...more];
  const byPath = endpointsByPath(all);
  const mainInternals = serverInternals<State>(
    main as DuplexServer<State, never>,
  );
  const endpointOf = (request: Request) =>
    byPath.get(pathOf(request) ?? "")?.internals ?? mainInternals;
  let stopping: Promise<void> | undefined;
  const combined: DuplexServer<State, Push> = {
    fetch(request, info) {
      // An upgrade, or the HTTP transport's request: to its endpoint.
      const endpoint = !isUpgradeAttempt(request) && !isStreamRequest(request);
      if (endpoint) return mainInternals.http(request, info, combined as never);
      return (byPath.get(pathOf(request) ?? "")?.server ?? main).fetch(
        request,
        info,
      );
    },
    shutdown(options) {
      stopping ??= Promise.all(all.map((s) => s.shutdown(options))).then(
        () => {},
      );
      return stopping;
    },
    get connections() {
      return new Map(all.flatMap((s) => [...s.connections]));
    },
    get shuttingDown() {
      return main.shuttingDown;
    },
    ready: Promise.all(all.map((s) => s.ready)).then(() => {}),
    cluster: main.cluster,
    publish: (topic, event, data, options) =>
      main.publish(topic, event, data, options),
    presence: (topic) => main.presence(topic),
    history: (topic, options) => main.history(topic, options),
    reauthenticate: (subject) =>
      all.reduce((sum, s) => sum + s.reauthenticate(subject), 0),
    health: () => combinedHealth(all),
    metrics: () => renderMetrics(internals.metricFamilies()),
  };
  const internals = combinedInternals(
    mainInternals,
    byPath,
    endpointOf,
    combined,
  );
  setServerInternals(combined as DuplexServer<State, never>, internals);
  return combined;
}

interface Endpoint {
  server: AnyServer;
  internals: ServerInternals<unknown>;
}

/** Path → the server for it and its internals. */
function endpointsByPath(all: AnyServer[]): Map<string, Endpoint> {
  const byPath = new Map<string, Endpoint>();
  for (const server of all) {
    const internals = serverInternals<unknown>(server);
    const { path } = internals.config;
    if (byPath.has(path)) {
      throw new TypeError(
        `Cannot combine servers: two have the path "${path}"`,
      );
    }
    byPath.set(path, { server, internals });
  }
  return byPath;
}

/** The worst status of every endpoint, and their counts added up. */
function combinedHealth(all: AnyServer[]): ServerHealth {
  const each = all.map((s) => s.health());
  const status = each.some((h) => h.status === "shutting_down")
    ? "shutting_down"
    : each.some((h) => h.status === "degraded")
    ? "degraded"
    : "ok";
  return {
    status,
    connections: each.reduce((sum, h) => sum + h.connections, 0),
    lingering: each.reduce((sum, h) => sum + h.lingering, 0),
    backplane: each[0].backplane,
  };
}

/** What a transport reaches of the combined server: each handshake goes to its endpoint. */
function combinedInternals<State>(
  main: ServerInternals<State>,
  byPath: Map<string, Endpoint>,
  endpointOf: (request: Request) => ServerInternals<unknown>,
  combined: DuplexServer<State, never>,
): ServerInternals<State> {
  const endpoints = [...byPath.values()];
  /** Which endpoint admitted a handshake, for `accept` and `cancel`. */
  const owners = new WeakMap<object, ServerInternals<unknown>>();
  const ownerOf = (admitted: object) => owners.get(admitted) ?? main;
  return {
    async admit(request, info) {
      const endpoint = endpointOf(request);
      const admitted = await endpoint.admit(request, info);
      if (!(admitted instanceof Response)) owners.set(admitted, endpoint);
      return admitted as Response | Admitted<State>;
    },
    accept: (transport, admitted) =>
      ownerOf(admitted).accept(transport, admitted),
    refuse: (refused, request) => endpointOf(request).refuse(refused, request),
    cancel: (admitted) => ownerOf(admitted).cancel(admitted),
    // A transport enforces these itself: the strictest of the endpoints'.
    config: {
      path: main.config.path,
      maxMessageSize: Math.min(
        ...endpoints.map((e) => e.internals.config.maxMessageSize),
      ),
      idleTimeout: main.config.idleTimeout,
      closeTimeout: main.config.closeTimeout,
      socketBudget: main.config.socketBudget,
    },
    http: (request, info) => main.http(request, info, combined),
    lingering: () =>
      endpoints.reduce((sum, e) => sum + e.internals.lingering(), 0),
    // The first endpoint's as if it were alone, the others' labelled.
    metricFamilies: () =>
      [...byPath].flatMap(([path, { internals }], index) =>
        index === 0 ? internals.metricFamilies() : labelled(
          internals.metricFamilies(),
          `endpoint="${path.replace(/["\\\n]/g, "_")}"`,
        )
      ),
  };
}
