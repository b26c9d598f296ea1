/**
 * The local hub: which of this process's connections are in which topic,
 * and delivery of one already-encoded message to every local member.
 *
 * @module
 */

import { nameTopic } from "@duplex-ws/protocol";

const NO_TOPICS: ReadonlySet<string> = new Set();

/**
 * What a delivery sends: one text for every member, or a choice per member
 * (a delta topic's members that can take a delta get it, the others the
 * full text). A choice of `undefined` sends nothing to that member.
 */
export type Outgoing = string | ((member: Member) => string | undefined);

/** What the hub needs of a connection. */
export interface Member {
  /** A unique id. */
  readonly id: string;
  /** Sends a text frame; `false` when the connection is not open. */
  send(text: string): boolean;
  /**
   * Bytes it can take now without nearing its slow-consumer cap. With
   * `drained`, a long replay is paced by it; without, never.
   */
  room?(): number;
  /** Resolves once it has room again; `false` when it is gone. */
  drained?(): Promise<boolean>;
  /** Every push of a topic names its topic (it asked for `push_topics`). */
  readonly namesTopics?: boolean;
}

/**
 * Topic membership for one process. Pure bookkeeping: no validation, no
 * limits, no I/O (see `PubSub` for those).
 *
 * @example
 * ```ts
 * import { Hub } from "./hub.ts";
 * const hub = new Hub();
 * const sent: string[] = [];
 * const member = { id: "a", send: (text: string) => sent.push(text) > 0 };
 * hub.join(member, "room");
 * hub.deliver("room", '{"event":"hi"}');
 * console.assert(sent.length === 1 && hub.count("room") === 1);
 * ```
 */
export class Hub {
  /** Topic → the members deliveries reach. */
  #members = new Map<string, Set<Member>>();
  /** Topic → members that joined but get nothing yet (a recovery under way). */
  #waiting = new Map<string, Set<Member>>();
  #topics = new Map<Member, Set<string>>();
  #queued = new Map<string, Delivery[]>();

  /**
   * Adds a member to a topic. A `waiting` member is a member (its
   * `topicsOf` has the topic, `count` counts it) that deliveries skip until
   * {@linkcode activate}: a recovery sends it what it missed first.
   * @returns `true` when it was not a member before.
   */
  join(member: Member, topic: string, waiting = false): boolean {
    let topics = this.#topics.get(member);
    if (topics?.has(topic)) return false;
    if (topics === undefined) {
      topics = new Set();
      this.#topics.set(member, topics);
    }
    topics.add(topic);
    add(waiting ? this.#waiting : this.#members, topic, member);
    return true;
  }

  /** Lets deliveries reach a waiting member. */
  activate(member: Member, topic: string): void {
    if (remove(this.#waiting, topic, member)) add(this.#members, topic, member);
  }

  /** Makes a member wait again (deliveries skip it until {@linkcode activate}). */
  deactivate(member: Member, topic: string): void {
    if (remove(this.#members, topic, member)) add(this.#waiting, topic, member);
  }

  /**
   * Removes a member from a topic; empty topics are forgotten.
   * @returns `true` when it was a member.
   */
  leave(member: Member, topic: string): boolean {
    if (
      !remove(this.#members, topic, member) &&
      !remove(this.#waiting, topic, member)
    ) {
      return false;
    }
    const topics = this.#topics.get(member);
    topics?.delete(topic);
    if (topics?.size === 0) this.#topics.delete(member);
    return true;
  }

  /**
   * Removes a member from every topic.
   * @returns The topics it left.
   */
  leaveAll(member: Member): string[] {
    const topics = [...(this.#topics.get(member) ?? [])];
    for (const topic of topics) this.leave(member, topic);
    return topics;
  }

  /** The topics a member is in. */
  topicsOf(member: Member): ReadonlySet<string> {
    return this.#topics.get(member) ?? NO_TOPICS;
  }

  /** How many local members a topic has (waiting ones included). */
  count(topic: string): number {
    return (this.#members.get(topic)?.size ?? 0) +
      (this.#waiting.get(topic)?.size ?? 0);
  }

  /** Every topic with local members, with its count. */
  counts(): [string, number][] {
    const topics = new Set([...this.#members.keys(), ...this.#waiting.keys()]);
    return [...topics].map((topic) => [topic, this.count(topic)]);
  }

  /**
   * Sends one encoded message to every local member of a topic, except the
   * member with id `exclude`. A topic of up to {@linkcode DELIVERY_CHUNK}
   * members is served at once; a larger one in chunks of that many, one
   * chunk per task, so that other connections' messages are answered in
   * between (one publish to a big room never holds the event loop for
   * long). Deliveries to one topic keep their order: while one is under
   * way, the next waits behind it.
   * @returns How many members it was (or is being) sent to.
   */
  deliver(topic: string, text: Outgoing, exclude?: string): number {
    const members = this.#members.get(topic);
    if (members === undefined) return 0;
    const queue = this.#queued.get(topic);
    if (queue === undefined && members.size <= DELIVERY_CHUNK) {
      let sent = 0;
      for (const member of members) {
        if (member.id !== exclude && send(member, text, topic)) sent++;
      }
      return sent;
    }
    const delivery = { members: [...members], text, topic, exclude, next: 0 };
    if (queue) queue.push(delivery);
    else {
      this.#queued.set(topic, [delivery]);
      this.#drain(topic);
    }
    return delivery.members.length;
  }

  /** Deliveries under way or waiting, by topic (for tests and metrics). */
  get queued(): number {
    let count = 0;
    for (const queue of this.#queued.values()) count += queue.length;
    return count;
  }

  #drain(topic: string): void {
    const queue = this.#queued.get(topic)!;
    let budget = DELIVERY_CHUNK;
    while (queue.length > 0 && budget > 0) {
      const delivery = queue[0];
      const end = Math.min(delivery.members.length, delivery.next + budget);
      budget -= end - delivery.next;
      for (; delivery.next < end; delivery.next++) {
        const member = delivery.members[delivery.next];
        if (member.id !== delivery.exclude) {
          send(member, delivery.text, delivery.topic);
        }
      }
      if (delivery.next === delivery.members.length) queue.shift();
    }
    if (queue.length === 0) this.#queued.delete(topic);
    else setTimeout(() => this.#drain(topic), 0);
  }
}

/**
 * Members one delivery reaches in one task: a larger room is served in
 * chunks of this many (about 2–3 ms each at Deno's ~10 µs a send).
 */
export const DELIVERY_CHUNK = 256;

/** A delivery to a big topic, under way: who, what, how far. */
interface Delivery {
  members: Member[];
  text: Outgoing;
  topic: string;
  exclude: string | undefined;
  next: number;
}

function send(member: Member, outgoing: Outgoing, topic: string): boolean {
  const text = typeof outgoing === "string" ? outgoing : outgoing(member);
  return text !== undefined && sendOfTopic(member, text, topic);
}

/** Sends a push of `topic`, naming the topic to a member that asked for it. */
export function sendOfTopic(
  member: Member,
  text: string,
  topic: string,
): boolean {
  return member.send(member.namesTopics ? nameTopic(text, topic) : text);
}

function add<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  let set = map.get(key);
  if (set === undefined) map.set(key, set = new Set());
  set.add(value);
}

function remove<K, V>(map: Map<K, Set<V>>, key: K, value: V): boolean {
  const set = map.get(key);
  if (set === undefined || !set.delete(value)) return false;
  if (set.size === 0) map.delete(key);
  return true;
}
