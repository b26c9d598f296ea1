/**
 * The example app: the chat's events and HTTP routes on one duplex server,
 * and the operators' socket at `/admin` beside it on the same port.
 *
 * @module
 */

import {
  combineServers,
  createServer,
  type DuplexServer,
  type ServerOptions,
} from "@duplex-ws/duplex";
import { httpTransport } from "@duplex-ws/http-transport";
import { createAdmin } from "./admin.ts";
import { appAuth, type AuthConfig, type UserState } from "./auth.ts";
import { events, type ServerPushes } from "./events.ts";
import { ROOM_HISTORY } from "./chat.ts";
import { httpRoutes } from "./http.ts";

/** Options of the example app: any server option but its router, routes and auth, plus its identity settings. */
export type AppOptions =
  & Omit<
    ServerOptions<UserState, ServerPushes>,
    "router" | "http" | "authenticate" | "auth"
  >
  & {
    /**
     * The identity settings (`AUTH_SECRET`…).
     * @default {a random secret for this process: tokens it signs hold only here}
     */
    identity?: AuthConfig;
    /**
     * Turns the server API on at `POST /api/<method>` (`API_KEY`).
     * @default {none: the API is off}
     */
    apiKey?: string;
  };

/**
 * A random HS256 secret (32 bytes, in hex), for an app started without one
 * (development). Hex, not `btoa`: the runtime loads `btoa` on its first call,
 * 2 ms of the start.
 */
export function randomSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Creates the example app. */
export function createApp(
  options: AppOptions = {},
): DuplexServer<UserState, ServerPushes> {
  // Every room has presence with members and history; options may say
  // otherwise. The BroadcastChannel engine cannot number publishes across
  // isolates, so there rooms have presence only (see docs/GUIDE.md, "History and
  // recovery": `deno serve --parallel` keeps history with REDIS_URL).
  const history = options.backplane?.kind === "broadcast-channel"
    ? undefined
    : ROOM_HISTORY;
  const { identity = { secret: randomSecret() }, apiKey, ...server } = options;
  const chat = createServer({
    topics: [{ match: "*", presence: true, history }],
    ...server,
    router: events,
    http: httpRoutes(identity, apiKey),
    auth: appAuth(identity),
    // For browsers whose WebSocket is blocked: SSE down, POST up.
    httpTransport: httpTransport(),
  });
  // A second endpoint on the same port: the operators' socket at /admin.
  const admin = createAdmin(
    chat as DuplexServer<unknown, never>,
    identity,
    server.logger,
  );
  return combineServers(chat, admin);
}
