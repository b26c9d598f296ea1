/**
 * A session's topics, with what they cost and who may: a join, a leave or a
 * publish is authorized (`auth.authorize`), charged to the connection's
 * budgets (topic changes, replays, fan-out) and then handed to the node's
 * pub/sub. A refused charge is an `EventError` the handler lets through
 * (`RATE_LIMITED`); a charge that says close is acted on by the session.
 *
 * @module
 */

import { ReadyState, TOPIC_EXIT } from "@duplex-ws/protocol";
import type { AuthOptions, Identity } from "./auth/identity.ts";
import { authorized } from "./auth/refresh.ts";
import type { PublishOptions } from "./context.ts";
import type { ConnectionLimiter, Verdict } from "./limits.ts";
import type { Member } from "./pubsub/hub.ts";
import type {
  JoinOptions,
  JoinResult,
  PublishResult,
  PubSub,
} from "./pubsub/pubsub.ts";

/** What joining, leaving and publishing need of a session. */
export interface TopicSession extends Member {
  /** Whether it is open. */
  readonly readyState: ReadyState;
  /** The topics it is in. */
  readonly topics: ReadonlySet<string>;
  /** Its limiter (made on first use). */
  limiter(): ConnectionLimiter;
  /** Throws a refusal as an `EventError`; acts on a close. */
  charge(verdict: Verdict): void;
}

/** What they need of the server. */
export interface TopicAccess<State> {
  /** The node's pub/sub. */
  readonly pubsub: PubSub;
  /** The `auth` option's rule, if any. */
  readonly authorize: AuthOptions<State>["authorize"];
  /** The session's identity now, if it has one (it changes with a refresh). */
  identity(): Identity<State> | undefined;
}

/** Joins a topic (see `Context.join`). */
export function joinTopic<State>(
  session: TopicSession,
  access: TopicAccess<State>,
  topic: string,
  options: JoinOptions,
): Promise<JoinResult> {
  if (session.readyState !== ReadyState.OPEN) {
    return Promise.resolve({ topic, joined: false });
  }
  const join = () => charged(session, access.pubsub, topic, options);
  // A member joining again without recovery asks nothing new.
  if (session.topics.has(topic) && !options.since && !options.last) {
    return join();
  }
  const { authorize, identity } = access;
  return authorized(authorize, identity, topic, "join", join);
}

function charged(
  session: TopicSession,
  pubsub: PubSub,
  topic: string,
  options: JoinOptions,
): Promise<JoinResult> {
  if (session.readyState !== ReadyState.OPEN) {
    return Promise.resolve({ topic, joined: false });
  }
  try {
    // A join changes presence; so does new presence metadata on a rejoin.
    const changes = !pubsub.topicsOf(session).has(topic) || options.presence;
    if (changes) session.charge(session.limiter().topicChange());
    // In a topic with presence, every member hears of it: a fan-out.
    if (changes && pubsub.hasPresence(topic)) {
      const { key = session.id, meta = null } = options.presence ?? {};
      const bytes = String(key).length + jsonLength(meta);
      const members = pubsub.memberCount(topic);
      session.charge(session.limiter().publish(members, bytes + 32));
    }
    // A replay sends what a publish to this member would: it is charged to
    // the fan-out budget, and refused while that is spent.
    const replays = options.since !== undefined || options.last !== undefined;
    if (replays) session.charge(session.limiter().replay());
    const joining = pubsub.join(session, topic, options);
    if (!replays) return joining;
    return joining.then((result) => {
      const { count = 0, bytes = 0 } = result.replayed ?? {};
      session.limiter().replayed(count, bytes);
      return result;
    });
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * Leaves a topic, charged as a topic change; `false` when not a member. A
 * connection that names topics is told (`topic.exit`).
 */
export function leaveTopic(
  session: TopicSession,
  pubsub: PubSub,
  topic: string,
): boolean {
  if (!pubsub.topicsOf(session).has(topic)) return false;
  session.charge(session.limiter().topicChange());
  const left = pubsub.leave(session, topic);
  if (left && session.namesTopics) {
    session.send(JSON.stringify({ event: TOPIC_EXIT, topic, data: { topic } }));
  }
  return left;
}

/**
 * Publishes to a topic on every node, charged to the session's fan-out
 * budget (members reached × bytes).
 */
export function publishTo<State>(
  session: TopicSession,
  access: TopicAccess<State>,
  topic: string,
  event: string,
  data: unknown,
  options: PublishOptions,
): Promise<PublishResult> {
  const { pubsub, authorize, identity } = access;
  return authorized(
    authorize,
    identity,
    topic,
    "publish",
    () =>
      pubsub.publish(topic, event, data, {
        exclude: options.excludeSelf ? session.id : undefined,
        key: options.key,
        keyScope: scopeOf(session, access.identity()),
        ifPosition: options.ifPosition,
        transaction: options.transaction,
        charge: (members, bytes) =>
          session.charge(session.limiter().publish(members, bytes)),
      }),
  );
}

/** Whose publish keys a session's are: its subject's, a guest's its own. */
function scopeOf(
  session: TopicSession,
  identity: Identity<unknown> | undefined,
) {
  return identity && !identity.guest ? identity.subject : session.id;
}

/** The length of a value's JSON; 0 when it has none (the join then refuses it). */
function jsonLength(value: unknown): number {
  try {
    return JSON.stringify(value)?.length ?? 0;
  } catch {
    return 0;
  }
}
