/**
 * The example chat: rooms are topics. `chat.join`, `chat.say`, `chat.leave`
 * and `chat.who`; every member gets `chat.message` and `chat.presence`.
 *
 * @module
 */

import { z } from "zod";
import { type Context, EventError } from "@duplex-ws/duplex";
import type { UserState } from "./auth.ts";

/** What the chat pushes. */
export type ChatPushes = {
  /** A message said in a room, to every member, the sender included. */
  "chat.message": { room: string; from: string; text: string; at: number };
  /**
   * A room's member count on every node. Keep the one with the highest
   * `version`: pushes from different nodes can arrive out of order.
   */
  "chat.presence": { room: string; count: number; version: number };
};

type ChatContext = Context<UserState, ChatPushes>;

/** `{room}`: the room name is checked by `join` (BAD_TOPIC). */
export const roomSchema = z.object({ room: z.string() });

/** `{room, text}`: text of 1–2000 characters. */
export const saySchema = z.object({
  room: z.string(),
  text: z.string().min(1).max(2000),
});

/** Tells every member of `room` its current count. */
export async function announcePresence(
  ctx: ChatContext,
  room: string,
): Promise<number> {
  const { count, version } = await ctx.presence(room);
  await ctx.publish(room, "chat.presence", { room, count, version });
  return count;
}

/** `chat.join {room}` → `{room, count}`; everyone in the room gets `chat.presence`. */
export async function joinRoom(
  { room }: z.infer<typeof roomSchema>,
  ctx: ChatContext,
): Promise<{ room: string; count: number }> {
  ctx.join(room);
  return { room, count: await announcePresence(ctx, room) };
}

/** `chat.leave {room}` → `{room, left}`; the rest of the room gets `chat.presence`. */
export async function leaveRoom(
  { room }: z.infer<typeof roomSchema>,
  ctx: ChatContext,
): Promise<{ room: string; left: boolean }> {
  const left = ctx.leave(room);
  if (left) await announcePresence(ctx, room);
  return { room, left };
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
      `Join "${room}" before saying something there`,
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

/** `chat.who {room}` → `{room, count}`. */
export async function who(
  { room }: z.infer<typeof roomSchema>,
  ctx: ChatContext,
): Promise<{ room: string; count: number }> {
  return { room, count: (await ctx.presence(room)).count };
}

/** On close: tells the rooms the connection was in their new count. */
export async function announceDeparture(ctx: ChatContext): Promise<void> {
  await Promise.all([...ctx.topics].map((room) => announcePresence(ctx, room)));
}
