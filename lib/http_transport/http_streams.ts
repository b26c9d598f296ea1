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
import type { ControlPlane } from "./control.ts";
import type { Admitted, Gate } from "./gate.ts";
import { HttpError, readBody } from "./http_body.ts";
import { jsonError } from "./http_router.ts";
import { SseTransport } from "./sse_transport.ts";
import type { SessionDriver } from "./transport.ts";

/** What the HTTP transport needs of its server. */
export interface HttpStreamsContext<State> {
  /** The handshake pipeline. */
  readonly gate: Gate<State>;
  /** The node's control plane (its id starts every session id). */
  readonly control: ControlPlane;
  /** The WebSocket endpoint's path, which the transport shares. */
  readonly path: string;
  /** Bytes one `POST` may carry. */
  readonly maxBodySize: number;
  /** Milliseconds between the stream's keep-alive comments. */
  readonly heartbeat: number;
  /** Whether the request's `Origin` may use this server. */
  originAllowed(request: Request): boolean;
  /** Starts a session on the stream, with its id. */
  accept(
    transport: SseTransport,
    admitted: Admitted<State>,
    id: string,
  ): SessionDriver;
}

/** Milliseconds a forwarded `POST` waits for the owner's answer. */
const FORWARD_WAIT = 5_000;

/** The HTTP transport of one server (see the module docs). */
export class HttpStreams<State> {
  readonly #context: HttpStreamsContext<State>;
  /** Open stream sessions of this node, by id. */
  readonly #sessions = new Map<string, SessionDriver>();

  /** @param context The server's parts the transport uses. */
  constructor(context: HttpStreamsContext<State>) {
    this.#context = context;
    context.control.handle("http.post", (payload) => {
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

  /** Answers a request that `isStreamRequest` (handshake.ts) says is the transport's, on its path. */
  handle(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Response> {
    return request.method === "POST"
      ? this.#post(request)
      : this.#open(request, info);
  }

  async #open(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Response> {
    const { gate, control, heartbeat } = this.#context;
    const admitted = await gate.admit(request, info, "stream");
    if (admitted instanceof Response) return admitted;
    const id = `${control.node}.${crypto.randomUUID()}`;
    const transport = new SseTransport(heartbeat);
    const driver = this.#context.accept(transport, admitted, id);
    this.#sessions.set(id, driver);
    transport.attach({
      opened: () => driver.opened(),
      received: (data) => driver.received(data),
      closed: (code, reason, wasClean) => {
        this.#sessions.delete(id);
        driver.closed(code, reason, wasClean);
      },
    });
    // The first event says which session to POST to.
    transport.send(JSON.stringify({
      event: STREAM_WELCOME,
      data: { session: id },
    }));
    driver.opened();
    return transport.response;
  }

  async #post(request: Request): Promise<Response> {
    const { control, maxBodySize } = this.#context;
    if (!this.#context.originAllowed(request)) {
      return jsonError(403, "bad_origin", "Origin not allowed");
    }
    const session = request.headers.get(SESSION_HEADER)!;
    let body: Uint8Array;
    try {
      body = await readBody(request, maxBodySize);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      return jsonError(error.status, error.code, error.message);
    }
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true }).decode(body);
    } catch {
      return jsonError(400, "bad_body", "The body must be UTF-8 text");
    }
    const lines = text.split("\n").filter((line) => line.trim() !== "");
    const owner = session.slice(0, session.indexOf("."));
    let status = this.#sessions.has(session)
      ? this.#deliver(session, lines)
      : 404;
    if (status === 404 && owner !== control.node && control.clustered) {
      const [answer] = await control.ask(owner, "http.post", {
        session,
        lines,
      }, FORWARD_WAIT);
      status = answer === 202 ? 202 : 404;
    }
    return status === 202
      ? new Response(null, { status: 202 })
      : jsonError(404, "unknown_session", "No such session: open a stream");
  }

  /** Hands a session its messages, in order: 202, or 404 when it is not here. */
  #deliver(session: string, lines: readonly string[]): number {
    const driver = this.#sessions.get(session);
    if (!driver || !Array.isArray(lines)) return 404;
    for (const line of lines) {
      if (typeof line === "string") driver.received(line);
    }
    return 202;
  }
}
