/**
 * The defaults of `createServer`'s options, in one place
 * ({@linkcode SERVER_DEFAULTS}), and the checks that make a bad
 * configuration fail at start instead of at the first request.
 *
 * @module
 */

import { AUTH_REFRESH } from "@duplex-ws/protocol";
import type { PushMap } from "./context.ts";
import type {
  FanoutLimitOptions,
  RateLimitOptions,
  ResolvedFanoutLimit,
  ResolvedRateLimit,
} from "./limits.ts";
import { createLogger } from "./logger.ts";
import type { TopicPolicy } from "./pubsub/topic_policy.ts";
import type { ResolvedServerOptions, ServerOptions } from "./server_options.ts";

/**
 * Every default of {@linkcode ServerOptions}, in one place. docs/CONFIGURATION.md's
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
  trustedProxies: [] as readonly string[],
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
  streamWindow: 60_000,
  maxStreamChunks: 10_000,
  maxStreamsPerConnection: 8,
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
  keyedRequestsPerSecond: 20,
  addressBudget: 4,
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
  streamWindow: 1,
  maxStreamChunks: 1,
  maxStreamsPerConnection: 1,
  maxBufferedAmount: 0,
  maxInFlight: 1,
  maxPendingHandshakes: 1,
  topicChangesPerSecond: 0,
  keyedRequestsPerSecond: 0,
  addressBudget: 0,
} as const;

/** One of the {@linkcode INTEGER_OPTIONS}. */
export type IntegerOption = keyof typeof INTEGER_OPTIONS;

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
  if ("apiKey" in options) {
    throw new TypeError(
      "Cannot create server: apiKey is gone; mount serverApi({ key }) from @duplex-ws/api on the http router",
    );
  }
  const { httpTransport } = resolved;
  if (httpTransport !== undefined && typeof httpTransport !== "function") {
    throw new TypeError(
      "Cannot create server: httpTransport must be httpTransport() from @duplex-ws/http-transport",
    );
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
