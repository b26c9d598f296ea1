/**
 * The client's connection to the server, kept up: a token from `getToken`
 * before every connect, exponential backoff between attempts, the state a
 * page shows, and the close rules (reconnect or not by the code; 4503 and a
 * refused identity mean `unauthorized`, which waits for `reconnect()`).
 * What flows over the connection is the client's business, not the link's.
 *
 * @module
 */

import {
  AUTH_PROTOCOL,
  BEARER_PROTOCOL_PREFIX,
  LibraryClose,
  normalizeCloseInfo,
} from "@duplex-ws/protocol";
import { Backoff } from "./backoff.ts";
import { UnauthorizedError } from "./errors.ts";
import { HttpStreamSocket } from "./http_socket.ts";

/**
 * The connection's state, as a page shows it. `unauthorized`: `getToken`
 * failed, or the server refused the identity for good (4503); the client
 * waits for `reconnect()` (say, after a new login).
 */
export type ClientState =
  | "connecting"
  | "open"
  | "reconnecting"
  | "unauthorized"
  | "closed";

/** What the link is made with (the client's options, defaults filled in). */
export interface LinkOptions {
  /** The server's URL, or a function giving it (called on every connect). */
  readonly url: string | (() => string);
  /** Subprotocols to offer. */
  readonly protocols: readonly string[];
  /** The WebSocket constructor. */
  readonly WebSocket: typeof WebSocket;
  /** Gives a token before every connect. */
  readonly getToken?: () => string | undefined | Promise<string | undefined>;
  /** First reconnection delay in milliseconds. */
  readonly minReconnectDelay: number;
  /** Longest reconnection delay in milliseconds. */
  readonly maxReconnectDelay: number;
  /** Whether to reconnect after the server closed with this code. */
  readonly shouldReconnect: (code: number) => boolean;
  /** The transports to use, in order of preference. */
  readonly transports: readonly Transport[];
  /** Milliseconds a WebSocket has to open before the next transport is tried. */
  readonly openTimeout: number;
}

/** A way to the server: a WebSocket, or HTTP streaming (SSE down, `POST` up). */
export type Transport = "websocket" | "sse";

/** After a WebSocket failed to open, HTTP streaming is used this long. */
const FALLBACK_FOR = 60_000;

/** What the link tells its client. */
export interface LinkEvents {
  /** A connection opened. */
  opened(): void;
  /** A message arrived on it. */
  message(data: string | ArrayBuffer): void;
  /**
   * It closed: `next` says what follows (`reconnecting`, `unauthorized`
   * or `closed`).
   */
  closed(code: number, reason: string, next: ClientState): void;
}

/** The current connection and how the next one is made. */
export class Link {
  readonly #options: LinkOptions;
  readonly #events: LinkEvents;
  readonly #backoff: Backoff;
  readonly #listeners = new Set<(state: ClientState, code?: number) => void>();
  #ws: WebSocket | undefined;
  #transport: Transport = "websocket";
  /** When a WebSocket last failed to open. */
  #wsFailedAt = -Infinity;
  #state: ClientState = "connecting";
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closedByUser = false;
  #lastClose: { code: number; reason: string } | undefined;
  #authError: Error | undefined;
  /** The token the last connection offered, and whether the server refused it as expired. */
  #token: { value: string | undefined; expired: boolean } | undefined;

  /** Connects at once. */
  constructor(options: LinkOptions, events: LinkEvents) {
    this.#options = options;
    this.#events = events;
    this.#backoff = new Backoff(
      options.minReconnectDelay,
      options.maxReconnectDelay,
    );
    this.#connect();
  }

  /** connecting, open, reconnecting, unauthorized or closed. */
  get state(): ClientState {
    return this.#state;
  }

  /** Whether messages can be sent now. */
  get isOpen(): boolean {
    return this.#ws?.readyState === 1;
  }

  /** The transport in use, or the one being tried. */
  get transport(): Transport {
    return this.#transport;
  }

  /** Whether the app closed the client. */
  get closedByUser(): boolean {
    return this.#closedByUser;
  }

  /** The code and reason of the last close, if any. */
  get lastClose(): { code: number; reason: string } | undefined {
    return this.#lastClose;
  }

  /** The last auth failure: `getToken`'s error, or the server's refusal. */
  get authError(): Error | undefined {
    return this.#authError;
  }

  /** Records an auth failure the client met on the connection (a refused refresh). */
  set authError(error: Error | undefined) {
    this.#authError = error;
  }

  /** Calls `listener` on every state change; returns a function that stops it. */
  onState(listener: (state: ClientState, code?: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Sends on the current connection (check {@linkcode isOpen} first). */
  send(data: string | ArrayBuffer | Uint8Array<ArrayBuffer>): void {
    this.#ws!.send(data);
  }

  /** Whether the app gives tokens (`getToken`), so the server's refresh requests can be answered. */
  get refreshes(): boolean {
    return this.#options.getToken !== undefined;
  }

  /** A token for the current connection (a refresh): `getToken`'s, or `undefined` without one. */
  token(): Promise<string | undefined> {
    return Promise.resolve(this.#options.getToken?.());
  }

  /** Connects again now, from `unauthorized` or while waiting to reconnect. */
  reconnect(): void {
    if (this.#closedByUser) return;
    if (this.#state !== "unauthorized" && this.#state !== "reconnecting") {
      return;
    }
    clearTimeout(this.#timer);
    this.#authError = undefined;
    this.#token = undefined;
    this.#setState("connecting");
    this.#connect();
  }

  /** Closes for good. */
  close(code: number, reason: string): void {
    this.#closedByUser = true;
    clearTimeout(this.#timer);
    if (this.#ws && this.#ws.readyState < 2) {
      this.#ws.close(code, reason);
    } else this.#setState("closed", code);
  }

  #connect(): void {
    const { getToken } = this.#options;
    if (!getToken) return this.#open(undefined);
    let token: string | undefined | Promise<string | undefined>;
    try {
      token = getToken();
    } catch (error) {
      token = Promise.reject(error);
    }
    Promise.resolve(token).then(
      (token) => {
        if (this.#closedByUser) return;
        // After a 4001, the same token again (or another expired one) would
        // loop: refused, reconnect, refused. Say so instead.
        const stale = this.#token?.expired &&
          (this.#token.value === token ||
            (token !== undefined && isExpired(token)));
        if (stale) {
          return this.#unauthorized(
            new UnauthorizedError(
              "getToken gave a token that has expired: return a fresh one",
            ),
          );
        }
        this.#open(token);
      },
      (error) => {
        if (this.#closedByUser) return;
        if (error instanceof UnauthorizedError) {
          return this.#unauthorized(error);
        }
        // No token now (the network, say): try again like a failed connect.
        this.#authError = error instanceof Error
          ? error
          : new Error(String(error));
        this.#retry(this.#state === "open" ? "reconnecting" : this.#state);
      },
    );
  }

  /** The subprotocols offered: the app's, and the token's carrier with its marker. */
  #protocols(token: string | undefined): string[] {
    const protocols = [...this.#options.protocols];
    if (token === undefined) return protocols;
    if (!protocols.includes(AUTH_PROTOCOL)) protocols.push(AUTH_PROTOCOL);
    protocols.push(BEARER_PROTOCOL_PREFIX + token);
    return protocols;
  }

  /** WebSocket, unless one failed to open lately and HTTP streaming may be used. */
  #choose(): Transport {
    const { transports, WebSocket } = this.#options;
    // A page where WebSocket is missing (blocked, or an old embedded view).
    const ws = transports.includes("websocket") &&
      typeof WebSocket === "function";
    const recent = performance.now() - this.#wsFailedAt < FALLBACK_FOR;
    return ws && !(recent && transports.includes("sse")) ? "websocket" : "sse";
  }

  #open(token: string | undefined): void {
    const { url } = this.#options;
    const at = typeof url === "function" ? url() : url;
    const transport = this.#transport = this.#choose();
    let ws: WebSocket;
    try {
      ws = transport === "sse"
        ? new HttpStreamSocket(at, token) as unknown as WebSocket
        : new this.#options.WebSocket(at, this.#protocols(token));
    } catch (error) {
      // A token that cannot be a subprotocol (not an HTTP token).
      return this.#unauthorized(error);
    }
    this.#token = { value: token, expired: false };
    this.#ws = ws;
    ws.binaryType = "arraybuffer";
    // A WebSocket that does not open in time (a proxy swallowing the
    // upgrade) is given up: the next attempt may use HTTP streaming.
    const timer = transport === "websocket"
      ? setTimeout(() => ws.close(), this.#options.openTimeout)
      : undefined;
    ws.onopen = () => {
      clearTimeout(timer);
      this.#backoff.reset();
      this.#setState("open");
      this.#events.opened();
    };
    ws.onmessage = (event) => this.#events.message(event.data);
    ws.onclose = (event) => {
      clearTimeout(timer);
      // What failed to open is not tried first next time: a WebSocket for
      // a while, HTTP streaming (a server without it) until WebSocket fails.
      if (this.#state !== "open") {
        this.#wsFailedAt = transport === "websocket"
          ? performance.now()
          : -Infinity;
      }
      this.#closed(event);
    };
  }

  #closed(event: CloseEvent): void {
    // Deno's client reports a connection that never opened, or dropped, as 0.
    const { code, reason } = normalizeCloseInfo(
      event.code,
      event.reason,
      event.wasClean,
    );
    this.#lastClose = { code, reason };
    if (code === LibraryClose.TOKEN_EXPIRED.code && this.#token) {
      this.#token.expired = true;
    }
    let next: ClientState;
    if (!this.#closedByUser && code === LibraryClose.FORBIDDEN.code) {
      // The identity is refused for good: not a reconnect loop, a state.
      this.#authError = new Error(reason || "forbidden");
      next = "unauthorized";
    } else if (this.#closedByUser || !this.#options.shouldReconnect(code)) {
      next = "closed";
    } else next = "reconnecting";
    this.#events.closed(code, reason, next);
    if (next === "reconnecting") this.#retry(next, code);
    else this.#setState(next, code);
  }

  #retry(state: ClientState, code?: number): void {
    this.#setState(state, code);
    this.#timer = setTimeout(() => this.#connect(), this.#backoff.next());
  }

  #unauthorized(error: unknown): void {
    if (this.#closedByUser) return;
    this.#authError = error instanceof Error ? error : new Error(String(error));
    this.#setState("unauthorized");
  }

  #setState(state: ClientState, code?: number): void {
    if (this.#state === state) return;
    this.#state = state;
    for (const listener of this.#listeners) listener(state, code);
  }
}

/**
 * Whether a token is a JWT whose `exp` has passed (with 5 s to spare for
 * clocks); any other token is the server's to judge.
 */
function isExpired(token: string): boolean {
  const payload = token.split(".")[1];
  if (!payload || token.split(".").length !== 3) return false;
  try {
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
    const { exp } = JSON.parse(json) as { exp?: unknown };
    return typeof exp === "number" && exp * 1000 < Date.now() - 5_000;
  } catch {
    return false;
  }
}
