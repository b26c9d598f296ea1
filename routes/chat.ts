/**
 * The example chat: rooms are topics with presence and history. `chat.join`,
 * `chat.say`, `chat.leave` and `chat.who`; every member gets
 * `chat.message` with its position (`offset`, `epoch`), and the library's
 * `presence.state` / `presence.diff` say who is in the room (one entry per
 * user, however many tabs it has open, with a status and a colour), at most
 * one diff per room every presence interval. A member that comes back with
 * `since` gets what was said meanwhile, once, in order; a first join can ask
 * for the `last` messages.
 *
 * @module
 */

import { z } from "zod";
import { type Context, EventError } from "@duplex-ws/duplex";
import type { UserState } from "./auth.ts";

/**
 * `chat.message`: a message said in a room, to every member, the sender
 * included, with its position in the room's stream.
 */
export const chatMessage = z.object({
  room: z.string(),
  from: z.string(),
  text: z.string(),
  at: z.number(),
  offset: z.number().int().min(0),
  epoch: z.string(),
});

/** What the chat pushes (besides the library's presence pushes). */
export type ChatPushes = {
  "chat.message": z.infer<typeof chatMessage>;
};

/** How much of each room's stream is kept (the example app's topic policy). */
export const ROOM_HISTORY = { size: 500, ttl: 600_000 };

/** A member of a room as `chat.who` lists it and presence pushes carry it. */
export interface RoomMember {
  /** The member's name. */
  name: string;
  /** What the member said about itself on joining, if anything. */
  status: string;
  /** A colour derived from the name, for the page. */
  color: string;
}

type ChatContext = Context<UserState, ChatPushes>;

/** A room name: what a topic may be (checked again by `join`: BAD_TOPIC). */
export const roomName = z.string().min(1).max(128);

/** `{room}`. */
export const roomSchema = z.object({ room: roomName });

/** A stream position. */
export const position = z.object({
  offset: z.number().int().min(0),
  epoch: z.string().min(1).max(64),
});

/**
 * `{room, status?, since?, last?}`: a status of at most 64 characters; the
 * last position seen (to recover); on a first join, how many recent
 * messages to get (1–100).
 */
export const joinSchema = z.object({
  room: roomName,
  status: z.string().max(64).optional(),
  since: position.optional(),
  last: z.number().int().min(1).max(100).optional(),
});

/** `{room, text, key?}`: text of 1–2000 characters; a key makes a resend harmless. */
export const saySchema = z.object({
  room: roomName,
  text: z.string().min(1).max(2000),
  key: z.string().min(1).max(128).optional(),
});

/** A stable colour for a name. */
export function colorOf(name: string): string {
  let hash = 0;
  for (const char of name) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360} 60% 45%)`;
}

/**
 * `chat.join`'s reply: the room, its member count, the topic (for the typed
 * client's bookkeeping), the room's position once the joiner has caught up
 * and, with `since`, whether every message said meanwhile was sent (before
 * this reply).
 */
export const joinReply = z.object({
  room: z.string(),
  count: z.number().int().min(0),
  topic: z.string(),
  position: position.optional(),
  recovered: z.boolean().optional(),
});

/** `chat.join`'s reply. */
export type JoinReply = z.infer<typeof joinReply>;

/** `chat.leave`'s reply. */
export const leaveReply = z.object({ room: z.string(), left: z.boolean() });

/** `chat.say`'s reply: when, where in the stream, whether a resend. */
export const sayReply = z.object({
  at: z.number(),
  position: position.optional(),
  duplicate: z.boolean().optional(),
});

/** `chat.who`'s reply. */
export const whoReply = z.object({
  room: z.string(),
  count: z.number().int().min(0),
  members: z.array(
    z.object({ name: z.string(), status: z.string(), color: z.string() }),
  ),
});

/**
 * `chat.join {room, status?, since?, last?}` → `{room, count, topic,
 * position, recovered?}`. Before the reply: the missed messages (with
 * `since`) or the last ones (with `last`), and `presence.state`; the room
 * gets a `presence.diff` with the user in it.
 */
export async function joinRoom(
  { room, status = "", since, last }: z.infer<typeof joinSchema>,
  ctx: ChatContext,
): Promise<JoinReply> {
  const { user } = ctx.state;
  const joined = await ctx.join(room, {
    presence: { key: user, meta: { status, color: colorOf(user) } },
    since,
    last,
  });
  const reply: JoinReply = {
    room,
    count: (await ctx.presence(room)).count,
    topic: joined.topic,
    position: joined.position,
  };
  if (joined.recovered !== undefined) reply.recovered = joined.recovered;
  return reply;
}

/**
 * `chat.leave {room}` → `{room, left}`; the room hears of it in a diff
 * (after the grace period, if it was the user's last tab).
 */
export function leaveRoom(
  { room }: z.infer<typeof roomSchema>,
  ctx: ChatContext,
): z.infer<typeof leaveReply> {
  return { room, left: ctx.leave(room) };
}

/**
 * `chat.say {room, text, key?}` → `{at, position, duplicate?}` once the
 * message is in the room's history; every member, the sender included,
 * gets `chat.message`. A resend with the same `key` answers the first
 * one's position and says nothing again. Errors: `NOT_A_MEMBER`;
 * `NOT_DELIVERED` when the message could not be stored (no one got it).
 */
export async function say(
  { room, text, key }: z.infer<typeof saySchema>,
  ctx: ChatContext,
): Promise<z.infer<typeof sayReply>> {
  if (!ctx.topics.has(room)) {
    throw new EventError(
      "NOT_A_MEMBER",
      "Join the room before saying something there",
    );
  }
  const at = Date.now();
  const result = await ctx.publish(room, "chat.message", {
    room,
    from: ctx.state.user,
    text,
    at,
  }, { key });
  if (result.remote === "failed") {
    throw new EventError(
      "NOT_DELIVERED",
      "The message could not be stored: no one got it, send it again",
    );
  }
  return result.duplicate
    ? { at, position: result.position, duplicate: true }
    : { at, position: result.position };
}

/**
 * `chat.who {room}` → `{room, count, members}`: who is in the room, with
 * their status and colour (members only: `NOT_A_MEMBER` otherwise).
 */
export async function who(
  { room }: z.infer<typeof roomSchema>,
  ctx: ChatContext,
): Promise<z.infer<typeof whoReply>> {
  if (!ctx.topics.has(room)) {
    throw new EventError("NOT_A_MEMBER", "Join the room to see who is there");
  }
  const { count, members = {} } = await ctx.presence(room);
  return {
    room,
    count,
    members: Object.entries(members).map(([name, meta]) => ({
      name,
      ...(meta as Omit<RoomMember, "name">),
    })),
  };
}
