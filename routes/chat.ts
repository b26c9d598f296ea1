/**
 * The example chat: rooms are topics with presence. `chat.join`, `chat.say`,
 * `chat.leave` and `chat.who`; every member gets `chat.message`, and the
 * library's `presence.state` / `presence.diff` say who is in the room (one
 * entry per user, however many tabs it has open, with a status and a
 * colour), at most one diff per room every presence interval.
 *
 * @module
 */

import { z } from "zod";
import { type Context, EventError } from "@duplex-ws/duplex";
import type { UserState } from "./auth.ts";

/** What the chat pushes (besides the library's presence pushes). */
export type ChatPushes = {
  /** A message said in a room, to every member, the sender included. */
  "chat.message": { room: string; from: string; text: string; at: number };
};

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

/** `{room, status?}`: a status of at most 64 characters. */
export const joinSchema = z.object({
  room: roomName,
  status: z.string().max(64).optional(),
});

/** `{room, text}`: text of 1–2000 characters. */
export const saySchema = z.object({
  room: roomName,
  text: z.string().min(1).max(2000),
});

/** A stable colour for a name. */
export function colorOf(name: string): string {
  let hash = 0;
  for (const char of name) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
  return `hsl(${hash % 360} 60% 45%)`;
}

/**
 * `chat.join {room, status?}` → `{room, count}`; the joiner gets
 * `presence.state`, the room a `presence.diff` with the user in it.
 */
export async function joinRoom(
  { room, status = "" }: z.infer<typeof joinSchema>,
  ctx: ChatContext,
): Promise<{ room: string; count: number }> {
  const { user } = ctx.state;
  ctx.join(room, {
    presence: { key: user, meta: { status, color: colorOf(user) } },
  });
  return { room, count: (await ctx.presence(room)).count };
}

/** `chat.leave {room}` → `{room, left}`; the room hears of it in a diff (after the grace period, if it was the user's last tab). */
export function leaveRoom(
  { room }: z.infer<typeof roomSchema>,
  ctx: ChatContext,
): { room: string; left: boolean } {
  return { room, left: ctx.leave(room) };
}

/**
 * `chat.say {room, text}` → `{at}` once every node has it; every member,
 * the sender included, gets `chat.message`. Errors: `NOT_A_MEMBER`;
 * `NOT_DELIVERED` when the backplane is down (only this node's members got it).
 */
export async function say(
  { room, text }: z.infer<typeof saySchema>,
  ctx: ChatContext,
): Promise<{ at: number }> {
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
  });
  if (result.remote === "failed") {
    throw new EventError(
      "NOT_DELIVERED",
      "Other servers are unreachable: only members on this server got the message",
    );
  }
  return { at };
}

/**
 * `chat.who {room}` → `{room, count, members}`: who is in the room, with
 * their status and colour (members only: `NOT_A_MEMBER` otherwise).
 */
export async function who(
  { room }: z.infer<typeof roomSchema>,
  ctx: ChatContext,
): Promise<{ room: string; count: number; members: RoomMember[] }> {
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
