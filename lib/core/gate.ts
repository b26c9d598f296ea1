/**
 * The handshake pipeline, as named stages: what the request gets wrong
 * (path, RFC 6455, Origin), what the server cannot take now (shutdown,
 * sockets, the address's share: a place is reserved before the hook runs),
 * who it is (`authenticate` or `auth.authenticate`, bounded), the subject's
 * share, and the subprotocol. Every refusal leaves through one `refuse`,
 * which counts, logs (throttled) and answers it. Transports call `admit`
 * and then accept or cancel what it admitted.
 *
 * @module
 */

import { AUTH_PROTOCOL, PUSH_TOPICS_PARAM } from "@duplex-ws/protocol";
import type { Admission, Reservation } from "./admission.ts";
import { tokenFromProtocols } from "./auth/credentials.ts";
import {
  type Authenticate,
  AuthFailure,
  type AuthOptions,
  AuthUnavailableError,
  type Identity,
  unauthorizedResponse,
} from "./auth/identity.ts";
import {
  checkHandshake,
  type HandshakeRefusal,
  negotiateProtocol,
  pathOf,
  refusal,
  refusalResponse,
} from "./handshake.ts";
import { type LogFields, type Logger, throttle } from "./logger.ts";
import type { Metrics } from "./metrics.ts";

/** What the handshake checks let through: who the connection will be. */
export interface Admitted<State> {
  /** The state `authenticate` returned. */
  readonly state: State;
  /** With the `auth` option: the verified identity. */
  readonly identity?: Identity<State>;
  /** The negotiated subprotocol, if any. */
  readonly protocol: string | undefined;
  /** The client's address, if known. */
  readonly address: string | undefined;
  /** The capacity held for it until it is accepted or cancelled. */
  readonly reservation: Reservation;
  /** It asked that pushes name their topic (`?push_topics=1`). */
  readonly namesTopics?: boolean;
}

/** Anything a handshake can be refused with. */
export type Refused = HandshakeRefusal | AuthFailure | Response;

type Who<State> = { state: State; identity?: Identity<State> };

/** The server options the pipeline reads (resolved). */
export interface GateConfig<State> {
  /** The path upgrades are accepted on. */
  readonly path: string;
  /** Proxies whose `X-Forwarded-For` is trusted. */
  readonly trustProxy: number;
  /** Which peers those proxies are (empty: any). */
  readonly trustedProxies: readonly string[];
  /** Seconds of `Retry-After` on a 503 or 429. */
  readonly retryAfter: number;
  /** Subprotocols the server speaks, in order of preference. */
  readonly protocols: readonly string[];
  /** The `authenticate` hook, if any. */
  readonly authenticate?: Authenticate<State>;
  /** The `auth` option, if any. */
  readonly auth?: AuthOptions<State>;
  /** Where to log. */
  readonly logger: Logger;
}

/**
 * Whether `address` is one of `proxies`: an address, or an IPv4 range
 * (`10.0.0.0/8`).
 */
export function isTrustedProxy(
  address: string,
  proxies: readonly string[],
): boolean {
  const ipv4 = (text: string) => {
    const parts = text.split(".").map(Number);
    return parts.length === 4 && parts.every((p) => p >= 0 && p <= 255)
      ? parts.reduce((n, p) => n * 256 + p, 0)
      : undefined;
  };
  return proxies.some((proxy) => {
    const [range, bits] = proxy.split("/");
    if (bits === undefined) return range === address;
    const [from, at] = [ipv4(range), ipv4(address)];
    if (from === undefined || at === undefined) return false;
    const size = 2 ** (32 - Number(bits));
    return Math.floor(at / size) === Math.floor(from / size);
  });
}

/**
 * The client's address: the TCP peer's, or with `trustProxy` hops (from a
 * peer among `trustedProxies`, when any are named) the entry that many
 * from the right of `X-Forwarded-For` (read before the upgrade, after
 * which Deno refuses).
 */
export function clientAddress(
  request: Request,
  info: Deno.ServeHandlerInfo | undefined,
  config: Pick<GateConfig<unknown>, "trustProxy" | "trustedProxies">,
): string | undefined {
  const addr = info?.remoteAddr;
  const peer = addr && "hostname" in addr ? addr.hostname : undefined;
  const { trustProxy, trustedProxies } = config;
  if (
    trustProxy > 0 &&
    (trustedProxies.length === 0 ||
      (peer !== undefined && isTrustedProxy(peer, trustedProxies)))
  ) {
    const hops = request.headers.get("x-forwarded-for")?.split(",");
    const entry = hops?.[hops.length - trustProxy]?.trim();
    if (entry) return entry.slice(0, 64);
  }
  return peer;
}

/** The handshake pipeline of one server. */
export class Gate<State> {
  readonly #config: GateConfig<State>;
  readonly #admission: Admission;
  readonly #metrics: Metrics;
  readonly #logger: Logger;
  readonly #closing: () => boolean;
  readonly #originAllowed: (request: Request) => boolean;
  readonly #retryLater: Record<string, string>;
  // A peer can cause refusals at will: their log lines are bounded per second.
  readonly #logRefusal: (message: string, fields: LogFields) => void;

  /**
   * @param config The server's resolved options.
   * @param parts The admission counts, the counters, the log, whether shutdown began, the Origin rule.
   */
  constructor(
    config: GateConfig<State>,
    parts: {
      admission: Admission;
      metrics: Metrics;
      closing: () => boolean;
      originAllowed: (request: Request) => boolean;
    },
  ) {
    this.#config = config;
    this.#admission = parts.admission;
    this.#metrics = parts.metrics;
    this.#logger = config.logger;
    this.#closing = parts.closing;
    this.#originAllowed = parts.originAllowed;
    this.#retryLater = { "Retry-After": String(config.retryAfter) };
    this.#logRefusal = throttle(
      (message, fields) => config.logger.info(message, fields),
      20,
    );
  }

  /**
   * Runs every stage: the refusal `Response`, or who to accept. A `stream`
   * (the HTTP transport's `GET`) skips RFC 6455's header checks, nothing
   * else.
   */
  async admit(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
    kind: "websocket" | "stream" = "websocket",
  ): Promise<Response | Admitted<State>> {
    const address = clientAddress(request, info, this.#config);
    const invalid = this.#checkRequest(request, kind);
    if (invalid) return this.refuse(invalid, request);
    // Capacity is reserved before the hook runs, so that handshakes waiting
    // in it at once cannot all take the last place.
    const reservation = this.#reserve(address);
    if ("reason" in reservation) return this.refuse(reservation, request);
    let who: Who<State> | Refused;
    try {
      who = await this.#authenticate(request, info);
      // The hook may have waited: shutdown may have begun.
      if ("state" in who && this.#closing()) who = refusal("shutting_down");
      if ("state" in who && who.identity && !who.identity.guest) {
        who = this.#reserveSubject(reservation, who.identity.subject) ?? who;
      }
    } catch (error) {
      this.#admission.cancel(reservation);
      throw error;
    }
    if (!("state" in who)) {
      this.#admission.cancel(reservation);
      return this.refuse(who, request);
    }
    const protocol = kind === "stream" ? undefined : this.#negotiate(request);
    const namesTopics = request.url.includes(PUSH_TOPICS_PARAM) &&
      new URL(request.url).searchParams.get(PUSH_TOPICS_PARAM) === "1";
    return { ...who, protocol, address, reservation, namesTopics };
  }

  /** Counts, logs and answers a refusal: the one way a handshake is refused. */
  refuse(refused: Refused, request: Request): Response {
    const reason = refused instanceof Response
      ? "auth"
      : refused instanceof AuthFailure
      ? `token_${refused.reason}`
      : refused.reason;
    const response = refused instanceof Response
      ? refused
      : refused instanceof AuthFailure
      ? unauthorizedResponse(refused)
      : refusalResponse(refused);
    this.#metrics.handshakeRefused(reason);
    this.#logRefusal("handshake refused", {
      reason,
      status: response.status,
      path: pathOf(request)?.slice(0, 200),
      origin: request.headers.get("origin") ?? undefined,
    });
    return response;
  }

  /** Gives back the capacity of an admitted handshake that was never accepted. */
  cancel(admitted: Admitted<State>): void {
    this.#admission.cancel(admitted.reservation);
  }

  /** What the request itself gets wrong: path, RFC 6455, Origin. */
  #checkRequest(
    request: Request,
    kind: "websocket" | "stream",
  ): HandshakeRefusal | null {
    const path = pathOf(request);
    if (path === undefined) return refusal("bad_host");
    if (path !== this.#config.path) return refusal("bad_path");
    const invalid = kind === "websocket" ? checkHandshake(request) : null;
    if (invalid) return invalid;
    return this.#originAllowed(request) ? null : refusal("bad_origin");
  }

  /** What the server cannot take now, or a place reserved for this handshake. */
  #reserve(address: string | undefined): HandshakeRefusal | Reservation {
    if (this.#closing()) return refusal("shutting_down");
    const reserved = this.#admission.reserve(address);
    return typeof reserved === "string"
      ? refusal(reserved, this.#retryLater)
      : reserved;
  }

  /**
   * Runs `authenticate` (or `auth.authenticate`), bounded by
   * `maxPendingHandshakes`: the state (and identity), or the refusal.
   */
  async #authenticate(
    request: Request,
    info: Deno.ServeHandlerInfo | undefined,
  ): Promise<Who<State> | Refused> {
    const { auth, authenticate } = this.#config;
    if (!auth && !authenticate) return { state: undefined as State };
    if (!this.#admission.beginPending()) {
      return refusal("too_many_handshakes", this.#retryLater);
    }
    try {
      const result = auth
        ? await auth.authenticate(request, info)
        : await authenticate!(request, info);
      if (result instanceof Response || result instanceof AuthFailure) {
        return result;
      }
      if (!auth) return { state: result as State };
      const identity = result as Identity<State>;
      if (typeof identity?.subject !== "string" || identity.subject === "") {
        throw new TypeError("auth.authenticate returned no subject");
      }
      return { state: identity.state, identity };
    } catch (error) {
      if (error instanceof AuthFailure) return error;
      if (error instanceof AuthUnavailableError) {
        this.#logger.warn("credentials cannot be checked", {
          error: error.message,
        });
        return refusal("auth_unavailable", this.#retryLater);
      }
      this.#logger.error("authenticate failed", { error });
      return refusal("auth_error");
    } finally {
      this.#admission.endPending();
    }
  }

  /** The subject's share of connections and handshakes; `undefined` when it fits. */
  #reserveSubject(
    reservation: Reservation,
    subject: string,
  ): HandshakeRefusal | undefined {
    const reason = this.#admission.reserveSubject(reservation, subject);
    return reason ? refusal(reason, this.#retryLater) : undefined;
  }

  /**
   * The subprotocol answered. A browser that carried its token in a
   * subprotocol must get one back, never the token itself: the marker it
   * offered next to it.
   */
  #negotiate(request: Request): string | undefined {
    const offer = request.headers.get("sec-websocket-protocol");
    return negotiateProtocol(offer, this.#config.protocols) ??
      (tokenFromProtocols(offer) !== undefined &&
          negotiateProtocol(offer, [AUTH_PROTOCOL])
        ? AUTH_PROTOCOL
        : undefined);
  }
}
