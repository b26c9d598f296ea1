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
  type BackplaneHealth,
  type BackplaneSink,
  nowMicros,
  type Presence,
} from "./backplane.ts";

type ChannelMessage =
  | { type: "publish"; topic: string; text: string }
  | { type: "count"; node: string; topic: string; count: number }
  | { type: "hello"; node: string }
  | { type: "bye"; node: string };

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

  /** Creates the engine; nothing happens before `start`. */
  constructor(options: BroadcastChannelBackplaneOptions = {}) {
    this.#name = options.channel ?? "duplex";
  }

  /** Opens the channel and asks the other isolates for their counts. */
  start(sink: BackplaneSink): Promise<void> {
    const channel = new BroadcastChannel(this.#name);
    channel.onmessage = (event: MessageEvent<ChannelMessage>) =>
      this.#receive(event.data, sink);
    this.#channel = channel;
    this.#post({ type: "hello", node: this.#node });
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
      case "count": {
        let counts = this.#remote.get(message.node);
        if (!counts) this.#remote.set(message.node, counts = new Map());
        if (message.count === 0) counts.delete(message.topic);
        else counts.set(message.topic, message.count);
        break;
      }
      case "hello":
        for (const [topic, count] of this.#local) {
          this.#post({ type: "count", node: this.#node, topic, count });
        }
        break;
      case "bye":
        this.#remote.delete(message.node);
        break;
    }
  }
}
