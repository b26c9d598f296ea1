/**
 * Delta delivery for one node's topics with `delta: "fossil"`: each publish
 * is sent as a `topic.delta` (docs/PROTOCOL.md §10) to the members that
 * asked for deltas and got the topic's previous publish live from this
 * node, and in full to everyone else (a new member, one just recovered,
 * one that did not ask). The delta is made once per publish, and only when
 * some member will get it.
 *
 * @module
 */

import { asciiJson, deltaPush, type StreamPosition } from "@duplex-ws/protocol";
import type { Member, Outgoing } from "./hub.ts";

/** The previous publish of a topic, as deltas are made from it. */
interface Base extends StreamPosition {
  /** Its text's ASCII form. */
  ascii: string;
}

/** One delta topic on this node. */
interface DeltaTopic {
  /** The members that asked for deltas. */
  readonly wanting: Set<Member>;
  /** The previous publish delivered here. */
  base?: Base;
  /** The members it was sent to (live). */
  sent: Set<Member>;
}

/** The delta topics of one node and the members that take deltas in them. */
export class DeltaTopics {
  readonly #topics = new Map<string, DeltaTopic>();

  /** A member joined a delta topic: it takes deltas if the join asked. */
  follow(member: Member, topic: string, join: { delta?: string }): void {
    if (join.delta) this.#want(member, topic);
    else this.forget(member, topic);
  }

  #want(member: Member, topic: string): void {
    let state = this.#topics.get(topic);
    if (!state) {
      state = { wanting: new Set(), sent: new Set() };
      this.#topics.set(topic, state);
    }
    state.wanting.add(member);
  }

  /** A member left the topic (or rejoined without asking for deltas). */
  forget(member: Member, topic: string): void {
    const state = this.#topics.get(topic);
    if (!state) return;
    state.wanting.delete(member);
    state.sent.delete(member);
    if (state.wanting.size === 0) this.#topics.delete(topic);
  }

  /** Whether a member takes deltas in a topic (for tests and metrics). */
  wants(member: Member, topic: string): boolean {
    return this.#topics.get(topic)?.wanting.has(member) ?? false;
  }

  /**
   * What the live delivery of a numbered publish sends: its text when no
   * member takes deltas, else a choice per member. Publishes must come in
   * offset order (as `StreamTracker` delivers them).
   */
  outgoing(
    topic: string,
    text: string,
    position: StreamPosition,
  ): Outgoing {
    const state = this.#topics.get(topic);
    if (!state) return text;
    const ascii = asciiJson(text);
    const { base, sent: before } = state;
    const next = { offset: position.offset, epoch: position.epoch, ascii };
    const sent = new Set<Member>();
    [state.base, state.sent] = [next, sent];
    const follows = base !== undefined && base.epoch === position.epoch &&
      base.offset === position.offset - 1;
    let delta: string | null | undefined = null; // not made yet
    return (member) => {
      if (!state.wanting.has(member)) return text;
      sent.add(member);
      if (!follows || !before.has(member)) return text;
      if (delta === null) delta = deltaPush(topic, base.ascii, ascii, next);
      return delta ?? text;
    };
  }
}
