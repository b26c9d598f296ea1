/**
 * Presence with members, for the topics whose policy asks for it. Every node
 * contributes the members it has (one entry per presence key, however many
 * of its connections share the key) and replicates the other nodes'
 * contributions to the topics it serves; a member is present while any live
 * node contributes it. Each node tells its own members what changed, at
 * most once per topic per interval, so a client that joins and leaves in a
 * loop makes at most one push per interval per room. A key whose last
 * connection leaves stays present for a grace period, so a quick reconnect
 * never shows as leaving.
 *
 * @module
 */

import { EventError } from "../event_error.ts";
import type { Logger } from "../logger.ts";
import { encodePush } from "@duplex-ws/protocol";
import { ErrorCode } from "@duplex-ws/protocol";
import {
  PRESENCE_DIFF,
  PRESENCE_STATE,
  type PresenceState,
} from "@duplex-ws/protocol";
import { type Member, sendOfTopic } from "./hub.ts";
import {
  type PresenceDelta,
  type PresenceEntry,
  record,
  TopicPresence,
} from "./topic_presence.ts";

export type { PresenceDelta, PresenceEntry } from "./topic_presence.ts";

/** What presence needs of the engine that reaches the other nodes. */
export interface PresenceEngine {
  /** Stores and sends this node's changes to a topic's entries. */
  share(topic: string, delta: PresenceDelta): Promise<void>;
  /** Every other live node's entries of a topic, by node. */
  load(topic: string): Promise<Map<string, Record<string, PresenceEntry>>>;
  /** Starts receiving the other nodes' changes to a topic. */
  watch(topic: string): void;
  /** Stops receiving them. */
  unwatch(topic: string): void;
}

/** Options of {@linkcode PresenceTracker}. */
export interface PresenceTrackerOptions {
  /** The engine (a local one has no other nodes). */
  engine: PresenceEngine;
  /** Milliseconds between two diffs of one topic. */
  interval: number;
  /** Milliseconds a key stays after its last connection left. */
  grace: number;
  /** Sends one text to every local member of a topic. */
  deliver: (topic: string, text: string) => void;
  /** Where to log engine failures. */
  logger: Logger;
}

/** The most UTF-8 bytes a member's metadata may take as JSON. */
export const MAX_PRESENCE_META_BYTES = 1024;
/** The most characters a presence key may have. */
export const MAX_PRESENCE_KEY_LENGTH = 128;

const encoder = new TextEncoder();

/** Checks a presence key and metadata; returns the metadata's JSON. */
export function checkPresence(key: unknown, meta: unknown): string {
  if (
    typeof key !== "string" || key.length === 0 ||
    key.length > MAX_PRESENCE_KEY_LENGTH
  ) {
    throw new EventError(
      ErrorCode.INVALID_DATA,
      `Presence key must be 1-${MAX_PRESENCE_KEY_LENGTH} characters`,
    );
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(meta ?? null);
  } catch {
    // not JSON
  }
  if (
    json === undefined || encoder.encode(json).length > MAX_PRESENCE_META_BYTES
  ) {
    throw new EventError(
      ErrorCode.INVALID_DATA,
      `Presence metadata must be JSON of at most ${MAX_PRESENCE_META_BYTES} bytes`,
    );
  }
  return json;
}

/** Presence with members for the topics of one node that ask for it. */
export class PresenceTracker {
  readonly #options: PresenceTrackerOptions;
  readonly #topics = new Map<string, TopicPresence>();
  /** Which key each local connection holds in each presence topic. */
  readonly #keys = new Map<Member, Map<string, string>>();
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  /** @param options The engine, the interval, the grace period, delivery. */
  constructor(options: PresenceTrackerOptions) {
    this.#options = options;
  }

  /**
   * A local connection joined a presence topic (or joined again with new
   * metadata). It gets the snapshot once the topic's presence is loaded.
   */
  join(
    member: Member,
    topic: string,
    key: string,
    meta: unknown,
    maxMembers: number,
  ): void {
    const tp = this.#topic(topic, maxMembers);
    let keys = this.#keys.get(member);
    if (!keys) this.#keys.set(member, keys = new Map());
    const previous = keys.get(topic);
    if (previous === undefined) tp.connections++;
    else if (previous !== key) this.#release(tp, previous);
    keys.set(topic, key);
    const grace = tp.graces.get(key);
    if (grace !== undefined) {
      clearTimeout(grace);
      tp.graces.delete(key);
    }
    const entry = { meta: meta ?? null, at: Date.now() };
    const held = tp.mine.get(key);
    if (held === undefined) {
      tp.touch(key);
      tp.mine.set(key, { entry, refs: 1 });
      tp.hold(key, 1);
      tp.unshared[key] = entry;
      this.#schedule();
    } else {
      if (previous !== key) held.refs++;
      if (JSON.stringify(held.entry.meta) !== JSON.stringify(entry.meta)) {
        tp.touch(key);
        held.entry = entry;
        tp.unshared[key] = entry;
        this.#schedule();
      }
    }
    if (tp.loaded) {
      sendOfTopic(
        member,
        encodePush(PRESENCE_STATE, tp.state(maxMembers)),
        topic,
      );
    } else tp.waiting.push({ member, maxMembers });
  }

  /** A local connection left a topic: its key goes after the grace period if it was the last. */
  leave(member: Member, topic: string): void {
    const keys = this.#keys.get(member);
    const key = keys?.get(topic);
    if (key === undefined) return;
    keys!.delete(topic);
    if (keys!.size === 0) this.#keys.delete(member);
    const tp = this.#topics.get(topic);
    if (!tp) return;
    tp.connections--;
    tp.waiting = tp.waiting.filter((waiting) => waiting.member !== member);
    this.#release(tp, key);
  }

  /** The snapshot of a topic now, or `undefined` when this node does not serve it. */
  state(topic: string, maxMembers: number): PresenceState | undefined {
    const tp = this.#topics.get(topic);
    return tp?.loaded ? tp.state(maxMembers) : undefined;
  }

  /** Another node changed its entries of a topic. */
  receive(topic: string, node: string, delta: PresenceDelta): void {
    const tp = this.#topics.get(topic);
    if (!tp) return;
    if (tp.buffered) return void tp.buffered.push([node, delta]);
    tp.apply(node, delta);
    this.#schedule();
  }

  /** A node left or died: its entries go. */
  nodeGone(node: string): void {
    for (const tp of this.#topics.values()) {
      tp.buffered?.push([node, null]); // a load under way may have read it
      if (tp.others.has(node)) {
        tp.drop(node);
        this.#schedule();
      }
    }
  }

  /**
   * The engine lost and regained the other nodes: share this node's entries
   * again in full and reload the others'.
   */
  resync(): void {
    for (const tp of this.#topics.values()) {
      for (const [key, { entry }] of tp.mine) tp.unshared[key] = entry;
      this.#load(tp);
    }
    this.#schedule();
  }

  /** Shares and tells what is pending, then stops every timer. */
  close(): void {
    this.#closed = true;
    for (const tp of this.#topics.values()) {
      for (const [key, timer] of tp.graces) {
        clearTimeout(timer);
        this.#drop(tp, key);
      }
      tp.graces.clear();
    }
    this.#flush();
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #topic(topic: string, maxMembers: number): TopicPresence {
    let tp = this.#topics.get(topic);
    if (tp) return tp;
    tp = new TopicPresence(topic, maxMembers);
    this.#topics.set(topic, tp);
    this.#options.engine.watch(topic);
    this.#load(tp);
    return tp;
  }

  /**
   * Loads the other nodes' entries of a topic in place of those it has; the
   * changes that arrive meanwhile apply after it, so a stale load never
   * undoes them. A failed load is tried again at the next flush.
   */
  #load(tp: TopicPresence): void {
    const load = ++tp.loads;
    tp.buffered ??= [];
    this.#options.engine.load(tp.topic).then((loaded) => {
      if (load !== tp.loads) return; // a later load decides
      tp.reload(loaded);
      tp.stale = false;
      this.#loaded(tp);
    }, (error) => {
      if (load !== tp.loads) return;
      const fields = { topic: tp.topic, error };
      if (!tp.stale) this.#options.logger.warn("presence load failed", fields);
      tp.stale = true;
      this.#loaded(tp); // what it has, until the next try
    });
  }

  /** A load ended: buffered changes apply, and waiting connections get their snapshot. */
  #loaded(tp: TopicPresence): void {
    for (const [node, delta] of tp.buffered ?? []) {
      if (delta) tp.apply(node, delta);
      else tp.drop(node);
    }
    tp.buffered = undefined;
    tp.loaded = true;
    for (const { member, maxMembers } of tp.waiting) {
      const state = encodePush(PRESENCE_STATE, tp.state(maxMembers));
      sendOfTopic(member, state, tp.topic);
    }
    tp.waiting = [];
    this.#schedule();
  }

  #release(tp: TopicPresence, key: string): void {
    const held = tp.mine.get(key);
    if (!held) return;
    if (--held.refs > 0) return;
    if (this.#closed || this.#options.grace === 0) return this.#drop(tp, key);
    tp.graces.set(
      key,
      setTimeout(() => {
        tp.graces.delete(key);
        this.#drop(tp, key);
      }, this.#options.grace),
    );
  }

  /** This node stops holding a key. */
  #drop(tp: TopicPresence, key: string): void {
    const held = tp.mine.get(key);
    if (!held || held.refs > 0) return;
    tp.touch(key);
    tp.mine.delete(key);
    tp.hold(key, -1);
    tp.unshared[key] = null;
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setInterval(() => this.#flush(), this.#options.interval);
  }

  #flush(): void {
    const { engine, deliver, logger } = this.#options;
    let busy = false;
    for (const [topic, tp] of this.#topics) {
      if (Object.keys(tp.unshared).length > 0) {
        engine.share(topic, tp.unshared).catch((error) =>
          logger.warn("presence share failed", { topic, error })
        );
        tp.unshared = record();
        busy = true;
      }
      if (tp.loaded) {
        const diff = tp.diff(tp.maxMembers);
        if (diff) {
          deliver(topic, encodePush(PRESENCE_DIFF, diff));
          busy = true;
        }
      }
      if (tp.stale) {
        if (!tp.buffered) this.#load(tp);
        busy = true;
      }
      // Nothing of this node's left in the topic: stop serving it.
      if (tp.connections === 0 && tp.mine.size === 0) {
        engine.unwatch(topic);
        this.#topics.delete(topic);
      }
    }
    if (!busy) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
