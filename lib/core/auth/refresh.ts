/**
 * Identity decisions on a live connection: whether it may join or publish
 * to a topic now (`auth.authorize`), and a refresh: verify the token sent in
 * `auth.refresh`, keep the subject, swap the identity in, and leave the
 * topics the new identity may no longer join (`topic.left`). The session
 * asks; the timers are `AuthSession`'s.
 *
 * @module
 */

import {
  type AuthRefreshReply,
  encodePush,
  ErrorCode,
  type LibraryCloseKind,
  ReadyState,
  TOPIC_LEFT,
} from "@duplex-ws/protocol";
import { EventError } from "../event_error.ts";
import type { Logger } from "../logger.ts";
import type { Metrics } from "../metrics.ts";
import {
  AuthFailure,
  type AuthOptions,
  AuthUnavailableError,
  type Identity,
  type TopicAction,
} from "./identity.ts";
import type { AuthSession } from "./session.ts";

/**
 * Runs `authorize` for a topic: `then` at once when it answers
 * synchronously (or there is no rule), after it when it is async; a no is
 * `FORBIDDEN` naming the topic. When a refresh swaps the identity while an
 * async verdict is pending, the rule is asked again for the new one: a
 * verdict never outlives the identity it was given.
 */
export function authorized<State, T>(
  authorize: AuthOptions<State>["authorize"],
  identity: () => Identity<State> | undefined,
  topic: string,
  action: TopicAction,
  then: () => Promise<T>,
): Promise<T> {
  const asked = identity();
  if (!authorize || !asked) return then();
  const verdict = authorize(asked, topic, action);
  if (verdict === true) return then();
  if (verdict === false) return forbidden(action, topic);
  return verdict.then((ok) => {
    if (!ok) return forbidden(action, topic);
    if (identity() === asked) return then();
    return authorized(authorize, identity, topic, action, then);
  });
}

function forbidden(action: TopicAction, topic: string): Promise<never> {
  return Promise.reject(
    new EventError(ErrorCode.FORBIDDEN, `Not allowed to ${action} "${topic}"`),
  );
}

/** What a refresh needs of the connection it runs on. */
export interface Refreshable {
  /** The connection's id, for logs. */
  readonly id: string;
  /** Whether it is still open. */
  readonly readyState: ReadyState;
  /** The topics it is in. */
  readonly topics: ReadonlySet<string>;
  /** Leaves a topic; `false` when not a member. */
  leaveTopic(topic: string): boolean;
  /** Sends a text frame. */
  send(text: string): boolean;
  /** Closes with one of the library's closes. */
  closeFor(kind: LibraryCloseKind): void;
}

/** What a refresh needs of the server. */
export interface RefreshShared<State> {
  /** The `auth` option. */
  readonly auth?: AuthOptions<State>;
  /** Counts refreshes by result. */
  readonly metrics: Metrics;
  /** Where to log a refresh for another subject. */
  readonly logger: Logger;
}

/** Asks `auth.refresh`, mapping its failures to the errors the client gets. */
async function verify<State>(
  auth: AuthOptions<State>,
  token: string,
  current: Identity<State>,
): Promise<Identity<State> | AuthFailure> {
  try {
    return await auth.refresh!(token, current);
  } catch (error) {
    if (error instanceof AuthFailure) return error;
    if (error instanceof AuthUnavailableError) {
      throw new EventError(
        ErrorCode.UNAUTHORIZED,
        "Credentials cannot be checked now: try again",
      );
    }
    throw error;
  }
}

/**
 * Verifies a token sent in `auth.refresh` and, for the same subject, swaps
 * the identity in; the topics it may no longer join are left (`topic.left`).
 * Rejects with `UNAUTHORIZED` (the token is refused; the deadline stands) or
 * `FORBIDDEN` (another subject: the connection is then closed with 4503).
 */
export async function refreshIdentity<State>(
  connection: Refreshable,
  session: AuthSession<State> | undefined,
  shared: RefreshShared<State>,
  token: string,
): Promise<AuthRefreshReply> {
  const { auth, metrics, logger } = shared;
  if (!auth?.refresh || !session) {
    throw new EventError(
      ErrorCode.UNAUTHORIZED,
      "This server does not take refreshed tokens",
    );
  }
  const result = await verify(auth, token, session.identity);
  if (result instanceof AuthFailure) {
    metrics.refreshed(`token_${result.reason}`);
    throw new EventError(ErrorCode.UNAUTHORIZED, result.message);
  }
  if (result.subject !== session.identity.subject || result.guest) {
    metrics.refreshed("subject_changed");
    logger.warn("refresh for another subject", {
      conn: connection.id,
      subject: session.identity.subject,
    });
    // After the error reply has gone out.
    setTimeout(() => connection.closeFor("FORBIDDEN"), 0);
    throw new EventError(
      ErrorCode.FORBIDDEN,
      "The token is for another subject",
    );
  }
  const asked = session.requestedAt;
  // After reauthenticate, the token must be newer than the request (`iat`
  // in whole seconds): the old one, still unexpired, does not answer it.
  if (
    asked !== undefined &&
    !(result.issuedAt !== undefined &&
      result.issuedAt >= asked - (asked % 1000))
  ) {
    metrics.refreshed("token_stale");
    throw new EventError(
      ErrorCode.UNAUTHORIZED,
      "A token issued since re-authentication was asked for is needed",
    );
  }
  if (connection.readyState !== ReadyState.OPEN) return {};
  session.replace(result);
  metrics.refreshed("ok");
  await reauthorize(connection, auth, result);
  return result.expiresAt === undefined ? {} : { expiresAt: result.expiresAt };
}

/** Leaves the topics a new identity may no longer join, and says why. */
async function reauthorize<State>(
  connection: Refreshable,
  auth: AuthOptions<State>,
  identity: Identity<State>,
): Promise<void> {
  if (!auth.authorize) return;
  for (const topic of [...connection.topics]) {
    if (await auth.authorize(identity, topic, "join")) continue;
    if (!connection.leaveTopic(topic)) continue;
    connection.send(encodePush(TOPIC_LEFT, {
      topic,
      code: ErrorCode.FORBIDDEN,
      message: `No longer allowed in "${topic}"`,
    }));
  }
}
