/**
 * One connection's identity over time: when it expires (or the app asks for
 * re-authentication) the client is asked for a fresh token and given
 * `refreshGrace` to send it; a verified one is swapped in without a
 * reconnect; none in time, and the connection is closed. Timers only: the
 * connection does the sending and closing.
 *
 * @module
 */

import type { AuthRefreshRequest } from "@duplex-ws/protocol";
import type { Identity } from "./identity.ts";

/** What a session asks of its connection. */
export interface AuthSessionHooks {
  /** Push `auth.refresh` to the client. */
  ask(request: AuthRefreshRequest): void;
  /** No fresh token came in time: close (4001). */
  expire(): void;
}

/** The longest delay `setTimeout` takes (about 24.8 days). */
const MAX_DELAY = 2 ** 31 - 1;

/** A connection's identity, its expiry and the refresh it waits for. */
export class AuthSession<State> {
  #identity: Identity<State>;
  readonly #grace: number;
  readonly #hooks: AuthSessionHooks;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #deadline: number | undefined;
  #requestedAt: number | undefined;

  /**
   * Starts watching `identity`'s expiry.
   * @param grace Milliseconds the client has to refresh once asked.
   */
  constructor(
    identity: Identity<State>,
    grace: number,
    hooks: AuthSessionHooks,
  ) {
    this.#identity = identity;
    this.#grace = grace;
    this.#hooks = hooks;
    this.#schedule();
  }

  /** The current identity. */
  get identity(): Identity<State> {
    return this.#identity;
  }

  /** When the connection will be closed unless it refreshes, if it was asked to. */
  get deadline(): number | undefined {
    return this.#deadline;
  }

  /**
   * When the app last asked for re-authentication, until an identity issued
   * since replaces the current one.
   */
  get requestedAt(): number | undefined {
    return this.#requestedAt;
  }

  /** The app asks for re-authentication now. */
  request(): void {
    this.#requestedAt = Date.now();
    if (this.#deadline === undefined) this.#ask("requested");
  }

  /** A verified identity (same subject) replaces the current one. */
  replace(identity: Identity<State>): void {
    this.stop();
    this.#requestedAt = undefined;
    this.#identity = identity;
    this.#schedule();
  }

  /** Stops every timer (the connection finished). */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#deadline = undefined;
  }

  #schedule(): void {
    const { expiresAt } = this.#identity;
    if (expiresAt === undefined) return;
    const wait = expiresAt - Date.now();
    if (wait <= 0) return this.#ask("expired");
    this.#timer = setTimeout(
      () => this.#wait(expiresAt),
      Math.min(wait, MAX_DELAY),
    );
  }

  /** The timer fired: expired now, or still far off (a long-lived token). */
  #wait(expiresAt: number): void {
    if (Date.now() >= expiresAt) this.#ask("expired");
    else this.#schedule();
  }

  #ask(reason: AuthRefreshRequest["reason"]): void {
    clearTimeout(this.#timer);
    const deadline = Date.now() + this.#grace;
    this.#deadline = deadline;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#hooks.expire();
    }, this.#grace);
    this.#hooks.ask({ reason, deadline });
  }
}
