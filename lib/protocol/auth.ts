/**
 * Identity on the wire (docs/PROTOCOL.md §5), shared by server and client:
 * how a token rides in `Sec-WebSocket-Protocol`, the `auth.refresh`
 * exchange that renews a live connection's identity, the `topic.left` push
 * that says why the server took a connection out of a topic, and why a
 * token was refused.
 *
 * @module
 */

/**
 * The subprotocol a browser offers next to its token, and the one the
 * server then answers: browsers fail a handshake whose offered protocols
 * get no answer, and the token itself must never be echoed.
 */
export const AUTH_PROTOCOL = "duplex";

/** The prefix of the offered subprotocol that carries a token: `duplex.bearer.<token>`. */
export const BEARER_PROTOCOL_PREFIX = "duplex.bearer.";

/**
 * The subprotocols that carry `token` for a browser's `new WebSocket(url,
 * protocols)`: the marker the server answers, then the carrier.
 *
 * @example
 * ```ts
 * import { bearerProtocols } from "./auth.ts";
 * console.assert(bearerProtocols("a.b.c").join() === "duplex,duplex.bearer.a.b.c");
 * ```
 */
export function bearerProtocols(token: string): string[] {
  return [AUTH_PROTOCOL, BEARER_PROTOCOL_PREFIX + token];
}

/**
 * The event of the refresh exchange, both ways. The server pushes it with
 * {@linkcode AuthRefreshRequest} when the connection's identity expires or
 * when the app asks for re-authentication; the client sends it as a request
 * with {@linkcode AuthRefreshData}, and gets {@linkcode AuthRefreshReply}.
 */
export const AUTH_REFRESH = "auth.refresh";

/** The server's `auth.refresh` push: send a fresh token before `deadline`. */
export interface AuthRefreshRequest {
  /** `expired`: the token's `exp` passed; `requested`: the app asked for re-authentication. */
  reason: "expired" | "requested";
  /** Milliseconds since the epoch after which the connection is closed with 4001. */
  deadline: number;
}

/** What a client sends in its `auth.refresh` request. */
export interface AuthRefreshData {
  /** The fresh token, verified exactly as at the handshake. */
  token: string;
}

/** The reply to a refresh that was accepted. */
export interface AuthRefreshReply {
  /** When the new identity expires (milliseconds since the epoch), if it does. */
  expiresAt?: number;
}

/**
 * The push that tells a connection the server took it out of a topic, and
 * why (a refreshed identity that no longer allows it).
 */
export const TOPIC_LEFT = "topic.left";

/**
 * The push that tells a connection the server put it in a topic (the
 * server API's `subscribe`); pushes of the topic follow.
 */
export const TOPIC_JOINED = "topic.joined";

/** `topic.joined`'s data. */
export interface TopicJoined {
  /** The topic. */
  topic: string;
  /** In a topic with history: the position it joined at. */
  position?: { offset: number; epoch: string };
}

/** `topic.left`'s data. */
export interface TopicLeft {
  /** The topic. */
  topic: string;
  /** An error code: `FORBIDDEN`. */
  code: string;
  /** A sentence for people. */
  message: string;
}

/**
 * Why a token was refused; each is a bounded label in
 * `duplex_handshakes_total{reason="token_<reason>"}` and the `reason` of a
 * 401's JSON body.
 */
export const AUTH_FAILURES = [
  "missing",
  "malformed",
  "signature",
  "algorithm",
  "expired",
  "not_yet_valid",
  "audience",
  "issuer",
  "claims",
] as const;

/** One of {@linkcode AUTH_FAILURES}. */
export type AuthFailureReason = typeof AUTH_FAILURES[number];
