/**
 * What a session needs of the connection under it, and what a transport
 * tells the session: the whole contract between the protocol (sessions,
 * the router, topics) and the ways bytes reach a peer. Deno's WebSocket
 * (`deno_websocket.ts`), npm's `ws` (`@duplex-ws/node`) and HTTP streaming
 * (`@duplex-ws/http-transport`) implement it; no session code knows which
 * one it runs on. A transport served inside the server's own `fetch` (HTTP
 * streaming) is made by a {@linkcode FetchTransport}.
 *
 * @module
 */

import type { ControlPlane } from "./control.ts";
import type { Admitted } from "./gate.ts";

/** One connection's way to its peer. */
export interface Transport {
  /** `websocket`, or the name of another transport (`sse`). */
  readonly kind: string;
  /** Bytes queued for the peer and not yet written. */
  readonly bufferedAmount: number;
  /** Sends one text or binary frame; throws when it cannot. */
  send(data: string | Uint8Array<ArrayBuffer> | ArrayBuffer): void;
  /**
   * Starts the close handshake with a code and reason the session has
   * checked; the transport calls {@linkcode SessionDriver.closed} once the
   * peer answered or the connection dropped.
   */
  close(code: number, reason: string): void;
  /**
   * Drops the connection at once, freeing what it holds, where the
   * transport can (Deno's WebSocket cannot: its socket stays until the
   * runtime lets go of it).
   */
  terminate(): void;
}

/** What a transport tells its session, in this order: opened, received…, closed. */
export interface SessionDriver {
  /** The connection is open: messages may flow. */
  opened(): void;
  /** A message arrived: text, or binary as an `ArrayBuffer`. */
  received(data: string | ArrayBuffer): void;
  /**
   * The connection is gone and the runtime has let go of it: the close the
   * peer saw (code 0 or a missing one is normalized to 1006 by the session).
   */
  closed(code: number, reason: string, wasClean: boolean): void;
}

/** What a transport served inside the server's own `fetch` gets of the server. */
export interface FetchTransportHost {
  /** The handshake pipeline, less RFC 6455's header checks: a refusal, or who to accept. */
  admit(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Response | Admitted<unknown>>;
  /** Starts a session, with its id, on a transport. */
  accept(
    transport: Transport,
    admitted: Admitted<unknown>,
    id: string,
  ): SessionDriver;
  /** Messages between this node and the others of the engine. */
  readonly control: ControlPlane;
  /** Whether the request's `Origin` may use this server. */
  originAllowed(request: Request): boolean;
  /** The client's address, as admission counts it. */
  address(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): string | undefined;
  /** The options the transport enforces (resolved). */
  readonly config: {
    readonly path: string;
    readonly maxMessageSize: number;
    readonly idleTimeout: number;
    readonly retryAfter: number;
  };
}

/**
 * Makes, once per server, a transport served inside its `fetch`: it is
 * given the requests that `isStreamRequest` says are a stream's, on the
 * endpoint's path (`httpTransport()` from `@duplex-ws/http-transport`).
 */
export type FetchTransport = (host: FetchTransportHost) => {
  /** Answers one of the transport's requests. */
  handle(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Response>;
};
