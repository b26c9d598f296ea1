/**
 * The options of `createServer`, each with its documented default (the
 * defaults themselves live in one place: `server_defaults.ts`).
 *
 * @module
 */

import type { OccupancyOptions } from "./occupancy.ts";
import type { Backplane } from "./pubsub/backplane.ts";
import type { PushMap } from "./context.ts";
import type { EventDefinitions, EventRouter } from "./event_router.ts";
import type { HttpRouter } from "./http_router.ts";
import type { TopicPolicy } from "./pubsub/topic_policy.ts";
import type { Authenticate, AuthOptions } from "./auth/identity.ts";
import type { Logger } from "./logger.ts";
import type { FetchTransport } from "./transport.ts";
import type {
  FanoutLimitOptions,
  RateLimitOptions,
  ResolvedFanoutLimit,
  ResolvedRateLimit,
} from "./limits.ts";

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
   * peer's address. Anyone who can reach the server directly could then
   * claim any address: list the proxies in `trustedProxies`.
   * @default {0}
   */
  trustProxy?: number;
  /**
   * The proxies whose `X-Forwarded-For` `trustProxy` trusts, by address or
   * IPv4 range (`10.0.0.0/8`); a request from any other peer is counted
   * under the peer's own address. Empty: every peer is trusted (a warning
   * at start says so).
   * @default {[]}
   */
  trustedProxies?: readonly string[];
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
   * Milliseconds a streamed reply's chunks are kept for a reader that
   * reconnects, and a stream no one reads keeps running (then its signal
   * aborts); an ended stream can be resumed for as long.
   * @default {60000}
   */
  streamWindow?: number;
  /** Chunks a streamed reply keeps at most for a resume. @default {10000} */
  maxStreamChunks?: number;
  /** Streams one connection may have open or be reading at once. @default {8} */
  maxStreamsPerConnection?: number;
  /**
   * Serves the HTTP transport on the WebSocket path (docs/PROTOCOL.md §7:
   * Server-Sent Events down, `POST` up), for clients whose WebSocket is
   * blocked: `httpTransport()` from `@duplex-ws/http-transport`.
   * @default {none: a stream's request is answered as plain HTTP}
   */
  httpTransport?: FetchTransport;
  /**
   * Be told when a topic becomes occupied and vacated, once per transition
   * across every node (and, with `webhook`, a signed `POST`).
   * @default {none}
   */
  occupancy?: OccupancyOptions;
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
   * The budgets one client address shares across all its connections, in
   * connections' worth: its fan-out (publishes, replays, presence changes)
   * and its topic changes may add up to this many connections' budgets, so
   * that opening more connections, or reconnecting for fresh buckets, does
   * not multiply what one client makes the server send. Each connection
   * still has its own. `0` disables it.
   * @default {4}
   */
  addressBudget?: number;
  /**
   * Joins and leaves per second one connection may make (each changes
   * presence, which every member hears about); past it `join`/`leave` answer
   * `RATE_LIMITED`. The bucket holds `maxTopicsPerConnection` changes, so a
   * client can always rejoin all its topics at once. `0` disables it.
   * @default {10}
   */
  topicChangesPerSecond?: number;
  /**
   * Requests with a `key` per second one connection may send (each keeps
   * its reply in the engine for `publishKeyTtl`); past it they are answered
   * `RATE_LIMITED` without running. The bucket holds five seconds' worth (the
   * typed client's whole outbox at the default); an address has
   * `addressBudget` times this. `0` disables it.
   * @default {20}
   */
  keyedRequestsPerSecond?: number;
}

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
      | "occupancy"
      | "httpTransport"
    >
  >
  & Pick<
    ServerOptions<State, Push>,
    | "http"
    | "authenticate"
    | "auth"
    | "backplane"
    | "occupancy"
    | "httpTransport"
  >
  & {
    rateLimit: ResolvedRateLimit | false;
    fanoutLimit: ResolvedFanoutLimit | false;
  };
