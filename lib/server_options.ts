/**
 * The options of `createServer`, their defaults, and the checks that make a
 * bad configuration fail at start instead of at the first request.
 *
 * @module
 */

import type { Backplane } from "./backplane.ts";
import type { EventMap } from "./context.ts";
import type { EventDefinitions, EventRouter } from "./event_router.ts";
import type { HttpRouter } from "./http_router.ts";
import { createLogger, type Logger } from "./logger.ts";
import {
  type RateLimitOptions,
  type ResolvedRateLimit,
  resolveRateLimit,
} from "./rate_limit.ts";

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

/** Options of `createServer`. */
export interface ServerOptions<State, Push extends EventMap> {
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
   * The `Retry-After` seconds sent with a 503.
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
   * `RedisBackplane` (processes and machines).
   * @default {new LocalBackplane()}
   */
  backplane?: Backplane;
  /**
   * Topics one connection may be in at once; past it `join` answers `TOO_MANY_TOPICS`.
   * @default {100}
   */
  maxTopicsPerConnection?: number;
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
   * Keep the process alive when application code leaves a rejected promise
   * or an uncaught error behind (Deno exits on those): log them instead.
   * @default {true}
   */
  guardProcess?: boolean;
}

/** {@linkcode ServerOptions} with every default filled in. */
export type ResolvedServerOptions<State, Push extends EventMap> =
  & Required<
    Omit<
      ServerOptions<State, Push>,
      "http" | "authenticate" | "backplane" | "rateLimit"
    >
  >
  & Pick<ServerOptions<State, Push>, "http" | "authenticate" | "backplane">
  & { rateLimit: ResolvedRateLimit | false };

function positiveInteger(name: string, value: number, min = 1): number {
  if (!Number.isSafeInteger(value) || value < min) {
    throw new RangeError(
      `Cannot create server: ${name} must be an integer >= ${min}, got ${value}`,
    );
  }
  return value;
}

function validToken(protocol: string): boolean {
  // RFC 7230 token characters.
  return /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(protocol);
}

/**
 * Fills in defaults and checks every option.
 *
 * @throws {TypeError} when an option has the wrong type.
 * @throws {RangeError} when a number is out of range.
 */
export function resolveServerOptions<State, Push extends EventMap>(
  options: ServerOptions<State, Push>,
): ResolvedServerOptions<State, Push> {
  const {
    router,
    http,
    path = "/",
    authenticate,
    allowedOrigins = [],
    requireOrigin = false,
    protocols = [],
    maxConnections = 10_000,
    retryAfter = 5,
    maxMessageSize = 1_048_576,
    idleTimeout = 30,
    closeTimeout = 5_000,
    drainTimeout = 3_000,
    logger = createLogger(),
    guardProcess = true,
    backplane,
    maxTopicsPerConnection = 100,
    maxBufferedAmount = 1_048_576,
    maxInFlight = 64,
    rateLimit = {},
    maxPendingHandshakes = 1000,
  } = options;
  if (typeof router?.dispatchText !== "function") {
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
  for (const protocol of protocols) {
    if (!validToken(protocol)) {
      throw new TypeError(
        `Cannot create server: subprotocol "${protocol}" is not an HTTP token`,
      );
    }
  }
  return {
    router,
    http,
    path,
    authenticate,
    allowedOrigins,
    requireOrigin,
    protocols,
    maxConnections: positiveInteger("maxConnections", maxConnections),
    retryAfter: positiveInteger("retryAfter", retryAfter, 0),
    maxMessageSize: positiveInteger("maxMessageSize", maxMessageSize),
    idleTimeout: positiveInteger("idleTimeout", idleTimeout, 0),
    closeTimeout: positiveInteger("closeTimeout", closeTimeout),
    drainTimeout: positiveInteger("drainTimeout", drainTimeout, 0),
    logger,
    guardProcess,
    backplane,
    maxTopicsPerConnection: positiveInteger(
      "maxTopicsPerConnection",
      maxTopicsPerConnection,
    ),
    maxBufferedAmount: positiveInteger(
      "maxBufferedAmount",
      maxBufferedAmount,
      0,
    ),
    maxInFlight: positiveInteger("maxInFlight", maxInFlight),
    rateLimit: resolveRateLimit(rateLimit),
    maxPendingHandshakes: positiveInteger(
      "maxPendingHandshakes",
      maxPendingHandshakes,
    ),
  };
}
