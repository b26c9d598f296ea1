/**
 * The library's own pushes as the AsyncAPI document lists them.
 *
 * @module
 */

import {
  int,
  type JsonSchema,
  object,
  str,
  WIRE_ERROR,
} from "./json_schema.ts";

/**
 * The library's pushes (docs/PROTOCOL.md), which every duplex client may
 * receive; presence members carry `meta` (the router's `presence` schema,
 * or any JSON).
 */
export function libraryPushes(
  meta: JsonSchema = true as unknown as JsonSchema,
): Record<string, { summary: string; schema: JsonSchema }> {
  const MEMBERS: JsonSchema = {
    type: "object",
    description: "Presence key → the member's metadata.",
    additionalProperties: meta,
  };
  return {
    "presence.state": {
      summary: "Who is in a topic when the connection joined.",
      schema: object({ topic: str(), members: MEMBERS, count: int() }),
    },
    "presence.diff": {
      summary: "Who joined and who left a topic.",
      schema: object({
        topic: str(),
        joins: MEMBERS,
        leaves: MEMBERS,
        count: int(),
      }),
    },
    "stream.reset": {
      summary:
        "A topic's stream cannot go on from the client's position: join again with since.",
      schema: object({ topic: str() }),
    },
    "auth.refresh": {
      summary:
        "The identity expires: send auth.refresh with a new token before the deadline.",
      schema: object({
        reason: { enum: ["expired", "requested"] },
        deadline: int(),
      }),
    },
    "topic.left": {
      summary: "The connection was removed from a topic, and why.",
      schema: object({ topic: str(), code: str(), message: str() }),
    },
    "topic.joined": {
      summary:
        "The server put the connection in a topic (the server API's subscribe).",
      schema: object({ topic: str() }),
    },
    "stream.chunk": {
      summary: "A chunk of a streamed reply (PROTOCOL.md §8).",
      schema: object({ stream: str(), chunk: true as unknown as JsonSchema }),
    },
    "stream.end": {
      summary: "A streamed reply ended with its result.",
      schema: object({ stream: str(), result: true as unknown as JsonSchema }),
    },
    "stream.error": {
      summary: "A streamed reply failed, was cancelled or expired.",
      schema: object({ stream: str(), error: WIRE_ERROR }),
    },
    error: {
      summary: "An error for a message sent without an id.",
      schema: WIRE_ERROR,
    },
  };
}
