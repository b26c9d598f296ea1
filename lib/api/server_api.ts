/**
 * The server API's methods and the handler that answers them: `POST
 * <prefix><method>` with `X-API-Key` and a JSON body, answered in JSON
 * (docs/PROTOCOL.md §9). The key is compared in constant time and never
 * logged; bodies, listings and requests in flight are bounded.
 *
 * @module
 */

import {
  type DuplexServer,
  EventError,
  HttpError,
  readJson,
} from "@duplex-ws/duplex";

/** The header that carries the key. */
export const API_KEY_HEADER = "x-api-key";
/** Requests the API handles at once at most; past it 503. */
const MAX_IN_FLIGHT = 64;
/** Bytes a request body may have at most. */
const MAX_BODY = 262_144;

type Body = Record<string, unknown>;
type Method = (server: DuplexServer<unknown, never>, body: Body) => unknown;

/** A field that must be a non-empty string. */
function text(body: Body, name: string): string {
  const value = body[name];
  if (typeof value !== "string" || value.length === 0 || value.length > 1024) {
    throw new HttpError(400, "INVALID_DATA", `${name} must be a string`);
  }
  return value;
}

/** An optional field that must be a number when present. */
function number(body: Body, name: string): number | undefined {
  const value = body[name];
  if (value === undefined) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new HttpError(400, "INVALID_DATA", `${name} must be a number`);
  }
  return value;
}

/** The methods, by name: what each reads of its body and does. */
export const API_METHODS: Record<string, Method> = {
  publish: (server, body) =>
    server.publish(
      text(body, "topic"),
      text(body, "event") as never,
      body.data as never,
      {
        key: body.key as string | undefined,
        ifPosition: body.ifPosition as never,
      },
    ),
  disconnect: (server, body) =>
    server.cluster.disconnect(text(body, "user"), {
      code: number(body, "code"),
      reason: body.reason === undefined ? undefined : text(body, "reason"),
    }),
  subscribe: (server, body) =>
    server.cluster.subscribe(text(body, "user"), text(body, "topic")),
  unsubscribe: (server, body) =>
    server.cluster.unsubscribe(text(body, "user"), text(body, "topic")),
  refresh: (server, body) => server.cluster.refresh(text(body, "user")),
  presence: (server, body) => server.presence(text(body, "topic")),
  history: (server, body) =>
    server.history(text(body, "topic"), {
      last: number(body, "last"),
      since: body.since as never,
    }),
  members: (server, body) => server.cluster.members(text(body, "topic")),
  topics: (server, body) =>
    server.cluster.topics({
      after: body.after === undefined ? undefined : text(body, "after"),
      limit: number(body, "limit"),
    }),
  info: (server) => server.cluster.info(),
};

/** SHA-256 of a text, for comparing keys in constant time. */
async function digest(value: string): Promise<Uint8Array> {
  const bytes = new TextEncoder().encode(value);
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

/** Whether two texts are equal, in time that does not depend on where they differ. */
async function sameKey(given: string, key: string): Promise<boolean> {
  const [a, b] = await Promise.all([digest(given), digest(key)]);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

function failure(
  status: number,
  code: string,
  message: string,
  data?: unknown,
) {
  const error = data === undefined
    ? { code, message }
    : { code, message, data };
  return Response.json({ error }, { status });
}

/** The server API of one server (see the module docs). */
export class HttpApi {
  readonly #key: string;
  #inFlight = 0;

  /** @param key The API key (`serverApi`'s `key`). */
  constructor(key: string) {
    this.#key = key;
  }

  /** Answers one API request for the method `name`. */
  async handle(
    request: Request,
    server: DuplexServer<unknown, never>,
    name: string,
  ): Promise<Response> {
    if (request.method !== "POST") {
      await request.body?.cancel();
      return failure(405, "METHOD_NOT_ALLOWED", "Use POST");
    }
    const given = request.headers.get(API_KEY_HEADER) ?? "";
    if (!await sameKey(given, this.#key)) {
      await request.body?.cancel();
      return failure(
        401,
        "UNAUTHORIZED",
        `A valid ${API_KEY_HEADER} is required`,
      );
    }
    const method = Object.hasOwn(API_METHODS, name)
      ? API_METHODS[name]
      : undefined;
    if (!method) {
      await request.body?.cancel();
      return failure(404, "UNKNOWN_METHOD", `No API method "${name}"`);
    }
    if (this.#inFlight >= MAX_IN_FLIGHT) {
      await request.body?.cancel();
      return failure(503, "BUSY", "Too many API requests at once");
    }
    this.#inFlight++;
    try {
      const body = await readJson(request, MAX_BODY);
      if (typeof body !== "object" || body === null || Array.isArray(body)) {
        throw new HttpError(
          400,
          "INVALID_DATA",
          "The body must be a JSON object",
        );
      }
      return Response.json({
        result: await method(server, body as Body) ?? null,
      });
    } catch (error) {
      if (error instanceof HttpError) {
        return failure(error.status, error.code, error.message);
      }
      if (error instanceof EventError) {
        const status = error.code === "CONFLICT" ? 409 : 400;
        return failure(status, error.code, error.message, error.data);
      }
      if (error instanceof RangeError || error instanceof TypeError) {
        return failure(400, "INVALID_DATA", error.message);
      }
      throw error;
    } finally {
      this.#inFlight--;
    }
  }
}
