/**
 * The client's options, each with its documented default, and the one
 * place those defaults are filled in.
 *
 * @module
 */

import { shouldReconnect } from "@duplex-ws/protocol";
import type { LinkOptions, Transport } from "./link.ts";
import { sharedWebSocket, sharedWorkerClass } from "./shared_socket.ts";

/** Options of `DuplexClient`. */
export interface ClientOptions {
  /** The server's WebSocket URL, or a function giving it (called on every connect, for fresh tokens). */
  url: string | (() => string);
  /**
   * Subprotocols to offer.
   * @default {[]}
   */
  protocols?: string[];
  /**
   * Milliseconds a request waits for its reply. Keep it above the server's
   * own timeouts for what a handler awaits (its `requestTimeout` for
   * `ctx.request`, say), or the client gives up before the server's typed
   * answer can arrive.
   * @default {10000}
   */
  requestTimeout?: number;
  /**
   * First reconnection delay in milliseconds; doubles on each failure.
   * @default {250}
   */
  minReconnectDelay?: number;
  /**
   * Longest reconnection delay in milliseconds.
   * @default {10000}
   */
  maxReconnectDelay?: number;
  /**
   * Messages kept while offline; when full, new ones are refused
   * (`emit` returns false, `request` rejects with `OUTBOX_FULL`).
   * @default {100}
   */
  outboxLimit?: number;
  /**
   * Whether to reconnect after the server closed with this code.
   * @default {shouldReconnect: not after 1000, 1008 or 4500–4999; yes after anything else, 4000–4499 included}
   */
  shouldReconnect?: (code: number) => boolean;
  /**
   * The WebSocket constructor.
   * @default {globalThis.WebSocket}
   */
  WebSocket?: typeof WebSocket;
  /**
   * One connection per browser: the tabs of this origin whose clients have
   * the same `shared` name (`true`: the URL) share one server connection,
   * held by one tab (a Web Lock elects it; when it closes, the next tab
   * takes over and every tab's client resumes through it). Each tab keeps
   * its own requests, joins, positions and handlers. Where Web Locks or
   * `BroadcastChannel` are missing, the client connects on its own.
   * @default {false}
   */
  shared?: boolean | string;
  /**
   * With `shared`: the URL of the shared-socket worker script
   * (`serveClient` serves it at `/duplex/client.worker.js`). Where the
   * browser has `SharedWorker`, that worker holds the connection and lives
   * while any tab of the origin is open, so closing a tab hands nothing
   * over; elsewhere the tabs elect a holder with Web Locks.
   * @default {no worker: Web Locks}
   */
  sharedWorker?: string | URL;
  /**
   * The transports to use, in order: when a WebSocket cannot open (the
   * upgrade refused, or no `open` within `openTimeout`), the client uses
   * HTTP streaming (`sse`: Server-Sent Events down, `POST` up) with the same
   * API for a minute, then tries the WebSocket again on its next connect.
   * `state.transport` (`client.transport`) says which is in use.
   * @default {["websocket", "sse"]}
   */
  transports?: readonly Transport[];
  /**
   * Milliseconds a WebSocket has to open before HTTP streaming is tried.
   * @default {5000}
   */
  openTimeout?: number;
  /**
   * Gives a token for the server's `auth` option: called before every
   * connect (the token rides in the `duplex.bearer.<token>` subprotocol,
   * which browsers can send and proxies do not log) and when the server
   * asks for a refresh (`auth.refresh`), so the connection keeps its
   * topics and pending requests. Return a fresh token: after the server
   * closed with 4001 (token expired), the same token again, or another
   * expired one, makes the client `unauthorized` instead of looping.
   * `undefined`: connect without one. An `UnauthorizedError` is an auth
   * failure: the state becomes `unauthorized`; any other rejection is
   * retried like a failed connect.
   * @default {no token}
   */
  getToken?: () => string | undefined | Promise<string | undefined>;
}

/** The client's options with every default filled in. */
export interface ResolvedClientOptions extends LinkOptions {
  /** Milliseconds a request waits for its reply. */
  readonly requestTimeout: number;
  /** Messages kept while offline. */
  readonly outboxLimit: number;
}

/** Fills in every default. */
export function resolveClientOptions(
  options: ClientOptions,
): ResolvedClientOptions {
  const { shared, url, WebSocket = globalThis.WebSocket } = options;
  const worker = sharedWorkerClass() ? options.sharedWorker : undefined;
  const canShare = worker !== undefined ||
    (typeof navigator === "object" && "locks" in navigator &&
      typeof BroadcastChannel === "function");
  const name = typeof shared === "string" ? shared : String(url);
  return {
    requestTimeout: 10_000,
    minReconnectDelay: 250,
    maxReconnectDelay: 10_000,
    outboxLimit: 100,
    protocols: [],
    shouldReconnect,
    WebSocket: globalThis.WebSocket,
    transports: ["websocket", "sse"],
    openTimeout: 5_000,
    ...withoutUndefined(options),
    ...(shared && canShare
      ? {
        WebSocket: sharedWebSocket(name, WebSocket, worker),
        transports: ["websocket"],
      }
      : {}),
  };
}

function withoutUndefined<T extends object>(options: T): T {
  const out = {} as T;
  for (const key in options) {
    if (options[key] !== undefined) out[key] = options[key];
  }
  return out;
}
