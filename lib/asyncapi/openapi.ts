/**
 * The server API's OpenAPI 3.1 document (docs/PROTOCOL.md §9): every
 * `POST /api/<method>`, its body and its answer, the `X-API-Key` scheme and
 * the error envelope. Serve it beside `/asyncapi.json`.
 *
 * @example
 * ```ts ignore
 * import { serverApiDocument } from "@duplex-ws/asyncapi/openapi";
 * router.get("/openapi.json", () => Response.json(serverApiDocument()));
 * ```
 *
 * @module
 */

import { int, type JsonSchema, object, str } from "./json_schema.ts";

const ANY: JsonSchema = {};
const POSITION = object({ offset: int(), epoch: str() });
const optional = (
  required: Record<string, JsonSchema>,
  extra: Record<string, JsonSchema>,
): JsonSchema => ({
  type: "object",
  properties: { ...required, ...extra },
  required: Object.keys(required),
});

/** Each method: what it does, its body, its result. */
const METHODS: Record<string, [string, JsonSchema, JsonSchema]> = {
  publish: [
    "Publishes to a topic on every node (key and ifPosition as for ctx.publish).",
    optional({ topic: str(), event: str(), data: ANY }, {
      key: str(),
      ifPosition: { oneOf: [POSITION, { type: "null" }] },
    }),
    {
      type: "object",
      properties: { local: int(), remote: str(), position: POSITION },
    },
  ],
  disconnect: [
    "Closes every connection of a user on every node (4500-4999: the typed client does not reconnect).",
    optional({ user: str() }, { code: int(), reason: str() }),
    object({ closed: int() }),
  ],
  subscribe: [
    "Joins every connection of a user to a topic (each gets topic.joined).",
    object({ user: str(), topic: str() }),
    object({ joined: int() }),
  ],
  unsubscribe: [
    "Takes every connection of a user out of a topic (each gets topic.left).",
    object({ user: str(), topic: str() }),
    object({ left: int() }),
  ],
  refresh: [
    "Asks every connection of a user for a fresh token now.",
    object({ user: str() }),
    object({ asked: int() }),
  ],
  presence: [
    "A topic's member count on every node (and members, with presence).",
    object({ topic: str() }),
    { type: "object", properties: { count: int(), members: ANY } },
  ],
  history: [
    "A topic's history, decoded, and its position now.",
    optional({ topic: str() }, { last: int(), since: POSITION }),
    { type: "object", properties: { entries: ANY, position: ANY } },
  ],
  members: [
    "A topic's members with their nodes (at most 1,000 per node).",
    object({ topic: str() }),
    object({ members: { type: "array", items: ANY } }),
  ],
  topics: [
    "Topics with their counts over every node, in name order, paged.",
    optional({}, { after: str(), limit: int() }),
    {
      type: "object",
      properties: { topics: { type: "array", items: ANY }, next: str() },
    },
  ],
  info: [
    "Every node: connections, topics, uptime, memory, messages in and out since it started.",
    { type: "object" },
    object({ nodes: { type: "array", items: ANY } }),
  ],
};

/** The methods the document lists. */
export const SERVER_API_METHODS: readonly string[] = Object.keys(METHODS);

const ERROR = object({
  error: optional({ code: str(), message: str() }, { data: ANY }),
});

/** The server API as an OpenAPI 3.1 document. */
export function serverApiDocument(
  info: { title?: string; version?: string } = {},
): Record<string, unknown> {
  const failure = (description: string) => ({
    description,
    content: { "application/json": { schema: ERROR } },
  });
  const paths = Object.fromEntries(
    Object.entries(METHODS).map(([name, [summary, body, result]]) => [
      `/api/${name}`,
      {
        post: {
          operationId: name,
          summary,
          security: [{ apiKey: [] }],
          requestBody: {
            required: true,
            content: { "application/json": { schema: body } },
          },
          responses: {
            "200": {
              description: "Done.",
              content: {
                "application/json": { schema: object({ result }) },
              },
            },
            "400": failure(
              "A bad body or argument (INVALID_DATA, BAD_TOPIC…).",
            ),
            "401": failure("No X-API-Key, or a wrong one."),
            "409": failure("ifPosition no longer holds (CONFLICT)."),
            "413": failure("The body is too large."),
            "503": failure("Too many API requests at once (BUSY)."),
          },
        },
      },
    ]),
  );
  return {
    openapi: "3.1.0",
    info: {
      title: info.title ?? "duplex server API",
      version: info.version ?? "1",
    },
    paths,
    components: {
      securitySchemes: {
        apiKey: { type: "apiKey", in: "header", name: "X-API-Key" },
      },
    },
  };
}
