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

import type { EventRouter, PushMap } from "@duplex-ws/duplex";
import {
  describeRouter,
  type EventDefinitions,
  type RequestDefinitions,
  type RouterDescription,
} from "@duplex-ws/duplex/router";
import {
  envelope,
  type JsonSchema,
  object,
  replyEnvelope,
  str,
  toJsonSchema,
} from "./json_schema.ts";
import { libraryPushes } from "./library_pushes.ts";

export { type JsonSchema, toJsonSchema } from "./json_schema.ts";

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
  const doc: Sections = { messages: {}, operations: {} };
  addEvents(doc, parts.events);
  const meta = parts.presence && toJsonSchema(parts.presence, "output");
  addPushes(doc, parts.pushes, options.libraryPushes ?? true, meta);
  addRequests(doc, parts.requests);
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
      messages: doc.messages,
    },
  };
  document.operations = doc.operations;
  return withServers(document, options.servers);
}

/** The document's messages and operations, as they are added. */
interface Sections {
  messages: Record<string, JsonSchema>;
  operations: Record<string, JsonSchema>;
}

const CHANNEL_REF = { $ref: `#/channels/${CHANNEL}` };

/** The client's events: each a message, its reply, and a receive operation. */
function addEvents(
  doc: Sections,
  events: RouterDescription["events"],
): void {
  for (const [event, route] of events) {
    const data = toJsonSchema(route.schema, "input");
    const reply = route.reply ? toJsonSchema(route.reply, "output") : {};
    const errors = Object.fromEntries(
      Object.entries(route.errors ?? {}).map((
        [code, schema],
      ) => [code, toJsonSchema(schema, "output") ?? {}]),
    );
    doc.messages[`event.${key(event)}`] = message(
      event,
      envelope(event, data, "optional"),
      route,
    );
    doc.messages[`reply.${key(event)}`] = message(
      `${event} reply`,
      replyEnvelope(reply, errors),
      { summary: `The reply to "${event}" (when it had an id).` },
    );
    const replies = [ref(`reply.${key(event)}`)];
    if (route.stream) {
      // A streamed reply: its chunks are `stream.chunk` pushes (PROTOCOL.md §8).
      const chunk = toJsonSchema(route.stream, "output") ?? {};
      doc.messages[`chunk.${key(event)}`] = message(
        `${event} chunk`,
        envelope("stream.chunk", object({ stream: str(), chunk }), "none"),
        { summary: `A chunk of "${event}"'s streamed reply.` },
      );
      replies.push(ref(`chunk.${key(event)}`));
    }
    doc.operations[`receive.${key(event)}`] = {
      action: "receive",
      channel: CHANNEL_REF,
      ...(route.summary ? { summary: route.summary } : {}),
      messages: [ref(`event.${key(event)}`)],
      reply: { channel: CHANNEL_REF, messages: replies },
    };
  }
}

/** The documented pushes, and the library's own unless left out: each a message and a send operation. */
function addPushes(
  doc: Sections,
  documented: RouterDescription["pushes"],
  library: boolean,
  meta: JsonSchema | undefined,
): void {
  const pushes = new Map(
    [...documented].map(([event, docs]) => [event, {
      summary: docs.summary,
      description: docs.description,
      schema: toJsonSchema(docs.schema, "output"),
    }]),
  );
  if (library) {
    for (const [event, docs] of Object.entries(libraryPushes(meta))) {
      if (!pushes.has(event)) pushes.set(event, { ...docs, description: "" });
    }
  }
  for (const [event, docs] of pushes) {
    doc.messages[`push.${key(event)}`] = message(
      event,
      envelope(event, docs.schema, "none"),
      docs,
    );
    doc.operations[`send.${key(event)}`] = {
      action: "send",
      channel: CHANNEL_REF,
      ...(docs.summary ? { summary: docs.summary } : {}),
      messages: [ref(`push.${key(event)}`)],
    };
  }
}

/** The server's requests: each a message, the client's answer, and a send operation. */
function addRequests(
  doc: Sections,
  requests: RouterDescription["requests"],
): void {
  for (const [event, request] of requests) {
    doc.messages[`request.${key(event)}`] = message(
      event,
      envelope(event, toJsonSchema(request.data, "output"), "required"),
      { summary: request.summary },
    );
    doc.messages[`answer.${key(event)}`] = message(
      `${event} answer`,
      replyEnvelope(toJsonSchema(request.reply, "input")),
      { summary: `The client's answer to "${event}".` },
    );
    doc.operations[`request.${key(event)}`] = {
      action: "send",
      channel: CHANNEL_REF,
      ...(request.summary ? { summary: request.summary } : {}),
      messages: [ref(`request.${key(event)}`)],
      reply: { channel: CHANNEL_REF, messages: [ref(`answer.${key(event)}`)] },
    };
  }
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
 * server entry for the host it was asked on (then `Vary: Host` and
 * `Cache-Control: no-store`), unless `options.servers` names them. Mount it where you like, say
 * `http.get("/asyncapi.json", asyncApiHandler(router, {...}))`.
 */
export function asyncApiHandler<State, Push extends PushMap>(
  router: EventRouter<State, Push, EventDefinitions, RequestDefinitions>,
  options: AsyncApiOptions,
): (request: Request) => Response {
  // Made once, on the first request (not at start: a server's first start
  // does not wait for every schema's JSON Schema): a request only adds the
  // server it was asked on, so asking again costs a serialisation only.
  let document: ReturnType<typeof asyncApi> | undefined;
  return (request) => {
    document ??= asyncApi(router, options);
    const url = new URL(request.url);
    const servers = options.servers ?? {
      [url.hostname.replace(/[^A-Za-z0-9_-]/g, "_")]: {
        host: url.host,
        protocol: url.protocol === "https:" ? "wss" : "ws",
      },
    };
    // A document made from `Host` is one per host: a shared cache must not
    // hand one host's (or a forged `Host`'s) to another.
    const reflected = options.servers === undefined;
    return Response.json(withServers(document, servers), {
      headers: {
        "access-control-allow-origin": "*",
        ...(reflected ? { vary: "Host", "cache-control": "no-store" } : {}),
      },
    });
  };
}
