/**
 * `createServer`: the one fetch handler for HTTP and WebSocket on one port.
 * The parts are `ServerCore`'s (`server_core.ts`); this is the public
 * object made from them, and the internals the transports reach.
 *
 * @module
 */

import type { PushMap } from "./context.ts";
import { ServerCore } from "./server_core.ts";
import { setServerInternals } from "./server_internals.ts";
import { resolveServerOptions } from "./server_defaults.ts";
import type { ServerOptions } from "./server_options.ts";
import type { DuplexServer } from "./server_types.ts";

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
  const core = new ServerCore(resolveServerOptions(options));
  const { pubsub, sessions, metrics, gate, config } = core;
  const server: DuplexServer<State, Push> = {
    fetch: (request, info) => core.fetch(request, info, server as never),
    shutdown: (options = {}) => core.shutdown(options.drainTimeout),
    get connections() {
      return sessions.map;
    },
    get shuttingDown() {
      return core.stopping;
    },
    ready: core.ready,
    cluster: core.cluster,
    publish: (topic, event, data, options = {}) =>
      pubsub.publish(topic, event, data, options),
    presence: (topic) => pubsub.presence(topic),
    history: (topic, options) => pubsub.history(topic, options),
    reauthenticate: (subject) => sessions.reauthenticate(subject),
    health: () => core.health(),
    metrics: () => metrics.render(core.health()),
  };
  setServerInternals<State>(server as DuplexServer<State, never>, {
    admit: (request, info) => gate.admit(request, info),
    accept: (transport, admitted) => core.accept(transport, admitted),
    refuse: (refused, request) => gate.refuse(refused, request),
    cancel: (admitted) => gate.cancel(admitted),
    config: { ...config, socketBudget: core.admission.socketBudget },
    http: (request, info, on) => core.http(request, info, on),
    lingering: () => core.lingering(),
    metricFamilies: () => metrics.families(core.health()),
  });
  return server;
}
