/**
 * The server's open sessions: the registry `connections` shows, and what
 * acts on all of them at once (drain on shutdown, re-authentication).
 *
 * @module
 */

import type { PushMap } from "./context.ts";
import type { Session } from "./session.ts";

/** The sessions of one server that have not finished, by id. */
export class Sessions<State, Push extends PushMap> {
  readonly #open = new Map<string, Session<State, Push>>();

  /** Them all, as their handlers see them. */
  get map(): ReadonlyMap<string, Session<State, Push>> {
    return this.#open;
  }

  /** How many are open. */
  get size(): number {
    return this.#open.size;
  }

  /** A session started. */
  add(session: Session<State, Push>): void {
    this.#open.set(session.id, session);
  }

  /** A session finished. */
  delete(id: string): void {
    this.#open.delete(id);
  }

  /**
   * Closes every session with 1001, waits for their close handshakes up to
   * `timeout` milliseconds, ends the rest, and resolves once every close
   * hook has run.
   */
  async drain(timeout: number): Promise<void> {
    const open = [...this.#open.values()];
    for (const session of open) session.closeFor("SHUTDOWN");
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeout);
    });
    await Promise.race([
      Promise.all(open.map((session) => session.finished)),
      deadline,
    ]);
    clearTimeout(timer);
    for (const session of open) session.terminate("drain timeout");
    await Promise.all(open.map((session) => session.finished));
  }

  /**
   * Asks the sessions of `subject` (or all) for a fresh token.
   * @returns How many were asked.
   */
  reauthenticate(subject?: string): number {
    let asked = 0;
    for (const session of this.#open.values()) {
      const identity = session.identity;
      if (identity === undefined) continue;
      if (subject !== undefined && identity.subject !== subject) continue;
      if (session.reauthenticate()) asked++;
    }
    return asked;
  }
}
