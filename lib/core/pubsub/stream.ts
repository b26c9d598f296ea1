/**
 * Delivery of numbered publishes on one node, for topics with history: in
 * offset order, each once, without a gap. Publishes can reach a node out of
 * order (its own come back from the engine while other nodes' arrive on the
 * channel) or not at all (a channel dropped while Redis was away): a later
 * one waits for the missing, which are read from history if they do not
 * come; when history no longer has them, the members are told
 * (`stream.reset`) and recover on their own, never a silent gap.
 *
 * A member joining with a position (or asking for the last N) is recovered
 * here: history after its position is read while the live publishes that
 * arrive meanwhile are kept aside, then it gets the history, then whatever
 * live came after it, deduplicated by offset, and only then live delivery.
 *
 * @module
 */

import {
  encodePush,
  STREAM_RESET,
  type StreamPosition,
} from "@duplex-ws/protocol";
import type { Logger } from "../logger.ts";
import type { HistoryRead } from "./history.ts";
import type { Member } from "./hub.ts";
import { isContinuous } from "./history_view.ts";
import { sendPaced } from "./paced.ts";

/** What a member asks of history when it joins. */
export interface RecoveryRequest {
  /** The last position it saw: it gets every publish after it, or `recovered: false`. */
  since?: StreamPosition;
  /** On a first join: the last this many publishes. */
  last?: number;
}

/** How a join of a topic with history went. */
export interface Recovery {
  /**
   * Where the member's live stream starts: every publish after it reaches
   * the member live, in order (the replay, if any, ended here).
   */
  position?: StreamPosition;
  /** With `since`: whether it got every publish it missed, in order. */
  recovered?: boolean;
  /** What was sent from history: publishes and their size (UTF-16 code units). */
  replayed?: { count: number; bytes: number };
}

/** Options of {@linkcode StreamTracker}. */
export interface StreamTrackerOptions {
  /** Reads a topic's history (see `HistoryRead`). */
  read(
    topic: string,
    since: number | undefined,
    limit: number,
  ): Promise<HistoryRead>;
  /**
   * Sends a text to every active local member of a topic: numbered
   * publishes (with their `position`) in offset order.
   */
  deliver(topic: string, text: string, position?: StreamPosition): void;
  /** Lets deliveries reach a member that was waiting. */
  activate(member: Member, topic: string): void;
  /** Publishes replayed at most to one joining member; past it `recovered: false`. */
  maxReplay: number;
  /** Milliseconds a later publish waits for a missing one before history is read. */
  gapWait: number;
  /** Where to log. */
  logger: Logger;
}

/** Later publishes held at most per topic while one is missing. */
const MAX_HELD = 10_000;

/** Publishes read at once per topic when catching up after an outage. */
const CATCH_UP_BATCH = 1_000;

type Kept = { offset: number; epoch: string; text: string };

class TopicStream {
  epoch: string | undefined;
  last = 0;
  readonly held = new Map<number, Kept>();
  readonly joining = new Map<Member, Kept[]>();
  filling: ReturnType<typeof setTimeout> | undefined;
}

/** Ordered, gap-free delivery of numbered publishes for one node's topics. */
export class StreamTracker {
  readonly #options: StreamTrackerOptions;
  readonly #topics = new Map<string, TopicStream>();

  /** @param options How to read history and deliver, the caps. */
  constructor(options: StreamTrackerOptions) {
    this.#options = options;
  }

  /** A numbered publish to deliver on this node (its own, or another node's). */
  receive(topic: string, offset: number, epoch: string, text: string): void {
    const ts = this.#topics.get(topic);
    if (!ts) return; // no local member: nothing to deliver
    const kept = { offset, epoch, text };
    if (ts.epoch === undefined) {
      // The first publish this node sees: the stream starts here.
      ts.epoch = epoch;
      return this.#deliver(topic, ts, kept);
    }
    if (epoch !== ts.epoch) this.#restart(topic, ts, epoch);
    if (offset <= ts.last) return; // delivered already
    if (offset === ts.last + 1) {
      this.#deliver(topic, ts, kept);
      return this.#release(topic, ts);
    }
    ts.held.set(offset, kept);
    if (ts.held.size >= MAX_HELD) return void this.#fill(topic, ts);
    ts.filling ??= setTimeout(
      () => this.#fill(topic, ts),
      this.#options.gapWait,
    );
  }

  /**
   * Recovers a joining member (already a waiting member of the topic): what
   * it asked of history, then the live publishes that came meanwhile, then
   * live delivery.
   */
  async recover(
    member: Member,
    topic: string,
    request: RecoveryRequest,
  ): Promise<Recovery> {
    const ts = this.#topic(topic);
    const aside: Kept[] = [];
    ts.joining.set(member, aside);
    try {
      const { since, last } = request;
      const { maxReplay } = this.#options;
      let read: HistoryRead | undefined;
      try {
        read = await this.#options.read(
          topic,
          since?.offset,
          since ? maxReplay + 1 : Math.min(last ?? 0, maxReplay),
        );
      } catch (error) {
        this.#options.logger.warn("history read failed", { topic, error });
      }
      if (read === undefined) {
        // No history now (an outage): no promise of continuity.
        this.#flush(member, topic, aside, undefined);
        return since ? { recovered: false } : {};
      }
      if (ts.epoch === undefined) {
        ts.epoch = read.epoch;
        ts.last = read.top;
      }
      const recovered = since === undefined
        ? undefined
        : isContinuous(since, read, maxReplay);
      const replay = since === undefined || recovered ? read.entries : [];
      const bytes = await sendPaced(member, replay.map((e) => e.text));
      const position = {
        offset: Math.max(read.top, replay.at(-1)?.offset ?? 0),
        epoch: read.epoch,
      };
      // History can be ahead of what this node has delivered live: the
      // member waits (aside) until the node catches up to its position, so
      // a publish it was replayed never reaches it live again.
      await this.#caughtUp(ts, position);
      this.#flush(member, topic, aside, position);
      const replayed = { count: replay.length, bytes };
      return recovered === undefined
        ? { position, replayed }
        : { position, recovered, replayed };
    } finally {
      ts.joining.delete(member);
      this.#options.activate(member, topic);
    }
  }

  /**
   * Catches up after the engine lost publishes (its subscriptions were
   * down): every followed topic's history after the last delivered offset
   * is delivered as if it had arrived, in order; a new epoch resets the
   * members, history that no longer reaches back tells them too.
   */
  async catchUp(): Promise<void> {
    await Promise.all(
      [...this.#topics.keys()].map((topic) => this.#catchUp(topic)),
    );
  }

  async #catchUp(topic: string): Promise<void> {
    for (let round = 0; round < MAX_HELD / CATCH_UP_BATCH; round++) {
      const ts = this.#topics.get(topic);
      if (!ts || ts.epoch === undefined) return;
      let read: HistoryRead;
      try {
        read = await this.#options.read(topic, ts.last, CATCH_UP_BATCH);
      } catch (error) {
        this.#options.logger.warn("history read failed", { topic, error });
        return;
      }
      if (this.#topics.get(topic) !== ts) return;
      if (read.epoch !== ts.epoch) {
        this.#restart(topic, ts, read.epoch);
        continue; // read the new stream from its start
      }
      if (read.top <= ts.last) return;
      if (read.entries[0]?.offset !== ts.last + 1) {
        // History no longer reaches back: say so, go on from its top.
        this.#reset(topic);
        ts.last = read.top;
        ts.held.clear();
        return;
      }
      for (const entry of read.entries) {
        this.receive(topic, entry.offset, read.epoch, entry.text);
      }
    }
  }

  /** Stops following a topic (no local member left). */
  drop(topic: string): void {
    const ts = this.#topics.get(topic);
    if (!ts || ts.joining.size > 0) return;
    clearTimeout(ts.filling);
    this.#topics.delete(topic);
  }

  /** Stops every timer. */
  close(): void {
    for (const ts of this.#topics.values()) clearTimeout(ts.filling);
    this.#topics.clear();
  }

  #topic(topic: string): TopicStream {
    let ts = this.#topics.get(topic);
    if (!ts) this.#topics.set(topic, ts = new TopicStream());
    return ts;
  }

  /** Resolves once the node has delivered up to `position` (or after 4 gap waits). */
  async #caughtUp(ts: TopicStream, position: StreamPosition): Promise<void> {
    const until = Date.now() + 4 * this.#options.gapWait;
    while (
      ts.epoch === position.epoch && ts.last < position.offset &&
      Date.now() < until
    ) await new Promise((done) => setTimeout(done, 10));
  }

  /** What came live while a member was recovered: after `from`, in order, each once. */
  #flush(
    member: Member,
    topic: string,
    aside: Kept[],
    from: StreamPosition | undefined,
  ): void {
    let position = from;
    for (const kept of aside) {
      if (position && kept.epoch === position.epoch) {
        if (kept.offset <= position.offset) continue;
        if (kept.offset !== position.offset + 1) {
          // Cannot happen with one engine: say so rather than hide it.
          member.send(encodePush(STREAM_RESET, { topic }));
        }
      }
      member.send(kept.text);
      position = { offset: kept.offset, epoch: kept.epoch };
    }
  }

  #deliver(topic: string, ts: TopicStream, kept: Kept): void {
    ts.last = kept.offset;
    this.#options.deliver(topic, kept.text, kept);
    for (const aside of ts.joining.values()) aside.push(kept);
  }

  /** Delivers held publishes that are next in line. */
  #release(topic: string, ts: TopicStream): void {
    for (
      let next = ts.held.get(ts.last + 1);
      next;
      next = ts.held.get(ts.last + 1)
    ) {
      ts.held.delete(next.offset);
      this.#deliver(topic, ts, next);
    }
    if (ts.held.size === 0) {
      clearTimeout(ts.filling);
      ts.filling = undefined;
    }
  }

  /** Reads the missing publishes from history; if it no longer has them, tells the members. */
  async #fill(topic: string, ts: TopicStream): Promise<void> {
    clearTimeout(ts.filling);
    ts.filling = undefined;
    if (ts.held.size === 0) return;
    const from = ts.last;
    const upTo = Math.min(...ts.held.keys()) - 1;
    try {
      const read = await this.#options.read(topic, from, upTo - from);
      const missing = read.entries.filter((e) =>
        e.offset > ts.last && e.offset <= upTo
      );
      const complete = read.epoch === ts.epoch &&
        missing.length === upTo - from &&
        missing[0]?.offset === from + 1;
      if (complete) {
        for (const entry of missing) {
          if (entry.offset === ts.last + 1) {
            this.#deliver(topic, ts, { ...entry, epoch: read.epoch });
          }
        }
      } else {
        this.#reset(topic);
        ts.last = upTo;
      }
    } catch (error) {
      this.#options.logger.warn("history read failed", { topic, error });
      this.#reset(topic);
      ts.last = upTo;
    }
    this.#release(topic, ts);
  }

  /**
   * Another stream (the engine lost the old one): the members are told,
   * then get the new stream from its start, filled from history if this
   * node missed its first publishes.
   */
  #restart(topic: string, ts: TopicStream, epoch: string): void {
    this.#reset(topic);
    clearTimeout(ts.filling);
    ts.filling = undefined;
    ts.epoch = epoch;
    ts.last = 0;
    ts.held.clear();
  }

  /** Tells the topic's members their stream has a gap: recover. */
  #reset(topic: string): void {
    this.#options.deliver(topic, encodePush(STREAM_RESET, { topic }));
  }
}
