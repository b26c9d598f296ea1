/**
 * What arrives from Redis, and what a node believes of it: a frame on a
 * topic channel must be a signed (when a secret is set) push envelope, on a
 * presence channel a presence delta, on a control channel (this node's, or
 * every node's) a message for the control plane; anything else is dropped,
 * counted, and logged at most once per ten seconds, before any client sees it.
 *
 * @module
 */

import type { Logger } from "@duplex-ws/duplex";
import {
  type BackplaneEvents,
  type BackplaneSink,
  parsePresenceDelta,
} from "@duplex-ws/duplex/engine";
import { isValidTopic, withPosition } from "@duplex-ws/protocol";
import { type FrameCodec, isPushBody } from "./redis_frames.ts";

/**
 * The channel name (as a topic) control messages to node `to` go on, or to
 * every node with `"*"`.
 */
export function controlTopic(to: string): string {
  return to === "*" ? "_ctl" : `_node.${to}`;
}

/** Dropped frames are logged at most this often (milliseconds). */
const DROP_LOG_EVERY = 10_000;

/** What the inbox needs of its engine. */
export interface InboxContext {
  /** The key prefix channels start with. */
  readonly prefix: string;
  /** This node's id: its own frames are skipped. */
  readonly node: string;
  /** Checks frames (size, signature). */
  readonly frames: FrameCodec;
  /** Where dropped frames are logged. */
  readonly logger: Logger;
  /** A node whose presence change was taken in. */
  heard(node: string): void;
}

/** The engine's incoming frames, checked. */
export class Inbox {
  readonly #context: InboxContext;
  #sink: BackplaneSink | undefined;
  #events: BackplaneEvents | undefined;
  #dropped = 0;
  #lastLog = 0;

  /** @param context The engine's prefix, node, frames and log. */
  constructor(context: InboxContext) {
    this.#context = context;
  }

  /** Frames dropped since start. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Hands pushes to `sink` and presence changes to `events` from now on. */
  start(sink: BackplaneSink, events: BackplaneEvents | undefined): void {
    this.#sink = sink;
    this.#events = events;
  }

  /** A message from Redis: checked, then handed on, or dropped and counted. */
  receive(channel: string, frame: string): void {
    const prefix = `${this.#context.prefix}:{`;
    const close = channel.lastIndexOf("}:");
    const topic = channel.slice(prefix.length, close);
    const kind = channel.slice(close + 2);
    const decoded = isValidTopic(topic)
      ? this.#context.frames.decode(topic, frame)
      : undefined;
    if (decoded === undefined) return this.#drop(channel, "bad frame");
    if (decoded.node === this.#context.node) return;
    if (kind === "t") {
      const { position, body } = decoded;
      // A numbered publish is its head, and the position the engine gave it.
      if (!isPushBody(position ? `${body}}}` : body)) {
        return this.#drop(channel, "not a push");
      }
      if (!position) return this.#sink?.(topic, body);
      const text = withPosition(body, position.offset, position.epoch);
      return this.#sink?.(topic, text, position);
    }
    if (kind === "c") return this.#events?.control?.(decoded.body);
    if (kind === "pr") {
      const delta = parsePresenceDelta(decoded.body);
      if (!delta) return this.#drop(channel, "bad presence");
      // A node that is not beating is dropped again at the next heartbeat.
      this.#context.heard(decoded.node);
      return this.#events?.presence(topic, decoded.node, delta);
    }
    this.#drop(channel, "unknown channel");
  }

  #drop(channel: string, why: string): void {
    this.#dropped++;
    const now = performance.now();
    if (now - this.#lastLog < DROP_LOG_EVERY) return;
    this.#lastLog = now;
    this.#context.logger.warn("redis frame dropped", {
      channel: channel.slice(0, 200),
      why,
      dropped: this.#dropped,
    });
  }
}
