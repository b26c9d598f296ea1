/**
 * Who a connection is, for how long, and what it may do: the `auth` option
 * of `createServer`. The app (or `jwtAuth` from `@duplex-ws/jwt`)
 * turns a handshake's credentials into an {@linkcode Identity}; the server
 * asks for a fresh one when it expires or when the app says so, swaps it in
 * without reconnecting, and runs every join and publish through
 * `authorize`.
 *
 * @module
 */

import type { AuthFailureReason } from "@duplex-ws/protocol";

/** Who a connection is: a subject, the app's state for it, until when. */
export interface Identity<State> {
  /**
   * Who it is (a token's `sub`): per-subject limits count by it, a refresh
   * must keep it, logs show it.
   */
  subject: string;
  /** The connection's state (`ctx.state`), made from the verified claims. */
  state: State;
  /**
   * When it expires, in milliseconds since the epoch; the server then asks
   * the client for a fresh token (`auth.refresh`) and closes with 4001 after
   * `refreshGrace`. Absent: it never expires.
   */
  expiresAt?: number;
  /**
   * When it was issued, in milliseconds since the epoch (a token's `iat`):
   * after `server.reauthenticate`, a refresh must bring an identity issued
   * since, so an old token cannot answer it.
   */
  issuedAt?: number;
  /** A connection without credentials: per-subject limits do not apply. */
  guest?: boolean;
}

/** What `authenticate` may return: the connection's state, or a refusal. */
export type AuthResult<State> = State | Response;

/**
 * Reads a handshake request (cookies, bearer token, query) and returns the
 * connection's state, or a `Response` (401, 403…) to refuse it.
 */
export type Authenticate<State> = (
  request: Request,
  info: Deno.ServeHandlerInfo | undefined,
) => AuthResult<State> | Promise<AuthResult<State>>;

/** What a connection wants to do with a topic. */
export type TopicAction = "join" | "publish";

/** A value, or a promise of it. */
export type Awaitable<T> = T | Promise<T>;

/** The `auth` option of `createServer`: identity from the handshake to the close. */
export interface AuthOptions<State> {
  /**
   * Reads and verifies the handshake's credentials: the connection's
   * identity (a guest's, when there are none and guests are allowed), an
   * {@linkcode AuthFailure} (answered 401 with a JSON body, counted by
   * reason), or any `Response` to refuse otherwise.
   */
  authenticate(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Awaitable<Identity<State> | AuthFailure | Response>;
  /**
   * Verifies a token a live connection sent in `auth.refresh`, as the
   * handshake's would be. The server refuses one for another subject. Omit
   * it and refreshes are refused: expiring connections are then closed at
   * the end of the grace period.
   */
  refresh?(
    token: string,
    current: Identity<State>,
  ): Awaitable<Identity<State> | AuthFailure>;
  /**
   * Whether a connection may join or publish to a topic. Refused joins and
   * publishes answer `FORBIDDEN` naming the topic; after a refresh the
   * connection leaves the topics it may no longer join (`topic.left`).
   * @default {every topic is allowed}
   */
  authorize?(
    identity: Identity<State>,
    topic: string,
    action: TopicAction,
  ): Awaitable<boolean>;
}

/** A token that was refused, and why; never carries the token itself. */
export class AuthFailure extends Error {
  /** Why, from a fixed list (a metric label and the 401 body's `reason`). */
  readonly reason: AuthFailureReason;

  /**
   * Makes the failure.
   * @param reason Why.
   * @param message A sentence for the client (never the token).
   */
  constructor(reason: AuthFailureReason, message: string) {
    super(message);
    this.name = "AuthFailure";
    this.reason = reason;
  }
}

/**
 * Credentials could not be checked now (say, the JWKS endpoint is down):
 * the handshake gets 503 with `Retry-After`, not a 401.
 */
export class AuthUnavailableError extends Error {
  /**
   * Creates the error.
   * @param message What is unavailable.
   */
  constructor(message: string) {
    super(message);
    this.name = "AuthUnavailableError";
  }
}

/** The 401 for a refused token: a JSON error body, `WWW-Authenticate`, `Connection: close`. */
export function unauthorizedResponse(failure: AuthFailure): Response {
  return Response.json(
    {
      error: {
        code: "UNAUTHORIZED",
        reason: failure.reason,
        message: failure.message,
      },
    },
    {
      status: 401,
      headers: {
        "www-authenticate": `Bearer error="invalid_token"`,
        connection: "close",
      },
    },
  );
}

/**
 * Whether `topic` matches one of `patterns`: an exact name, or a prefix
 * ending in `*` (`"team:*"`).
 *
 * @example
 * ```ts
 * import { matchesTopic } from "./identity.ts";
 * console.assert(matchesTopic(["team:*", "lobby"], "team:red"));
 * console.assert(!matchesTopic(["team:*"], "teams"));
 * ```
 */
export function matchesTopic(
  patterns: readonly string[],
  topic: string,
): boolean {
  return patterns.some((pattern) =>
    pattern.endsWith("*")
      ? topic.startsWith(pattern.slice(0, -1))
      : pattern === topic
  );
}

/**
 * An `authorize` rule in one line: the topics (names or `prefix*`
 * patterns) an identity lists, say from a claim, for every action.
 *
 * @example
 * ```ts
 * import { allowTopics } from "./identity.ts";
 * const authorize = allowTopics<{ rooms: string[] }>((id) => id.state.rooms);
 * const ada = { subject: "ada", state: { rooms: ["team:*"] } };
 * console.assert(authorize(ada, "team:red") && !authorize(ada, "ops"));
 * ```
 */
export function allowTopics<State>(
  topicsOf: (identity: Identity<State>) => readonly string[] | undefined,
): (identity: Identity<State>, topic: string) => boolean {
  return (identity, topic) => matchesTopic(topicsOf(identity) ?? [], topic);
}
