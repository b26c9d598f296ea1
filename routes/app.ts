/**
 * The example app: its events and HTTP routes on one duplex server.
 *
 * @module
 */

import {
  createServer,
  type DuplexServer,
  type ServerOptions,
} from "@duplex-ws/duplex";
import { authenticate, type UserState } from "./auth.ts";
import { events, type ServerPushes } from "./events.ts";
import { httpRoutes } from "./http.ts";

/** Options of the example app: any server option but its router and routes. */
export type AppOptions = Omit<
  ServerOptions<UserState, ServerPushes>,
  "router" | "http" | "authenticate"
>;

/** Creates the example app. */
export function createApp(
  options: AppOptions = {},
): DuplexServer<UserState, ServerPushes> {
  return createServer({
    // Every room has presence with members; options may say otherwise.
    topics: [{ match: "*", presence: true }],
    ...options,
    router: events,
    http: httpRoutes,
    authenticate,
  });
}
