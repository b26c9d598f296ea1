/**
 * The example app's second endpoint, `/admin`: a socket for operators that
 * lists the chat's rooms with who is in them. It has its own router, its own
 * identity check (a signed token whose subject is in `ADMIN_USERS`; no
 * guests) and its own limits, on the same port as the chat.
 *
 * - No token: 401. A valid token of someone else: 403 `not_an_admin`.
 * - `admin.rooms` → `{rooms: [{room, count, members}]}`: the rooms that have
 *   members on this node, with presence from every node.
 * - `admin.overview {after?}` → `{nodes, topics, next?}`: every node, and the
 *   topics over all of them, 50 a page (what `GET /admin`, the page, shows).
 * - `admin.disconnect {user}` → `{closed}`; `admin.publish {room, text}`.
 *
 * @module
 */

import { z } from "zod";
import {
  type AuthOptions,
  createServer,
  type DuplexServer,
  EventRouter,
  type Identity,
  type Logger,
} from "@duplex-ws/duplex";
import { jwtAuth } from "@duplex-ws/jwt";
import { AUDIENCE, type AuthConfig, SESSION_COOKIE } from "./auth.ts";

/** Where the admin socket is. */
export const ADMIN_PATH = "/admin";

/** An operator's state: who. */
export interface AdminState {
  /** The admin's user name. */
  user: string;
}

/** `admin.rooms`'s reply. */
export const roomsReply = z.object({
  rooms: z.array(z.object({
    room: z.string(),
    count: z.number().int().min(0),
    members: z.record(z.string(), z.unknown()),
  })),
});

/** The admin socket's identity: a signed token of one of `config.admins`. */
export function adminAuth(config: AuthConfig): AuthOptions<AdminState> {
  const admins = new Set(config.admins ?? []);
  const base = jwtAuth<AdminState>({
    algorithms: ["HS256"],
    key: config.secret,
    audience: AUDIENCE,
    requireAudience: false,
    from: ["bearer", "protocol", { cookie: SESSION_COOKIE }],
    state: (claims) => ({ user: claims.sub }),
  });
  return {
    ...base,
    async authenticate(request, info) {
      const result = await base.authenticate(request, info);
      if (result instanceof Response || !("subject" in result)) return result;
      if (admins.has((result as Identity<AdminState>).subject)) return result;
      return Response.json({
        error: { code: "not_an_admin", message: "Admins only" },
      }, { status: 403 });
    },
  };
}

/** The admin socket's router: it reads the chat server it is given. */
export function adminRouter(chat: DuplexServer<unknown, never>) {
  return new EventRouter<AdminState>()
    .on("admin.rooms", z.undefined(), async () => {
      const names = new Set<string>();
      for (const connection of chat.connections.values()) {
        for (const topic of connection.topics) names.add(topic);
      }
      const rooms = await Promise.all(
        // A page of 100: an admin never makes the node read every room.
        [...names].sort().slice(0, 100).map(async (room) => {
          const { count, members = {} } = await chat.presence(room);
          return { room, count, members };
        }),
      );
      return { rooms };
    }, {
      reply: roomsReply,
      summary: "The rooms with members on this node, and who is in them.",
    })
    .on(
      "admin.overview",
      z.object({ after: z.string().max(128).optional() }),
      async ({ after }) => {
        const [{ nodes }, page] = await Promise.all([
          chat.cluster.info(),
          chat.cluster.topics({ after, limit: 50 }),
        ]);
        return { nodes, ...page };
      },
      { summary: "Every node, and the topics over all of them (50 a page)." },
    )
    .on(
      "admin.disconnect",
      z.object({ user: z.string().min(1).max(64) }),
      ({ user }, ctx) =>
        chat.cluster.disconnect(user, {
          reason: `disconnected by ${ctx.state.user}`,
        }),
      { summary: "Closes every connection of a user, on every node (4500)." },
    )
    .on(
      "admin.publish",
      z.object({ room: z.string().min(1).max(64), text: z.string().max(500) }),
      ({ room, text }, ctx) =>
        chat.publish(room, "chat.message" as never, {
          room,
          from: ctx.state.user,
          text,
          at: Date.now(),
        } as never),
      { summary: "Says something in a room, as the admin." },
    );
}

/** The admin router's type, for a typed client. */
export type AdminRouter = ReturnType<typeof adminRouter>;

/** The admin endpoint, for `combineServers(chat, admin)`. */
export function createAdmin(
  chat: DuplexServer<unknown, never>,
  identity: AuthConfig,
  logger?: Logger,
): DuplexServer<AdminState> {
  return createServer({
    path: ADMIN_PATH,
    router: adminRouter(chat),
    auth: adminAuth(identity),
    logger,
    // A handful of operators: a small cap and a slow handshake rate.
    maxConnections: 20,
    maxConnectionsPerIp: 5,
    handshakesPerIpPerSecond: 2,
    maxConnectionsPerSubject: 5,
  });
}
