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
import { ROOM_HISTORY } from "./chat.ts";
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
  // Every room has presence with members and history; options may say
  // otherwise. The BroadcastChannel engine cannot number publishes across
  // isolates, so there rooms have presence only (see README, "History and
  // recovery": `deno serve --parallel` keeps history with REDIS_URL).
  const history = options.backplane?.kind === "broadcast-channel"
    ? undefined
    : ROOM_HISTORY;
  return createServer({
    topics: [{ match: "*", presence: true, history }],
    ...options,
    router: events,
    http: httpRoutes,
    authenticate,
  });
}
