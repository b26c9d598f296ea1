/**
 * The tab that holds a shared connection (`shared_socket.ts`): one real
 * socket for every tab's client. A request gets an id of the connection's
 * and its reply goes back to the tab that sent it, with the tab's own id; a
 * server request goes to every tab and the first answer is sent; pushes and
 * binary frames go to every tab, which keeps those of its own topics. The
 * real socket opens on the first tab's hello (its URL with `push_topics=1`,
 * so that every push names its topic, and its subprotocols, so its token),
 * closes a grace period after the last tab's socket closed, and its close
 * closes every tab's socket (each reconnects).
 *
 * @module
 */

import { PUSH_TOPICS_PARAM } from "@duplex-ws/protocol";

/** How long the real socket stays open with no tab's socket attached. */
const LAST_TAB_GRACE = 5_000;

/** What goes over the tabs' channel. */
export type SharedMessage =
  | { k: "hello"; s: string; url: string; protocols: string[] }
  | { k: "send"; s: string; data: string | ArrayBuffer }
  | { k: "close"; s: string }
  | { k: "open"; s: string; protocol: string }
  | { k: "msg"; s?: string; data: string | ArrayBuffer }
  | { k: "closed"; s?: string; code: number; reason: string }
  | { k: "holder"; tab: string };

/** What the tabs' code reads of a frame. */
export type Frame = {
  event?: unknown;
  id?: unknown;
  topic?: unknown;
  data?: { topic?: unknown };
};

/** A frame's JSON object, or `undefined` for anything else. */
export function parseFrame(text: string): Frame | undefined {
  try {
    const value = JSON.parse(text);
    return typeof value === "object" && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

/** The real socket, and what each tab waits for on it. */
export class SharedHolder {
  readonly #post: (message: SharedMessage) => void;
  readonly #WebSocket: typeof WebSocket;
  #ws: WebSocket | undefined;
  /** Tabs' sockets attached (open, or waiting for the real one to open). */
  readonly #sockets = new Set<string>();
  /** Connection id → the tab's socket and its own id. */
  readonly #requests = new Map<number, { s: string; id: unknown }>();
  /** Server requests not answered yet. */
  readonly #asked = new Set<unknown>();
  #nextId = 0;

  /** @param post Sends to every tab (this one included). */
  constructor(
    post: (message: SharedMessage) => void,
    options: { WebSocket: typeof WebSocket },
  ) {
    this.#post = post;
    this.#WebSocket = options.WebSocket;
  }

  /** A tab's message. */
  receive(message: SharedMessage): void {
    if (message.k === "hello") {
      this.#sockets.add(message.s);
      const ws = this.#ws;
      if (ws?.readyState === 1) {
        this.#post({ k: "open", s: message.s, protocol: ws.protocol });
      } else if (!ws) this.#connect(message.url, message.protocols);
    } else if (message.k === "send") {
      this.#send(message.s, message.data);
    } else if (message.k === "close") {
      this.#sockets.delete(message.s);
      for (const [id, request] of this.#requests) {
        if (request.s === message.s) this.#requests.delete(id);
      }
      if (this.#sockets.size === 0) {
        setTimeout(() => {
          if (this.#sockets.size === 0) this.#ws?.close(1000);
        }, LAST_TAB_GRACE);
      }
    }
  }

  #connect(url: string, protocols: string[]): void {
    let ws: WebSocket;
    try {
      const named = new URL(url);
      named.searchParams.set(PUSH_TOPICS_PARAM, "1");
      ws = new this.#WebSocket(named, protocols);
    } catch {
      return this.#closed(1006, "");
    }
    this.#ws = ws;
    ws.binaryType = "arraybuffer";
    ws.onopen = () => {
      for (const s of this.#sockets) {
        this.#post({ k: "open", s, protocol: ws.protocol });
      }
    };
    ws.onmessage = ({ data }) => this.#message(data);
    ws.onclose = ({ code, reason }) => {
      if (this.#ws === ws) this.#closed(code || 1006, reason);
    };
  }

  #closed(code: number, reason: string): void {
    this.#ws = undefined;
    this.#sockets.clear();
    this.#requests.clear();
    this.#asked.clear();
    this.#post({ k: "closed", code, reason });
  }

  /** A tab's frame, with a request's id made the connection's. */
  #send(s: string, data: string | ArrayBuffer): void {
    const ws = this.#ws;
    if (ws?.readyState !== 1) return; // its client resends or times out
    if (typeof data === "string") {
      const frame = parseFrame(data);
      if (typeof frame?.event === "string" && frame.id !== undefined) {
        const id = ++this.#nextId;
        this.#requests.set(id, { s, id: frame.id });
        data = JSON.stringify({ ...frame, id });
      } else if (frame?.event === undefined && frame?.id !== undefined) {
        // An answer to a server request: the first tab's only.
        if (!this.#asked.delete(frame.id)) return;
      }
    }
    ws.send(data);
  }

  /** A frame from the server: a reply to its tab, anything else to all. */
  #message(data: string | ArrayBuffer): void {
    const frame = typeof data === "string" ? parseFrame(data) : undefined;
    if (frame && frame.event === undefined && typeof frame.id === "number") {
      const request = this.#requests.get(frame.id);
      if (!request) return;
      this.#requests.delete(frame.id);
      const text = JSON.stringify({ ...frame, id: request.id });
      return this.#post({ k: "msg", s: request.s, data: text });
    }
    if (typeof frame?.event === "string" && frame.id !== undefined) {
      this.#asked.add(frame.id);
    }
    this.#post({ k: "msg", data });
  }
}
