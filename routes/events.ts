/**
 * The example app's WebSocket events: `echo`, `whoami`, `clock.sync` (which
 * asks the client back: a server request), a `welcome` push, and the chat
 * (`routes/chat.ts`). Every event, reply and push has a schema, so the
 * AsyncAPI document at `/asyncapi.json` describes all of it.
 *
 * @module
 */

import { z } from "zod";
import { defineRequest, EventRouter } from "@duplex-ws/duplex";
import type { UserState } from "./auth.ts";
import {
  chatMessage,
  type ChatPushes,
  joinReply,
  joinRoom,
  joinSchema,
  leaveReply,
  leaveRoom,
  roomSchema,
  say,
  sayReply,
  saySchema,
  who,
  whoReply,
} from "./chat.ts";

/** `welcome`: sent once, right after a connection opens. */
export const welcome = z.object({
  id: z.string(),
  user: z.string(),
  events: z.array(z.string()),
});

/** What the example server pushes. */
export type ServerPushes = ChatPushes & {
  welcome: z.infer<typeof welcome>;
};

/** A server request: the client's clock, in milliseconds since the epoch. */
export const clientTime = defineRequest("client.time", {
  data: z.undefined(),
  reply: z.number().int().min(0),
  summary: "The server asks the client for its clock (Date.now()).",
});

/** `whoami`'s reply. */
const whoamiReply = z.object({
  id: z.string(),
  user: z.string(),
  protocol: z.string(),
});

/** `clock.sync`'s reply: how far the client's clock is ahead of the server's. */
const clockReply = z.object({ skew: z.number(), roundTrip: z.number() });

/** The example app's event router. Stateless, so one serves every server. */
export const events = new EventRouter<UserState, ServerPushes>()
  .push("welcome", welcome, { summary: "Sent once, when the socket opens." })
  .push("chat.message", chatMessage, {
    summary: "A message said in a room, with its position in the room.",
  })
  .request(clientTime)
  .on("echo", z.unknown(), (data) => data, {
    reply: z.unknown(),
    summary: "Answers what it was sent.",
  })
  .on("whoami", z.undefined(), (_data, ctx) => ({
    id: ctx.id,
    user: ctx.state.user,
    protocol: ctx.protocol,
  }), { reply: whoamiReply, summary: "Who this connection is." })
  .on("clock.sync", z.undefined(), async (_data, ctx) => {
    const sent = Date.now();
    const clock = await ctx.request(clientTime, undefined, { timeout: 5_000 });
    const now = Date.now();
    return { skew: clock - (sent + now) / 2, roundTrip: now - sent };
  }, {
    reply: clockReply,
    summary:
      "Estimates the client's clock skew: the server asks client.time back.",
  })
  .on("chat.join", joinSchema, joinRoom, {
    reply: joinReply,
    summary:
      "Joins a room: missed or recent messages, presence.state, then this reply.",
  })
  .on("chat.say", saySchema, say, {
    reply: sayReply,
    summary: "Says something in a room the connection is in.",
  })
  .on("chat.leave", roomSchema, leaveRoom, {
    reply: leaveReply,
    summary: "Leaves a room.",
  })
  .on("chat.who", roomSchema, who, {
    reply: whoReply,
    summary: "Who is in a room, with their status and colour.",
  })
  .onOpen((ctx) => {
    ctx.emit("welcome", {
      id: ctx.id,
      user: ctx.state.user,
      events: events.eventNames(),
    });
  });

/** The type of the example app's router, for typed clients. */
export type ExampleRouter = typeof events;
