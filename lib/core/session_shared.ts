/**
 * What every session of one server shares (made once per server, so an
 * idle connection costs only its own fields), what the handshake decided
 * about one session, and how a close the limiter decided is logged.
 *
 * @module
 */

import type { ReplyStreams } from "./reply_streams.ts";
import type { CloseInfo, LibraryCloseKind } from "@duplex-ws/protocol";
import type { AuthOptions, Identity } from "./auth/identity.ts";
import type { LifecycleShared } from "./connection_state.ts";
import type { PushMap } from "./context.ts";
import type { Dispatcher } from "./dispatch.ts";
import type { AddressBudgets } from "./budget.ts";
import type { ConnectionLimits } from "./limits.ts";
import type { Metrics } from "./metrics.ts";
import type { PubSub } from "./pubsub/pubsub.ts";

/** How a close the limiter decided is logged. */
export const LIMIT_LOG: Record<LibraryCloseKind, ["info" | "warn", string]> = {
  TOO_BIG: ["info", "message too big"],
  RATE_LIMIT: ["warn", "rate limit abuse"],
  SLOW_CONSUMER: ["warn", "slow consumer"],
  SHUTDOWN: ["info", "shutdown"],
  UNSUPPORTED_DATA: ["info", "unsupported data"],
  INTERNAL: ["warn", "internal error"],
  TOKEN_EXPIRED: ["info", "token expired"],
  FORBIDDEN: ["warn", "identity refused"],
  PING_TIMEOUT: ["info", "no pong"],
};

/**
 * What every session of one server shares: made once per server, so an
 * idle connection costs only its own fields.
 */
export interface SessionShared<State, Push extends PushMap>
  extends LifecycleShared {
  /** Routes its messages. */
  readonly dispatcher: Dispatcher<State, Push>;
  /** The per-connection limits. */
  readonly limits: ConnectionLimits;
  /** The budgets client addresses share across their connections. */
  readonly budgets: AddressBudgets;
  /** Topic membership and publishing. */
  readonly pubsub: PubSub;
  /** The node's streamed replies. */
  readonly replyStreams: ReplyStreams;
  /** The server's counters. */
  readonly metrics: Metrics;
  /** Identities, refreshes and topic permissions (the `auth` option). */
  readonly auth?: AuthOptions<State>;
  /** Milliseconds a connection has to refresh once asked. */
  readonly refreshGrace: number;
  /** Milliseconds a server request waits for its reply by default. */
  readonly requestTimeout: number;
  /** Server requests that may await replies at once. */
  readonly maxPendingRequests: number;
  /** Called once when the session has finished, before the close hook. */
  readonly onFinished: (session: SessionRef, info: CloseInfo) => void;
  /**
   * Called once when the transport has let go of the connection: at the
   * finish when the transport closed first, else when it does (a peer that
   * stopped reading can hold a terminated Deno socket as long as it likes).
   */
  readonly onReleased: (session: SessionRef) => void;
}

/** What the server's registry and admission know of a session. */
export interface SessionRef {
  /** Its id. */
  readonly id: string;
  /** The client's address it is counted under, if known. */
  readonly address: string | undefined;
  /** The subject it is counted under, if any. */
  readonly subject: string | undefined;
}

/** What the handshake decided about a session. */
export interface SessionInit<State> {
  /** A unique id. */
  readonly id: string;
  /** The state `authenticate` returned (with `auth`: the identity's). */
  readonly state: State;
  /** With the `auth` option: who it is. */
  readonly identity?: Identity<State>;
  /** The negotiated subprotocol, or `""`. */
  readonly protocol: string;
  /** The client's address, when known. */
  readonly address?: string;
  /** Pushes of a topic name it; a leave is told (`?push_topics=1`). */
  readonly namesTopics?: boolean;
}
