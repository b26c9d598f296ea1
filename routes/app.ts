/**
 * The example app: its events and HTTP routes on one duplex server.
 *
 * @module
 */

import {
  createServer,
  type DuplexServer,
  type ServerOptions,
} from "../lib/mod.ts";
import { authenticate, type UserState } from "./auth.ts";
import { events, type ServerEvents } from "./events.ts";
import { createHttpRoutes } from "./http.ts";

/** Options of the example app: any server option but its router and routes. */
export type AppOptions = Omit<
  ServerOptions<UserState, ServerEvents>,
  "router" | "http" | "authenticate"
>;

/** Creates the example app. */
export function createApp(
  options: AppOptions = {},
): DuplexServer<UserState, ServerEvents> {
  const app: DuplexServer<UserState, ServerEvents> = createServer({
    ...options,
    router: events,
    http: createHttpRoutes(() => app),
    authenticate,
  });
  return app;
}
