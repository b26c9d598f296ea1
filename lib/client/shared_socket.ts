/**
 * One socket per browser (`shared: true`): the tabs of one origin that open
 * a client of the same name share one server connection. With the
 * `sharedWorker` option, where the browser has `SharedWorker`, a shared
 * worker holds it (`shared_worker.ts`) and lives while any tab is open;
 * otherwise a Web Lock elects the tab that holds it (the next tab waiting
 * for the lock takes over when it closes) and the others reach it over a
 * `BroadcastChannel`. Each tab's
 * client is whole (its own requests, joins, positions, handlers) and sees a
 * `WebSocket`-like object: the holding tab gives each request a
 * connection-wide id and routes its reply back, answers a server request
 * once, and relays every push to every tab. The connection asks that every
 * push of a topic name it (`push_topics`), so a topic's pushes reach a tab
 * only once a reply there named the topic (it joined it); pushes of no
 * topic reach every tab. A leave is the connection's, and which tab asked
 * cannot be told, so when the server says the connection left a topic
 * (`topic.exit`) every tab that followed it reconnects through the same
 * connection and its client rejoins what it still follows, with `since`.
 * When the holding tab goes, the others' sockets close (1006) and their
 * clients reconnect through the next holder, resuming with `since`.
 *
 * @module
 */

import {
  STREAM_RESET,
  TOPIC_EXIT,
  TOPIC_JOINED,
  TOPIC_LEFT,
} from "@duplex-ws/protocol";
import {
  type Frame,
  parseFrame,
  SharedHolder,
  type SharedMessage,
} from "./shared_holder.ts";

/** Milliseconds a tab waits for its replies before it rejoins anyway. */
const REJOIN_WAIT = 5_000;

/** Library pushes sent to one member, naming their topic in their data. */
const TOPIC_DATA = new Set([STREAM_RESET, TOPIC_LEFT, TOPIC_JOINED]);

/** The topic a push is of: on its envelope, or in a library push's data. */
function topicOf(frame: Frame | undefined): string | undefined {
  const topic = frame?.topic ??
    (TOPIC_DATA.has(frame?.event as string) ? frame?.data?.topic : undefined);
  return typeof topic === "string" ? topic : undefined;
}

/** `WebSocket`'s readyState values. */
const CONNECTING = 0, OPEN = 1, CLOSING = 2, CLOSED = 3;

/** The part of the Web Locks API used here (not in Deno's types). */
interface Locks {
  request(name: string, hold: () => Promise<void>): Promise<void>;
}

/** The part of `SharedWorker` used here (not in Deno's types). */
type SharedWorkerClass = new (
  url: string | URL,
  options: { type: "module"; name: string },
) => { port: MessagePort };

/** The browser's `SharedWorker`, where there is one. */
export function sharedWorkerClass(): SharedWorkerClass | undefined {
  return (globalThis as { SharedWorker?: SharedWorkerClass }).SharedWorker;
}

/**
 * One tab's end of a shared connection: a `SharedWorker`'s port when one
 * holds it, else the channel to the other tabs and the holder if it is this
 * tab.
 */
class Tab {
  readonly id = crypto.randomUUID();
  readonly channel: BroadcastChannel | undefined;
  readonly port: MessagePort | undefined;
  readonly sockets = new Map<string, SharedSocket>();
  holder: SharedHolder | undefined;
  /** The tab that holds the connection, once one said so. */
  holderTab: string | undefined;

  constructor(
    readonly name: string,
    RealWebSocket: typeof WebSocket,
    worker: string | URL | undefined,
  ) {
    const Worker = sharedWorkerClass();
    if (worker !== undefined && Worker) {
      const port = new Worker(worker, {
        type: "module",
        name: `duplex-shared:${name}`,
      }).port;
      this.port = port;
      port.onmessage = ({ data }: MessageEvent) => this.receive(data);
      // A tab that goes says so: its sockets are no longer attached.
      addEventListener("pagehide", () => {
        for (const s of this.sockets.keys()) this.post({ k: "close", s });
        port.postMessage({ k: "bye" });
      });
      return;
    }
    this.channel = new BroadcastChannel(`duplex-shared:${name}`);
    this.channel.onmessage = ({ data }) => this.receive(data);
    // Held until the tab goes: then the next tab waiting takes over.
    const { locks } = navigator as unknown as { locks: Locks };
    void locks.request(`duplex-shared:${name}`, () => {
      this.holder = new SharedHolder((message) => this.post(message), {
        WebSocket: RealWebSocket,
      });
      this.post({ k: "holder", tab: this.id });
      return new Promise<void>(() => {});
    });
  }

  /** Sends to the worker, or to every tab, this one included. */
  post(message: SharedMessage): void {
    if (this.port) return this.port.postMessage(message);
    this.channel!.postMessage(message);
    this.receive(message);
  }

  receive(message: SharedMessage): void {
    if (message.k === "holder") {
      this.holderTab = message.tab;
      for (const socket of this.sockets.values()) socket.holderChanged();
      return;
    }
    if (
      message.k === "hello" || message.k === "send" || message.k === "close"
    ) {
      return this.holder?.receive(message);
    }
    const targets = message.s === undefined
      ? [...this.sockets.values()]
      : [this.sockets.get(message.s)].filter((s) => s !== undefined);
    for (const socket of targets) socket.receive(message);
  }
}

const tabs = new Map<string, Tab>();

/**
 * A `WebSocket` constructor whose sockets share one connection per
 * browser under `name` (see the module's doc), held by the shared worker
 * at `worker` when there is one.
 */
export function sharedWebSocket(
  name: string,
  RealWebSocket: typeof WebSocket,
  worker?: string | URL,
): typeof WebSocket {
  return class extends SharedSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      let tab = tabs.get(name);
      if (!tab) tabs.set(name, tab = new Tab(name, RealWebSocket, worker));
      super(tab, String(url), [protocols ?? []].flat());
    }
  } as unknown as typeof WebSocket;
}

/** A tab's view of the shared connection, shaped like a `WebSocket`. */
class SharedSocket {
  readyState = CONNECTING;
  binaryType = "arraybuffer";
  protocol = "";
  readonly bufferedAmount = 0;
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: string | ArrayBuffer }) => void) | null = null;
  onclose:
    | ((event: { code: number; reason: string; wasClean: boolean }) => void)
    | null = null;
  onerror: (() => void) | null = null;
  readonly #tab: Tab;
  readonly #id = crypto.randomUUID();
  readonly #hello: SharedMessage;
  /** The holding tab this socket was opened through. */
  #through: string | undefined;
  /** The topics a reply to this tab named: their numbered pushes reach it. */
  readonly #topics = new Set<string>();
  /** This tab's requests awaiting replies. */
  readonly #asking = new Set<unknown>();
  /** Pushes of topics not known yet, while a reply may name them. */
  #held: { topic: string; data: string }[] = [];
  /** A topic it followed was left: it reconnects once its replies are in. */
  #rejoin = false;

  constructor(tab: Tab, url: string, protocols: string[]) {
    this.#tab = tab;
    this.#hello = { k: "hello", s: this.#id, url, protocols };
    tab.sockets.set(this.#id, this);
    queueMicrotask(() => tab.post(this.#hello));
  }

  send(data: string | ArrayBuffer | Uint8Array<ArrayBuffer>): void {
    if (this.readyState !== OPEN) throw new Error("not open");
    if (typeof data === "string") {
      const { event, id } = JSON.parse(data) as {
        event?: unknown;
        id?: unknown;
      };
      if (event !== undefined && id !== undefined) this.#asking.add(id);
    }
    const payload = data instanceof Uint8Array ? data.slice().buffer : data;
    this.#tab.post({ k: "send", s: this.#id, data: payload });
  }

  close(code = 1000, reason = ""): void {
    if (this.readyState >= CLOSING) return;
    this.#tab.post({ k: "close", s: this.#id });
    // As a WebSocket closed before it opened: 1006, not clean.
    const opened = this.readyState === OPEN;
    this.#closed(opened ? code : 1006, opened ? reason : "", opened);
  }

  /** Another tab holds the connection now: a socket of the last one is gone. */
  holderChanged(): void {
    if (this.readyState === CONNECTING) this.#tab.post(this.#hello);
    else if (this.#through !== this.#tab.holderTab) {
      this.#closed(1006, "the tab holding the connection went", false);
    }
  }

  receive(message: SharedMessage): void {
    if (message.k === "open" && this.readyState === CONNECTING) {
      this.readyState = OPEN;
      this.protocol = message.protocol;
      this.#through = this.#tab.holderTab;
      this.onopen?.();
    } else if (message.k === "msg" && this.readyState === OPEN) {
      this.#frame(message.data);
    } else if (message.k === "closed") {
      this.#closed(message.code, message.reason, message.code !== 1006);
    }
  }

  /**
   * Hands on a frame meant for this tab. A reply names the topic it joined;
   * a push of a topic no reply named yet is held while this tab awaits a
   * reply (a join's replay comes before its reply), and dropped once none
   * is awaited (another tab's topic).
   */
  #frame(data: string | ArrayBuffer): void {
    const frame = typeof data === "string" ? parseFrame(data) : undefined;
    if (frame?.event === undefined && frame?.id !== undefined) {
      this.#asking.delete(frame.id);
      const topic = frame.data?.topic;
      if (typeof topic === "string" && !this.#topics.has(topic)) {
        this.#topics.add(topic);
        for (const held of this.#held) {
          if (held.topic === topic) this.onmessage?.({ data: held.data });
        }
      }
      this.onmessage?.({ data });
      if (this.#asking.size === 0) this.#held = [];
      if (this.#asking.size === 0 && this.#rejoin) this.#reconnect();
      return;
    }
    const topic = topicOf(frame);
    if (frame?.event === TOPIC_EXIT) return this.#exited(topic);
    if (frame?.event === TOPIC_JOINED && topic) this.#topics.add(topic);
    if (topic === undefined || this.#topics.has(topic)) {
      if (frame?.event === TOPIC_LEFT) this.#topics.delete(topic!);
      return this.onmessage?.({ data });
    }
    if (this.#asking.size > 0 && this.#held.length < 10_000) {
      this.#held.push({ topic, data: data as string });
    }
  }

  /**
   * The connection left a topic a tab asked to leave: which tab cannot be
   * told, so every tab that followed it reconnects through the same
   * connection (once its own requests are answered) and its client rejoins
   * what it still follows, with `since`.
   */
  #exited(topic: string | undefined): void {
    if (topic === undefined || !this.#topics.delete(topic)) return;
    this.#rejoin = true;
    if (this.#asking.size === 0) return this.#reconnect();
    setTimeout(() => this.#reconnect(), REJOIN_WAIT);
  }

  #reconnect(): void {
    if (this.readyState !== OPEN) return;
    this.#tab.post({ k: "close", s: this.#id });
    this.#closed(1006, "another tab left a topic this tab follows", false);
  }

  #closed(code: number, reason: string, wasClean: boolean): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.#tab.sockets.delete(this.#id);
    this.onclose?.({ code, reason, wasClean });
  }
}
