/**
 * The example app's WebSocket events: `echo`, `whoami`, a `welcome` push,
 * and the chat (`routes/chat.ts`).
 *
 * @module
 */

import { z } from "zod";
import { EventRouter } from "@duplex-ws/duplex";
import type { UserState } from "./auth.ts";
import {
  type ChatPushes,
  joinRoom,
  joinSchema,
  leaveRoom,
  roomSchema,
  say,
  saySchema,
  who,
} from "./chat.ts";

/** What the example server pushes. */
export type ServerPushes = ChatPushes & {
  /** Sent once, right after a connection opens. */
  welcome: { id: string; user: string; events: string[] };
};

/** The example app's event router. Stateless, so one serves every server. */
export const events = new EventRouter<UserState, ServerPushes>()
  .on("echo", z.unknown(), (data) => data)
  .on("whoami", z.undefined(), (_data, ctx) => ({
    id: ctx.id,
    user: ctx.state.user,
    protocol: ctx.protocol,
  }))
  .on("chat.join", joinSchema, joinRoom)
  .on("chat.say", saySchema, say)
  .on("chat.leave", roomSchema, leaveRoom)
  .on("chat.who", roomSchema, who)
  .onOpen((ctx) => {
    ctx.emit("welcome", {
      id: ctx.id,
      user: ctx.state.user,
      events: events.eventNames(),
    });
  });

/** The type of the example app's router, for typed clients. */
export type ExampleRouter = typeof events;
