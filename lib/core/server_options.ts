/**
 * The options of `createServer`: the one home of every default
 * ({@linkcode SERVER_DEFAULTS}) and of the checks that make a bad
 * configuration fail at start instead of at the first request.
 *
 * @module
 */

import type { Backplane } from "./pubsub/backplane.ts";
import type { PushMap } from "./context.ts";
import type { EventDefinitions, EventRouter } from "./event_router.ts";
import type { HttpRouter } from "./http_router.ts";
import type { TopicPolicy } from "./pubsub/topic_policy.ts";
import type { Authenticate, AuthOptions } from "./auth/identity.ts";
import { createLogger, type Logger } from "./logger.ts";
import { AUTH_REFRESH } from "@duplex-ws/protocol";
import type {
  FanoutLimitOptions,
  RateLimitOptions,
  ResolvedFanoutLimit,
  ResolvedRateLimit,
} from "./limits.ts";

export type { FanoutLimitOptions, RateLimitOptions } from "./limits.ts";

/** Options of `createServer`. */
export interface ServerOptions<State, Push extends PushMap> {
  /** Routes WebSocket messages. */
  router: EventRouter<State, Push, EventDefinitions>;
  /**
   * Routes plain HTTP requests.
   * @default {a router that answers JSON 404 to everything}
   */
  http?: HttpRouter;
  /**
   * The path WebSocket handshakes are accepted on; an upgrade attempt on
   * another path gets 404.
   * @default {"/"}
   */
  path?: string;
  /**
   * Gives each connection its state, or refuses it with a `Response`.
   * @default {every handshake is accepted with state `undefined`}
   */
  authenticate?: Authenticate<State>;
  /**
   * Identity from the handshake to the close (instead of `authenticate`):
   * a subject, state from verified credentials, expiry with an in-band
   * refresh, topic permissions. `jwtAuth` from `@duplex-ws/jwt`
   * makes one for signed tokens.
   * @default {no identities: every connection is anonymous}
   */
  auth?: AuthOptions<State>;
  /**
   * Milliseconds a connection may go on after its identity expired (or the
   * app asked for re-authentication), for the client to send a fresh token
   * in `auth.refresh`; then it is closed with 4001 "token expired".
   * @default {10000}
   */
  refreshGrace?: number;
  /**
   * Milliseconds `ctx.request` waits for a client's reply before it rejects
   * with `TIMEOUT` (a call may pass its own `timeout`).
   * @default {10000}
   */
  requestTimeout?: number;
  /**
   * Server requests one connection may have awaiting replies at once; past
   * it `ctx.request` rejects with `BUSY`.
   * @default {64}
   */
  maxPendingRequests?: number;
  /**
   * Open connections at most for one authenticated subject (guests are not
   * counted); past it handshakes get 429. `0` disables the cap.
   * @default {100}
   */
  maxConnectionsPerSubject?: number;
  /**
   * Handshakes per second for one authenticated subject (a burst of twice as
   * many); past it they get 429. `0` disables the cap.
   * @default {20}
   */
  handshakesPerSubjectPerSecond?: number;
  /**
   * Browser origins allowed besides the server's own host; `"*"` allows all.
   * @default {[]}
   */
  allowedOrigins?: readonly string[];
  /**
   * Refuse handshakes without an `Origin` header (non-browser clients).
   * @default {false}
   */
  requireOrigin?: boolean;
  /**
   * Subprotocols the server speaks, in order of preference.
   * @default {[]}
   */
  protocols?: readonly string[];
  /**
   * The most connections open at once; past it handshakes get 503.
   * @default {10000}
   */
  maxConnections?: number;
  /**
   * Open sockets at most from one client address (lingering ones included);
   * past it handshakes get 429. `0` disables the cap. Behind a proxy every
   * client shares its address: set `trustProxy`.
   * @default {1000}
   */
  maxConnectionsPerIp?: number;
  /**
   * Handshakes per second from one client address (a burst of twice as
   * many); past it they get 429. `0` disables the cap.
   * @default {100}
   */
  handshakesPerIpPerSecond?: number;
  /**
   * Proxies in front of the server whose `X-Forwarded-For` is trusted: the
   * client address is the entry that many from the right. `0` uses the TCP
   * peer's address.
   * @default {0}
   */
  trustProxy?: number;
  /**
   * Open sockets at most for this process, lingering ones included: past it
   * handshakes get 503 before the runtime runs out of descriptors (EMFILE).
   * `"auto"` reads the soft descriptor limit at start (`/proc/self/limits`,
   * which Deno 2.9 lets only `--allow-all` read) and keeps a tenth of it (at
   * least 32) in reserve; where it cannot be read there is no budget (the
   * `./env` reader computes the number from `DESCRIPTOR_LIMIT` instead).
   * @default {"auto"}
   */
  maxSockets?: number | "auto";
  /**
   * The `Retry-After` seconds sent with a 503 or 429.
   * @default {5}
   */
  retryAfter?: number;
  /**
   * The largest message accepted, in bytes; larger ones close with 1009.
   * @default {1048576}
   */
  maxMessageSize?: number;
  /**
   * Seconds without traffic before the runtime pings; no pong within as
   * long again closes with 1001. `0` disables it (Deno's `idleTimeout`).
   * @default {30}
   */
  idleTimeout?: number;
  /**
   * Milliseconds to wait for the peer's close frame after sending ours;
   * then the peer is treated as gone (`onClose` with 1006).
   * @default {5000}
   */
  closeTimeout?: number;
  /**
   * Milliseconds `shutdown` waits for close handshakes before ending the
   * rest. Deno Deploy kills 5 s after SIGINT, so keep it under that there.
   * @default {3000}
   */
  drainTimeout?: number;
  /**
   * Where to log.
   * @default {JSON lines on the console at level "info"}
   */
  logger?: Logger;
  /**
   * Carries publishes and presence to other nodes: `LocalBackplane` (one
   * process), `BroadcastChannelBackplane` (`deno serve --parallel`) or
   * `RedisBackplane` (processes and machines, from `./redis`).
   * @default {new LocalBackplane()}
   */
  backplane?: Backplane;
  /**
   * Topics one connection may be in at once; past it `join` answers `TOO_MANY_TOPICS`.
   * @default {100}
   */
  maxTopicsPerConnection?: number;
  /**
   * What topics have besides delivery, by name or pattern: presence with
   * members (and history). The first policy that matches a topic applies.
   * @default {[]}
   */
  topics?: readonly TopicPolicy[];
  /**
   * Milliseconds between two presence diffs of one topic on one node: the
   * changes in between (joins, leaves, metadata) go out as one diff.
   * @default {250}
   */
  presenceInterval?: number;
  /**
   * Milliseconds a presence key stays after its last connection left, so
   * that a reconnect within it never shows as leaving.
   * @default {5000}
   */
  presenceGrace?: number;
  /**
   * Publishes replayed at most to one joining member (`since` or `last`);
   * a member that missed more gets `recovered: false`.
   * @default {1000}
   */
  maxReplay?: number;
  /**
   * Milliseconds a publish's idempotency key is remembered: a publish with
   * the same key within it answers the first one's position.
   * @default {300000}
   */
  publishKeyTtl?: number;
  /**
   * Bytes the runtime may hold unsent for one peer (Deno's `bufferedAmount`)
   * before it is closed with 1013 "slow consumer"; `0` disables the cap.
   * @default {1048576}
   */
  maxBufferedAmount?: number;
  /**
   * Handlers of one connection that may be running at once; past it
   * messages are answered with `BUSY`.
   * @default {64}
   */
  maxInFlight?: number;
  /**
   * Per-connection rate limit (token buckets): over it messages are answered
   * with `RATE_LIMITED`; `closeAfter` refusals in a row close with 1008.
   * `false` disables it.
   * @default {{ messagesPerSecond: 1000, bytesPerSecond: 4194304, burstSeconds: 2, closeAfter: 1000 }}
   */
  rateLimit?: RateLimitOptions | false;
  /**
   * Handshakes that may wait in `authenticate` at once; past it new ones get
   * 503 with `Retry-After`.
   * @default {1000}
   */
  maxPendingHandshakes?: number;
  /**
   * Per-connection fan-out budget: a `ctx.publish` that would reach more
   * members (or bytes) than the connection has left is refused with
   * `RATE_LIMITED`, so one client cannot make the server send without bound
   * to a large room. `server.publish` is not charged. `false` disables it.
   * @default {{ deliveriesPerSecond: 20000, bytesPerSecond: 16777216, burstSeconds: 2 }}
   */
  fanoutLimit?: FanoutLimitOptions | false;
  /**
   * Joins and leaves per second one connection may make (each changes
   * presence, which every member hears about); past it `join`/`leave` answer
   * `RATE_LIMITED`. The bucket holds `maxTopicsPerConnection` changes, so a
   * client can always rejoin all its topics at once. `0` disables it.
   * @default {10}
   */
  topicChangesPerSecond?: number;
}

/**
 * Every default of {@linkcode ServerOptions}, in one place. The README's
 * configuration table is checked against it by the suite.
 */
export const SERVER_DEFAULTS = {
  path: "/",
  allowedOrigins: [] as readonly string[],
  requireOrigin: false,
  protocols: [] as readonly string[],
  maxConnections: 10_000,
  maxConnectionsPerIp: 1_000,
  handshakesPerIpPerSecond: 100,
  maxConnectionsPerSubject: 100,
  handshakesPerSubjectPerSecond: 20,
  refreshGrace: 10_000,
  requestTimeout: 10_000,
  maxPendingRequests: 64,
  trustProxy: 0,
  maxSockets: "auto" as number | "auto",
  retryAfter: 5,
  maxMessageSize: 1_048_576,
  idleTimeout: 30,
  closeTimeout: 5_000,
  drainTimeout: 3_000,
  maxTopicsPerConnection: 100,
  topics: [] as readonly TopicPolicy[],
  presenceInterval: 250,
  presenceGrace: 5_000,
  maxReplay: 1_000,
  publishKeyTtl: 300_000,
  maxBufferedAmount: 1_048_576,
  maxInFlight: 64,
  maxPendingHandshakes: 1_000,
  rateLimit: {
    messagesPerSecond: 1_000,
    bytesPerSecond: 4_194_304,
    burstSeconds: 2,
    closeAfter: 1_000,
  } as ResolvedRateLimit,
  fanoutLimit: {
    deliveriesPerSecond: 20_000,
    bytesPerSecond: 16_777_216,
    burstSeconds: 2,
  } as ResolvedFanoutLimit,
  topicChangesPerSecond: 10,
} as const;

/**
 * The integer options and the least value each may take: the one table the
 * option checks (and the environment reader) use.
 */
export const INTEGER_OPTIONS = {
  maxConnections: 1,
  maxConnectionsPerIp: 0,
  handshakesPerIpPerSecond: 0,
  maxConnectionsPerSubject: 0,
  handshakesPerSubjectPerSecond: 0,
  refreshGrace: 0,
  requestTimeout: 1,
  maxPendingRequests: 1,
  trustProxy: 0,
  retryAfter: 0,
  maxMessageSize: 1,
  idleTimeout: 0,
  closeTimeout: 1,
  drainTimeout: 0,
  maxTopicsPerConnection: 1,
  presenceInterval: 1,
  presenceGrace: 0,
  maxReplay: 1,
  publishKeyTtl: 1,
  maxBufferedAmount: 0,
  maxInFlight: 1,
  maxPendingHandshakes: 1,
  topicChangesPerSecond: 0,
} as const;

/** One of the {@linkcode INTEGER_OPTIONS}. */
export type IntegerOption = keyof typeof INTEGER_OPTIONS;

/** {@linkcode ServerOptions} with every default filled in. */
export type ResolvedServerOptions<State, Push extends PushMap> =
  & Required<
    Omit<
      ServerOptions<State, Push>,
      | "http"
      | "authenticate"
      | "auth"
      | "backplane"
      | "rateLimit"
      | "fanoutLimit"
    >
  >
  & Pick<
    ServerOptions<State, Push>,
    "http" | "authenticate" | "auth" | "backplane"
  >
  & {
    rateLimit: ResolvedRateLimit | false;
    fanoutLimit: ResolvedFanoutLimit | false;
  };

/**
 * Checks that `value` is a safe integer of at least `min`: the one integer
 * check of the library's options.
 *
 * @throws {RangeError} naming the option.
 */
export function assertInteger(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(
      `Cannot create server: ${name} must be an integer >= ${min}, got ${value}`,
    );
  }
}

function assertNonNegative(name: string, value: number): void {
  if (!(Number.isFinite(value) && value >= 0)) {
    throw new RangeError(
      `Cannot create server: ${name} must be a number >= 0, got ${value}`,
    );
  }
}

function validToken(protocol: string): boolean {
  // RFC 7230 token characters.
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(protocol);
}

function resolveFanoutLimit(
  options: FanoutLimitOptions | false,
): ResolvedFanoutLimit | false {
  if (options === false) return false;
  const limit = {
    ...SERVER_DEFAULTS.fanoutLimit,
    ...withoutUndefined(options),
  };
  assertNonNegative(
    "fanoutLimit.deliveriesPerSecond",
    limit.deliveriesPerSecond,
  );
  assertNonNegative("fanoutLimit.bytesPerSecond", limit.bytesPerSecond);
  assertNonNegative("fanoutLimit.burstSeconds", limit.burstSeconds);
  return limit;
}

function resolveRateLimit(
  options: RateLimitOptions | false,
): ResolvedRateLimit | false {
  if (options === false) return false;
  const limit = { ...SERVER_DEFAULTS.rateLimit, ...withoutUndefined(options) };
  assertNonNegative("rateLimit.messagesPerSecond", limit.messagesPerSecond);
  assertNonNegative("rateLimit.bytesPerSecond", limit.bytesPerSecond);
  assertNonNegative("rateLimit.burstSeconds", limit.burstSeconds);
  assertInteger("rateLimit.closeAfter", limit.closeAfter, 1);
  return limit;
}

/**
 * Fills in defaults and checks every option.
 *
 * @throws {TypeError} when an option has the wrong type.
 * @throws {RangeError} when a number is out of range.
 */
export function resolveServerOptions<State, Push extends PushMap>(
  options: ServerOptions<State, Push>,
): ResolvedServerOptions<State, Push> {
  const resolved = {
    ...SERVER_DEFAULTS,
    ...withoutUndefined(options),
    logger: options.logger ?? createLogger(),
    rateLimit: resolveRateLimit(
      options.rateLimit ?? SERVER_DEFAULTS.rateLimit,
    ),
    fanoutLimit: resolveFanoutLimit(
      options.fanoutLimit ?? SERVER_DEFAULTS.fanoutLimit,
    ),
  };
  const { router, path, authenticate, protocols } = resolved;
  if (typeof router?.eventNames !== "function") {
    throw new TypeError("Cannot create server: router must be an EventRouter");
  }
  if (typeof path !== "string" || !path.startsWith("/")) {
    throw new TypeError(
      `Cannot create server: path must start with "/", got "${path}"`,
    );
  }
  if (authenticate !== undefined && typeof authenticate !== "function") {
    throw new TypeError(
      "Cannot create server: authenticate must be a function",
    );
  }
  const { auth } = resolved;
  if (auth !== undefined) {
    if (authenticate !== undefined) {
      throw new TypeError(
        "Cannot create server: give either authenticate or auth, not both",
      );
    }
    if (typeof auth.authenticate !== "function") {
      throw new TypeError(
        "Cannot create server: auth.authenticate must be a function",
      );
    }
    if (router.eventNames().includes(AUTH_REFRESH)) {
      throw new TypeError(
        `Cannot create server: "${AUTH_REFRESH}" is the library's refresh event; the router must not define it`,
      );
    }
  }
  for (const protocol of protocols) {
    if (!validToken(protocol)) {
      throw new TypeError(
        `Cannot create server: subprotocol "${protocol}" is not an HTTP token`,
      );
    }
  }
  for (const [name, min] of Object.entries(INTEGER_OPTIONS)) {
    assertInteger(name, resolved[name as IntegerOption], min);
  }
  if (resolved.maxSockets !== "auto") {
    assertInteger("maxSockets", resolved.maxSockets, 1);
  }
  return resolved;
}

/** Drops keys whose value is `undefined`, so they do not hide a default. */
function withoutUndefined<T extends object>(options: T): T {
  const out = {} as T;
  for (const key in options) {
    if (options[key] !== undefined) out[key] = options[key];
  }
  return out;
}
