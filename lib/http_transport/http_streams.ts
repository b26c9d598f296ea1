/**
 * The HTTP transport, for clients whose WebSocket is blocked (PROTOCOL.md
 * §7): on the WebSocket endpoint's own URL, `GET` with `Accept:
 * text/event-stream` opens a session whose frames come as Server-Sent
 * Events, and `POST` with `Duplex-Session: <id>` carries that session's
 * messages, one envelope per line, in order. The same admission, Origin,
 * authentication, limits and metrics apply as to a socket.
 *
 * No sticky sessions: a session's id starts with its node's id, and a
 * `POST` that reaches another node is forwarded to that one through the
 * engine's control messages, which answer 202 or 404 from the owner.
 *
 * @module
 */

import { SESSION_HEADER, STREAM_WELCOME } from "@duplex-ws/protocol";
import { HttpError, jsonError } from "@duplex-ws/duplex";
import {
  type FetchTransportHost,
  KeyedBuckets,
  readBody,
} from "@duplex-ws/duplex/transport";
import { InFlight } from "./in_flight.ts";
import { SseTransport } from "./sse_transport.ts";

/** Milliseconds a forwarded `POST` waits for the owner's answer. */
const FORWARD_WAIT = 5_000;
/** `POST`s one session may have under way (its client sends one at a time). */
const POSTS_PER_SESSION = 2;
/** `POST`s for other nodes' sessions one address may have under way. */
const FORWARDS_PER_ADDRESS = 32;
/** `POST`s for other nodes' sessions this node reads or forwards at once. */
const MAX_FORWARDS = 256;
/** Bytes per second one address may forward to other nodes (a connection's default rate). */
const FORWARD_BYTES_PER_SECOND = 4_194_304;
/** Bytes a forward counts at least: each is a message through the engine, an empty keepalive too. */
const MIN_FORWARD_BYTES = 4_096;
/** A session id: its node's id, a dot, its own. */
const SESSION_ID = /^[\w-]{1,64}\.[\w-]{1,64}$/;

/** The HTTP transport of one server (see the module docs). */
export class HttpStreams {
  readonly #host: FetchTransportHost;
  /** Open stream sessions of this node, by id. */
  readonly #sessions = new Map<string, SseTransport>();
  readonly #posts = new InFlight(POSTS_PER_SESSION);
  readonly #forwards = new InFlight(FORWARDS_PER_ADDRESS, MAX_FORWARDS);
  /** Bytes each address forwarded lately (charged once read: into debt). */
  readonly #rate = new KeyedBuckets(FORWARD_BYTES_PER_SECOND);

  /** @param host The server's parts the transport uses. */
  constructor(host: FetchTransportHost) {
    this.#host = host;
    host.control.handle("http.post", (payload) => {
      const { session, lines } = payload as {
        session: string;
        lines: string[];
      };
      return this.#deliver(session, lines);
    });
  }

  /** Streams open on this node. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Answers a request the server hands it: a stream's `GET` or `POST`, on its path. */
  handle(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Response> {
    return request.method === "POST"
      ? this.#post(request, info)
      : this.#open(request, info);
  }

  async #open(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Response> {
    const { control, config } = this.#host;
    const admitted = await this.#host.admit(request, info);
    if (admitted instanceof Response) return admitted;
    const id = `${control.node}.${crypto.randomUUID()}`;
    // A comment line every half idle timeout, at most 15 s apart.
    const heartbeat = Math.min(15_000, config.idleTimeout * 500 || 15_000);
    // No POST for a ping's wait and its pong's: gone, as a socket would be.
    const idle = config.idleTimeout * 2_000;
    const transport = new SseTransport({ heartbeat, idle });
    const driver = this.#host.accept(transport, admitted, id);
    this.#sessions.set(id, transport);
    transport.attach({
      opened: () => driver.opened(),
      received: (data) => driver.received(data),
      closed: (code, reason, wasClean) => {
        this.#sessions.delete(id);
        driver.closed(code, reason, wasClean);
      },
    });
    // The first event says which session to POST to, and how much at once.
    transport.send(JSON.stringify({
      event: STREAM_WELCOME,
      data: { session: id, maxBody: config.maxMessageSize, heartbeat },
    }));
    driver.opened();
    return transport.response;
  }

  /**
   * Answers a `POST`. What it may cost is decided before its body is read:
   * a session here takes one of its places; one elsewhere takes one of its
   * address's forwards, and its bytes are charged to the address; a session
   * that can be nowhere is 404 at once.
   */
  async #post(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Response> {
    const { control } = this.#host;
    if (!this.#host.originAllowed(request)) {
      await request.body?.cancel();
      return jsonError(403, "bad_origin", "Origin not allowed");
    }
    const session = request.headers.get(SESSION_HEADER)!;
    const owner = session.slice(0, session.indexOf("."));
    const here = this.#sessions.has(session);
    if (
      !here && (!SESSION_ID.test(session) || owner === control.node ||
        !control.clustered)
    ) {
      await request.body?.cancel();
      return unknownSession();
    }
    // A session's own POSTs are counted by session, forwards by address.
    const key = here ? session : this.#host.address(request, info) ?? "";
    const places = here ? this.#posts : this.#forwards;
    const full = here || this.#rate.get(key).has(1) ? places.take(key) : "key";
    if (full) {
      await request.body?.cancel();
      return this.#busy(full === "key" ? 429 : 503);
    }
    try {
      return await this.#carry(request, session, here ? undefined : key);
    } finally {
      places.release(key);
    }
  }

  /**
   * Reads a `POST`'s lines and hands them to their session: here, or (with
   * the `address` that pays for it) on the node its id names.
   */
  async #carry(
    request: Request,
    session: string,
    address?: string,
  ): Promise<Response> {
    let text: string;
    try {
      text = await readText(request, this.#host.config.maxMessageSize);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      return jsonError(error.status, error.code, error.message);
    }
    const lines = text.split("\n").filter((line) => line.trim() !== "");
    let status = 404;
    if (address === undefined) status = this.#deliver(session, lines);
    else {
      this.#rate.get(address).charge(Math.max(text.length, MIN_FORWARD_BYTES));
      const owner = session.slice(0, session.indexOf("."));
      const [answer] = await this.#host.control.ask(owner, "http.post", {
        session,
        lines,
      }, FORWARD_WAIT);
      if (answer === 202) status = 202;
    }
    return status === 202
      ? new Response(null, { status: 202 })
      : unknownSession();
  }

  #busy(status: 429 | 503): Response {
    const response = jsonError(
      status,
      "too_many_posts",
      "Too many POSTs under way: send one at a time",
    );
    response.headers.set("retry-after", String(this.#host.config.retryAfter));
    return response;
  }

  /** Hands a session its messages, in order: 202, or 404 when it is not here. */
  #deliver(session: string, lines: readonly string[]): number {
    const transport = this.#sessions.get(session);
    if (!transport || !Array.isArray(lines)) return 404;
    transport.posted(lines);
    return 202;
  }
}

/** A `POST`'s body as text; a 413 or 400 as `HttpError`. */
async function readText(request: Request, maxBytes: number): Promise<string> {
  const body = await readBody(request, maxBytes);
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    throw new HttpError(400, "bad_body", "The body must be UTF-8 text");
  }
}

function unknownSession(): Response {
  return jsonError(404, "unknown_session", "No such session: open a stream");
}
