/**
 * The `BroadcastChannel` engine, for the isolates of `deno serve --parallel`
 * (one per core, in one process). A channel message reaches every other
 * isolate, never the sender's own, so local delivery plus one post gives
 * exactly-once delivery. It never crosses processes.
 *
 * @module
 */

import {
  type Backplane,
  type BackplaneEvents,
  type BackplaneHealth,
  type BackplaneSink,
  nowMicros,
  type Presence,
} from "./backplane.ts";
import type { PresenceDelta, PresenceEntry } from "./presence.ts";

type ChannelMessage =
  | { type: "publish"; topic: string; text: string }
  | { type: "count"; node: string; topic: string; count: number }
  | { type: "presence"; node: string; topic: string; delta: PresenceDelta }
  | { type: "control"; to: string; message: string }
  | { type: "hello"; node: string }
  | { type: "bye"; node: string };

/** Topic → node → key → entry. */
type PresenceStore = Map<string, Map<string, Map<string, PresenceEntry>>>;

/** Options of {@linkcode BroadcastChannelBackplane}. */
export interface BroadcastChannelBackplaneOptions {
  /**
   * The channel name; isolates with the same name form one cluster.
   * @default {"duplex"}
   */
  channel?: string;
}

/** Publishes and presence across the isolates of one process. */
export class BroadcastChannelBackplane implements Backplane {
  /** `broadcast-channel`. */
  readonly kind = "broadcast-channel";
  readonly #name: string;
  readonly #node = crypto.randomUUID();
  #channel: BroadcastChannel | undefined;
  #local = new Map<string, number>();
  #remote = new Map<string, Map<string, number>>();
  /** Every isolate's presence entries, this one's included: every isolate gets every change. */
  #presence: PresenceStore = new Map();
  #events: BackplaneEvents | undefined;

  /** Creates the engine; nothing happens before `start`. */
  constructor(options: BroadcastChannelBackplaneOptions = {}) {
    this.#name = options.channel ?? "duplex";
  }

  /** Opens the channel and asks the other isolates for their counts and presence. */
  start(sink: BackplaneSink, events?: BackplaneEvents): Promise<void> {
    this.#events = events;
    const channel = new BroadcastChannel(this.#name);
    channel.onmessage = (event: MessageEvent<ChannelMessage>) =>
      this.#receive(event.data, sink);
    this.#channel = channel;
    this.#post({ type: "hello", node: this.#node });
    return Promise.resolve();
  }

  /** This isolate's id. */
  get node(): string {
    return this.#node;
  }

  /** Posts a control message to one isolate, or every other (`"*"`). */
  control(to: string, message: string): Promise<void> {
    this.#post({ type: "control", to, message });
    return Promise.resolve();
  }

  /** Nothing to do: every isolate receives every message. */
  subscribe(_topic: string): void {}
  /** Nothing to do. */
  unsubscribe(_topic: string): void {}

  /** Posts the message to the other isolates. */
  publish(topic: string, text: string): Promise<boolean> {
    return Promise.resolve(this.#post({ type: "publish", topic, text }));
  }

  /** Shares this isolate's count with the others. */
  setLocalCount(topic: string, count: number): void {
    if (count === 0) this.#local.delete(topic);
    else this.#local.set(topic, count);
    this.#post({ type: "count", node: this.#node, topic, count });
  }

  /** Local count plus the last counts the other isolates reported. */
  presence(topic: string, localCount: number): Promise<Presence> {
    return Promise.resolve({
      count: localCount + this.remoteCount(topic),
      version: nowMicros(),
    });
  }

  /** The last counts the other isolates reported. */
  remoteCount(topic: string): number {
    let count = 0;
    for (const counts of this.#remote.values()) count += counts.get(topic) ?? 0;
    return count;
  }

  /** Records this isolate's presence changes and posts them to the others. */
  sharePresence(topic: string, delta: PresenceDelta): Promise<void> {
    this.#store(topic, this.#node, delta);
    this.#post({ type: "presence", node: this.#node, topic, delta });
    return Promise.resolve();
  }

  /** The other isolates' entries of a topic, as every change has been posted to all. */
  loadPresence(
    topic: string,
  ): Promise<Map<string, Record<string, PresenceEntry>>> {
    const loaded = new Map<string, Record<string, PresenceEntry>>();
    for (const [node, entries] of this.#presence.get(topic) ?? []) {
      if (node !== this.#node) loaded.set(node, Object.fromEntries(entries));
    }
    return Promise.resolve(loaded);
  }

  /** Nothing to do: every isolate receives every change. */
  watchPresence(_topic: string): void {}
  /** Nothing to do. */
  unwatchPresence(_topic: string): void {}

  #store(topic: string, node: string, delta: PresenceDelta): void {
    let nodes = this.#presence.get(topic);
    if (!nodes) this.#presence.set(topic, nodes = new Map());
    let entries = nodes.get(node);
    if (!entries) nodes.set(node, entries = new Map());
    for (const [key, entry] of Object.entries(delta)) {
      if (entry === null) entries.delete(key);
      else entries.set(key, entry);
    }
    if (entries.size === 0) nodes.delete(node);
    if (nodes.size === 0) this.#presence.delete(topic);
  }

  /** `ok` while the channel is open. */
  health(): BackplaneHealth {
    return this.#channel
      ? { state: "ok" }
      : { state: "degraded", detail: "channel closed" };
  }

  /** Tells the others this isolate is gone, then closes the channel. */
  close(): Promise<void> {
    this.#post({ type: "bye", node: this.#node });
    this.#channel?.close();
    this.#channel = undefined;
    return Promise.resolve();
  }

  #post(message: ChannelMessage): boolean {
    if (!this.#channel) return false;
    this.#channel.postMessage(message);
    return true;
  }

  #receive(message: ChannelMessage, sink: BackplaneSink): void {
    switch (message.type) {
      case "publish":
        sink(message.topic, message.text);
        break;
      case "control":
        if (message.to === "*" || message.to === this.#node) {
          this.#events?.control?.(message.message);
        }
        break;
      case "count": {
        let counts = this.#remote.get(message.node);
        if (!counts) this.#remote.set(message.node, counts = new Map());
        if (message.count === 0) counts.delete(message.topic);
        else counts.set(message.topic, message.count);
        break;
      }
      case "presence":
        this.#store(message.topic, message.node, message.delta);
        this.#events?.presence(message.topic, message.node, message.delta);
        break;
      case "hello":
        for (const [topic, count] of this.#local) {
          this.#post({ type: "count", node: this.#node, topic, count });
        }
        for (const [topic, nodes] of this.#presence) {
          const mine = nodes.get(this.#node);
          if (!mine) continue;
          const delta = Object.fromEntries(mine);
          this.#post({ type: "presence", node: this.#node, topic, delta });
        }
        break;
      case "bye":
        this.#remote.delete(message.node);
        for (const [topic, nodes] of this.#presence) {
          nodes.delete(message.node);
          if (nodes.size === 0) this.#presence.delete(topic);
        }
        this.#events?.nodeGone(message.node);
        break;
    }
  }
}
