/**
 * The local hub: which of this process's connections are in which topic,
 * and delivery of one already-encoded message to every local member.
 *
 * @module
 */

const NO_TOPICS: ReadonlySet<string> = new Set();

/** What the hub needs of a connection. */
export interface Member {
  /** A unique id. */
  readonly id: string;
  /** Sends a text frame; `false` when the connection is not open. */
  send(text: string): boolean;
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
  #members = new Map<string, Set<Member>>();
  #topics = new Map<Member, Set<string>>();

  /**
   * Adds a member to a topic.
   * @returns `true` when it was not a member before.
   */
  join(member: Member, topic: string): boolean {
    let members = this.#members.get(topic);
    if (members === undefined) {
      members = new Set();
      this.#members.set(topic, members);
    }
    if (members.has(member)) return false;
    members.add(member);
    let topics = this.#topics.get(member);
    if (topics === undefined) {
      topics = new Set();
      this.#topics.set(member, topics);
    }
    topics.add(topic);
    return true;
  }

  /**
   * Removes a member from a topic; empty topics are forgotten.
   * @returns `true` when it was a member.
   */
  leave(member: Member, topic: string): boolean {
    const members = this.#members.get(topic);
    if (members === undefined || !members.delete(member)) return false;
    if (members.size === 0) this.#members.delete(topic);
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

  /** How many local members a topic has. */
  count(topic: string): number {
    return this.#members.get(topic)?.size ?? 0;
  }

  /** The topics with at least one local member. */
  topics(): IterableIterator<string> {
    return this.#members.keys();
  }

  /**
   * Sends one encoded message to every local member of a topic, except the
   * member with id `exclude`.
   * @returns How many members it was sent to.
   */
  deliver(topic: string, text: string, exclude?: string): number {
    const members = this.#members.get(topic);
    if (members === undefined) return 0;
    let sent = 0;
    for (const member of members) {
      if (member.id !== exclude && member.send(text)) sent++;
    }
    return sent;
  }
}
