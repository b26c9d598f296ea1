/**
 * An AsyncAPI 3.0 document made from an `EventRouter`: every event with its
 * payload and reply, every documented push, every server request and the
 * library's own pushes, on one channel (the endpoint's path). The typed
 * client reads the same router, so the contract and the types cannot drift.
 *
 * Payload schemas become JSON Schema (draft-07, which AsyncAPI's schema
 * format extends) through the validator's own conversion: the Standard JSON
 * Schema interface (`~standard.jsonSchema`, implemented by Zod 4 and
 * others). A schema without it, or one the validator cannot express (a
 * transform, a custom check), becomes `{}` (any JSON) with a description
 * saying so; a schema that accepts only `undefined` means "no payload".
 *
 * @module
 */

import type { EventRouter, PushMap, StandardSchemaV1 } from "@duplex-ws/duplex";
import {
  describeRouter,
  type EventDefinitions,
  type RequestDefinitions,
} from "@duplex-ws/duplex/router";

/** A JSON Schema object, as the document carries it. */
export type JsonSchema = Record<string, unknown>;

/** Options of {@linkcode asyncApi}. */
export interface AsyncApiOptions {
  /** The API's title. */
  title: string;
  /** The API's version (the app's, not duplex's). */
  version: string;
  /** A description, in CommonMark. */
  description?: string;
  /**
   * The endpoint's path: the channel's address.
   * @default {"/"}
   */
  path?: string;
  /**
   * Where the API is served: name → `{ host, protocol }` (`ws` or `wss`).
   * `asyncApiHandler` fills this from each request's URL when it is left out.
   * @default {no servers}
   */
  servers?: Record<string, { host: string; protocol: "ws" | "wss" }>;
  /**
   * Whether to list the library's own pushes (`presence.state`,
   * `presence.diff`, `stream.reset`, `auth.refresh`, `topic.left`, `error`).
   * @default {true}
   */
  libraryPushes?: boolean;
}

/** An AsyncAPI document, as JSON. */
export type AsyncApiDocument = Record<string, unknown> & { asyncapi: string };

/** The AsyncAPI version the documents follow. */
export const ASYNCAPI_VERSION = "3.0.0";

const CHANNEL = "socket";
const ID_SCHEMA: JsonSchema = {
  description: "Present when the sender wants exactly one reply.",
  oneOf: [{ type: "string", maxLength: 128 }, { type: "number" }],
};
const WIRE_ERROR: JsonSchema = {
  type: "object",
  properties: { code: { type: "string" }, message: { type: "string" } },
  required: ["code", "message"],
};
const MEMBERS: JsonSchema = {
  type: "object",
  description: "Presence key → the member's metadata.",
  additionalProperties: true,
};

/** The library's pushes (docs/PROTOCOL.md), which every duplex client may receive. */
const LIBRARY_PUSHES: Record<string, { summary: string; schema: JsonSchema }> =
  {
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
    error: {
      summary: "An error for a message sent without an id.",
      schema: WIRE_ERROR,
    },
  };

function str(): JsonSchema {
  return { type: "string" };
}

function int(): JsonSchema {
  return { type: "integer", minimum: 0 };
}

/** An object schema whose every property is required. */
function object(properties: Record<string, JsonSchema>): JsonSchema {
  return { type: "object", properties, required: Object.keys(properties) };
}

interface JsonSchemaConverter {
  input(options: { target: string }): JsonSchema;
  output(options: { target: string }): JsonSchema;
}

/** Accepts `undefined` and refuses `null`: a schema for "no payload". */
function onlyUndefined(schema: StandardSchemaV1): boolean {
  try {
    const none = schema["~standard"].validate(undefined);
    const nil = schema["~standard"].validate(null);
    if (none instanceof Promise || nil instanceof Promise) return false;
    return !none.issues && Boolean(nil.issues);
  } catch {
    return false;
  }
}

/**
 * A payload schema as JSON Schema, or `undefined` for "no payload".
 *
 * @param direction `input` for what a client sends, `output` for what the
 * server sends.
 */
export function toJsonSchema(
  schema: StandardSchemaV1,
  direction: "input" | "output",
): JsonSchema | undefined {
  const standard = schema["~standard"] as
    & StandardSchemaV1["~standard"]
    & { jsonSchema?: JsonSchemaConverter };
  try {
    const converted = standard.jsonSchema?.[direction]({ target: "draft-07" });
    if (converted) {
      const { $schema: _, ...rest } = converted;
      return rest;
    }
  } catch {
    // Not expressible: fall through.
  }
  if (onlyUndefined(schema)) return undefined;
  return {
    description:
      `Any JSON: this ${standard.vendor} schema has no JSON Schema form.`,
  };
}

/** The envelope around a payload: `{event, data?, id?}`. */
function envelope(
  event: string,
  data: JsonSchema | undefined,
  id: "none" | "optional" | "required",
): JsonSchema {
  const properties: Record<string, JsonSchema> = { event: { const: event } };
  const required = ["event"];
  if (data !== undefined) {
    properties.data = data;
    required.push("data");
  }
  if (id === "optional") properties.id = ID_SCHEMA;
  if (id === "required") {
    properties.id = { type: "integer", minimum: 1 };
    required.push("id");
  }
  return { type: "object", properties, required };
}

/** A reply: `{id, data}` or `{id, error}`. */
function replyEnvelope(data: JsonSchema | undefined): JsonSchema {
  return {
    oneOf: [
      object({ id: ID_SCHEMA, data: data ?? {} }),
      object({ id: ID_SCHEMA, error: WIRE_ERROR }),
    ],
  };
}

function message(
  name: string,
  payload: JsonSchema,
  docs: { summary?: string; description?: string },
): JsonSchema {
  const out: JsonSchema = { name, payload };
  if (docs.summary) out.summary = docs.summary;
  if (docs.description) out.description = docs.description;
  return out;
}

/** A key AsyncAPI accepts (`[A-Za-z0-9._-]`) for an event name. */
const key = (name: string) => name.replace(/[^A-Za-z0-9._-]/g, "_");

const ref = (id: string) => ({
  $ref: `#/channels/${CHANNEL}/messages/${id}`,
});

/**
 * Makes the AsyncAPI 3.0 document of a router.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { asyncApi } from "@duplex-ws/asyncapi";
 * import { EventRouter } from "@duplex-ws/duplex";
 *
 * const router = new EventRouter()
 *   .on("add", z.object({ a: z.number(), b: z.number() }), ({ a, b }) => a + b, {
 *     reply: z.number(),
 *     summary: "Adds two numbers.",
 *   });
 * const doc = asyncApi(router, { title: "Adder", version: "1.0.0" });
 * console.assert(doc.asyncapi === "3.0.0");
 * ```
 */
export function asyncApi<State, Push extends PushMap>(
  router: EventRouter<State, Push, EventDefinitions, RequestDefinitions>,
  options: AsyncApiOptions,
): AsyncApiDocument {
  const parts = describeRouter(router);
  const messages: Record<string, JsonSchema> = {};
  const operations: Record<string, JsonSchema> = {};
  const channel = { $ref: `#/channels/${CHANNEL}` };

  for (const [event, route] of parts.events) {
    const data = toJsonSchema(route.schema, "input");
    const reply = route.reply ? toJsonSchema(route.reply, "output") : {};
    messages[`event.${key(event)}`] = message(
      event,
      envelope(event, data, "optional"),
      route,
    );
    messages[`reply.${key(event)}`] = message(
      `${event} reply`,
      replyEnvelope(reply),
      { summary: `The reply to "${event}" (when it had an id).` },
    );
    operations[`receive.${key(event)}`] = {
      action: "receive",
      channel,
      ...(route.summary ? { summary: route.summary } : {}),
      messages: [ref(`event.${key(event)}`)],
      reply: { channel, messages: [ref(`reply.${key(event)}`)] },
    };
  }

  const pushes = new Map(
    [...parts.pushes].map(([event, docs]) => [event, {
      summary: docs.summary,
      description: docs.description,
      schema: toJsonSchema(docs.schema, "output"),
    }]),
  );
  if (options.libraryPushes ?? true) {
    for (const [event, docs] of Object.entries(LIBRARY_PUSHES)) {
      if (!pushes.has(event)) pushes.set(event, { ...docs, description: "" });
    }
  }
  for (const [event, docs] of pushes) {
    messages[`push.${key(event)}`] = message(
      event,
      envelope(event, docs.schema, "none"),
      docs,
    );
    operations[`send.${key(event)}`] = {
      action: "send",
      channel,
      ...(docs.summary ? { summary: docs.summary } : {}),
      messages: [ref(`push.${key(event)}`)],
    };
  }

  for (const [event, request] of parts.requests) {
    messages[`request.${key(event)}`] = message(
      event,
      envelope(event, toJsonSchema(request.data, "output"), "required"),
      { summary: request.summary },
    );
    messages[`answer.${key(event)}`] = message(
      `${event} answer`,
      replyEnvelope(toJsonSchema(request.reply, "input")),
      { summary: `The client's answer to "${event}".` },
    );
    operations[`request.${key(event)}`] = {
      action: "send",
      channel,
      ...(request.summary ? { summary: request.summary } : {}),
      messages: [ref(`request.${key(event)}`)],
      reply: { channel, messages: [ref(`answer.${key(event)}`)] },
    };
  }

  const info: JsonSchema = { title: options.title, version: options.version };
  if (options.description) info.description = options.description;
  const document: AsyncApiDocument = {
    asyncapi: ASYNCAPI_VERSION,
    info,
    defaultContentType: "application/json",
  };
  document.channels = {
    [CHANNEL]: {
      address: options.path ?? "/",
      description:
        "One WebSocket: JSON text frames as in docs/PROTOCOL.md (events with an optional id, replies, pushes).",
      messages,
    },
  };
  document.operations = operations;
  return withServers(document, options.servers);
}

/** A document with `servers`, and its channel pointing at them; the rest is shared, not copied. */
function withServers(
  document: AsyncApiDocument,
  servers: AsyncApiOptions["servers"],
): AsyncApiDocument {
  const names = Object.keys(servers ?? {});
  if (names.length === 0) return document;
  const { asyncapi, info, defaultContentType, channels, operations } = document;
  const channel = (channels as Record<string, object>)[CHANNEL];
  return {
    asyncapi,
    info,
    defaultContentType,
    servers: Object.fromEntries(
      Object.entries(servers!).map(([name, { host, protocol }]) => [name, {
        host,
        protocol,
      }]),
    ),
    channels: {
      [CHANNEL]: {
        ...channel,
        servers: names.map((name) => ({ $ref: `#/servers/${name}` })),
      },
    },
    operations,
  };
}

/**
 * An HTTP handler that serves a router's AsyncAPI document as JSON, with a
 * server entry for the host it was asked on. Mount it where you like, say
 * `http.get("/asyncapi.json", asyncApiHandler(router, {...}))`.
 */
export function asyncApiHandler<State, Push extends PushMap>(
  router: EventRouter<State, Push, EventDefinitions, RequestDefinitions>,
  options: AsyncApiOptions,
): (request: Request) => Response {
  // Made once: a request only adds the server it was asked on, so a client
  // asking again and again costs a serialisation, never a new document.
  const document = asyncApi(router, options);
  return (request) => {
    const url = new URL(request.url);
    const servers = options.servers ?? {
      [url.hostname.replace(/[^A-Za-z0-9_-]/g, "_")]: {
        host: url.host,
        protocol: url.protocol === "https:" ? "wss" : "ws",
      },
    };
    return Response.json(withServers(document, servers), {
      headers: { "access-control-allow-origin": "*" },
    });
  };
}
