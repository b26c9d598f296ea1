/**
 * Who may open a connection now: the server-wide capacity checks at the
 * handshake. Open sockets (connections plus those the runtime still holds
 * after duplex gave up on them) against `maxConnections` and the descriptor
 * budget; per client address and per authenticated subject, open sockets
 * and the handshake rate; and the handshakes waiting in `authenticate`.
 * Pure bookkeeping: no I/O after start.
 *
 * @module
 */

import type { RefusalReason } from "./handshake.ts";
import type { Logger } from "./logger.ts";
import { KeyedBuckets } from "./token_bucket.ts";

/** The admission limits of one server (resolved options). */
export interface AdmissionLimits {
  /** Open sockets at most, the lingering ones included. */
  readonly maxConnections: number;
  /** Open sockets at most for one client address; 0: no cap. */
  readonly maxConnectionsPerIp: number;
  /** Handshakes per second for one client address (burst: twice as many); 0: no cap. */
  readonly handshakesPerIpPerSecond: number;
  /** Open sockets at most for one authenticated subject; 0: no cap. */
  readonly maxConnectionsPerSubject: number;
  /** Handshakes per second for one subject (burst: twice as many); 0: no cap. */
  readonly handshakesPerSubjectPerSecond: number;
  /** Handshakes waiting in `authenticate` at once. */
  readonly maxPendingHandshakes: number;
  /** Open sockets at most, from the descriptor limit; `Infinity`: no budget. */
  readonly socketBudget: number;
  /**
   * The count `socketBudget` is checked against: servers pass the process's
   * ({@linkcode PROCESS_SOCKETS}), since descriptors are the process's
   * whatever server spends them; by default a count of this admission's own.
   */
  readonly sockets?: SocketCount;
}

/** Sockets open now against a descriptor budget, shared by whoever spends it. */
export interface SocketCount {
  /** Sockets open (or reserved) now. */
  open: number;
}

/**
 * The process's sockets, counted by every server in it, so that two servers
 * (two endpoints on one port) cannot each spend the whole descriptor limit.
 */
export const PROCESS_SOCKETS: SocketCount = { open: 0 };

/** Open sockets and the handshake rate per key (an address, a subject). */
class PerKey {
  readonly #open = new Map<string, number>();
  readonly #rates: KeyedBuckets;
  readonly #maxOpen: number;
  readonly #perSecond: number;
  readonly #reasons: readonly [RefusalReason, RefusalReason];

  constructor(
    maxOpen: number,
    perSecond: number,
    reasons: readonly [open: RefusalReason, rate: RefusalReason],
  ) {
    this.#maxOpen = maxOpen;
    this.#perSecond = perSecond;
    this.#rates = new KeyedBuckets(perSecond);
    this.#reasons = reasons;
  }

  /** Whether `key` may open one more; takes one token of its rate. */
  check(key: string): RefusalReason | null {
    if (this.#maxOpen > 0 && (this.#open.get(key) ?? 0) >= this.#maxOpen) {
      return this.#reasons[0];
    }
    if (this.#perSecond > 0 && !this.#rates.get(key).take(1)) {
      return this.#reasons[1];
    }
    return null;
  }

  acquire(key: string): void {
    this.#open.set(key, (this.#open.get(key) ?? 0) + 1);
  }

  release(key: string): void {
    const left = (this.#open.get(key) ?? 1) - 1;
    if (left > 0) this.#open.set(key, left);
    else this.#open.delete(key);
  }
}

/**
 * The sockets a process with a soft limit of `limit` descriptors may keep
 * open: the limit minus a reserve for everything that is not a WebSocket
 * (the listener, plain HTTP keep-alives, Redis, logs, the runtime's own): a
 * tenth of the limit, at least 32.
 *
 * @example
 * ```ts
 * import { descriptorBudget } from "./admission.ts";
 * console.assert(descriptorBudget(1024) === 921 && descriptorBudget(256) === 224);
 * ```
 */
export function descriptorBudget(limit: number): number {
  return Math.max(1, limit - Math.max(32, Math.ceil(limit / 10)));
}

/**
 * This process's soft limit on open descriptors, from Linux's
 * `/proc/self/limits`; `undefined` where it cannot be read: Deno 2.9 lets
 * only `--allow-all` read under `/proc`, and Deno Deploy has none (the
 * `./env` reader takes the limit from `DESCRIPTOR_LIMIT` instead, which
 * `deno task start` sets from `ulimit -Sn`).
 */
export function readDescriptorLimit(): number | undefined {
  const path = "/proc/self/limits";
  try {
    if (
      Deno.permissions.querySync({ name: "read", path }).state !== "granted"
    ) {
      return undefined;
    }
    const line = Deno.readTextFileSync(path).split("\n").find((l) =>
      l.startsWith("Max open files")
    );
    const soft = Number(line?.split(/\s{2,}/)[1]);
    return Number.isSafeInteger(soft) && soft > 0 ? soft : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A handshake's claim on capacity, made before `authenticate` runs so that
 * concurrent handshakes cannot all pass a check that only one of them may:
 * committed when the connection is accepted (it then owns the counts until
 * released), cancelled when the handshake is refused or fails.
 */
export interface Reservation {
  /** The client address counted. */
  readonly ip: string | undefined;
  /** The authenticated subject counted, once reserved. */
  subject: string | undefined;
  /** `reserved`, then `committed` or `cancelled`. */
  state: "reserved" | "committed" | "cancelled";
}

/** The server-wide admission state. */
export class Admission {
  readonly #limits: AdmissionLimits;
  readonly #perIp: PerKey;
  readonly #perSubject: PerKey;
  readonly #sockets: SocketCount;
  #open = 0;
  #reserved = 0;
  #pending = 0;

  /** @param limits The resolved limits. */
  constructor(limits: AdmissionLimits) {
    this.#limits = limits;
    this.#sockets = limits.sockets ?? { open: 0 };
    this.#perIp = new PerKey(
      limits.maxConnectionsPerIp,
      limits.handshakesPerIpPerSecond,
      ["too_many_connections_per_ip", "handshake_rate"],
    );
    this.#perSubject = new PerKey(
      limits.maxConnectionsPerSubject,
      limits.handshakesPerSubjectPerSecond,
      ["too_many_connections_per_subject", "subject_handshake_rate"],
    );
  }

  /** Sockets the process may hold at most (`Infinity`: no budget). */
  get socketBudget(): number {
    return this.#limits.socketBudget;
  }

  /** Sockets open now, lingering ones included, and handshakes holding a reservation. */
  get open(): number {
    return this.#open;
  }

  /** Handshakes holding a reservation (not yet accepted or refused). */
  get reserved(): number {
    return this.#reserved;
  }

  /**
   * Reserves a socket for a handshake from `ip`, or says why not; takes one
   * token of the address's handshake rate. The order: the descriptor
   * budget, the connection cap, the address's sockets, the address's rate.
   */
  reserve(ip: string | undefined): Reservation | RefusalReason {
    const limits = this.#limits;
    if (this.#sockets.open >= limits.socketBudget) return "too_many_sockets";
    if (this.#open >= limits.maxConnections) return "too_many_connections";
    if (ip !== undefined) {
      const reason = this.#perIp.check(ip);
      if (reason) return reason;
      this.#perIp.acquire(ip);
    }
    this.#open++;
    this.#sockets.open++;
    this.#reserved++;
    return { ip, subject: undefined, state: "reserved" };
  }

  /**
   * Adds an authenticated subject to a reservation (after `authenticate`,
   * which names it), or says why not; takes one token of its rate.
   */
  reserveSubject(
    reservation: Reservation,
    subject: string,
  ): RefusalReason | null {
    const reason = this.#perSubject.check(subject);
    if (reason) return reason;
    this.#perSubject.acquire(subject);
    reservation.subject = subject;
    return null;
  }

  /** The connection was accepted: it owns the reserved counts until {@linkcode release}. */
  commit(reservation: Reservation): void {
    if (reservation.state !== "reserved") return;
    reservation.state = "committed";
    this.#reserved--;
  }

  /** The handshake was refused or failed: its counts go back. */
  cancel(reservation: Reservation): void {
    if (reservation.state !== "reserved") return;
    reservation.state = "cancelled";
    this.#reserved--;
    this.release(reservation.ip, reservation.subject);
  }

  /** Whether another handshake may wait in `authenticate`; if so, it is counted until `endPending`. */
  beginPending(): boolean {
    if (this.#pending >= this.#limits.maxPendingHandshakes) return false;
    this.#pending++;
    return true;
  }

  /** A handshake left `authenticate`. */
  endPending(): void {
    this.#pending--;
  }

  /** The runtime let go of a socket of `ip` (and `subject`). */
  release(ip: string | undefined, subject?: string): void {
    this.#open--;
    this.#sockets.open--;
    if (ip !== undefined) this.#perIp.release(ip);
    if (subject !== undefined) this.#perSubject.release(subject);
  }
}

/** What {@linkcode createAdmission} reads of a server's resolved options. */
export type AdmissionConfig =
  & Omit<AdmissionLimits, "socketBudget" | "sockets">
  & {
    readonly maxSockets: number | "auto";
    readonly trustProxy: number;
    readonly trustedProxies: readonly string[];
    readonly logger: Logger;
  };

/** This process's descriptor limit, once read (`null`: not read yet). */
let processLimit: number | undefined | null = null;

/**
 * The descriptor limit, read (and its absence logged) once per process:
 * every server of the process shares one budget.
 */
function descriptorLimit(logger: Logger): number | undefined {
  if (processLimit !== null) return processLimit;
  processLimit = readDescriptorLimit();
  if (processLimit === undefined) {
    logger.warn(
      "the descriptor limit cannot be read: no socket budget, so the runtime may run out of descriptors (EMFILE) before 503s begin; set maxSockets (MAX_SOCKETS or DESCRIPTOR_LIMIT), or run with --allow-read",
    );
  }
  return processLimit;
}

/** The admission counts, with the descriptor budget the options ask for. */
export function createAdmission(config: AdmissionConfig): Admission {
  const limit = config.maxSockets === "auto"
    ? descriptorLimit(config.logger)
    : undefined;
  if (config.trustProxy > 0 && config.trustedProxies.length === 0) {
    config.logger.warn(
      "trustProxy without trustedProxies: any peer's X-Forwarded-For is believed, so one that reaches the server directly can claim any address; list the proxies (TRUSTED_PROXIES)",
    );
  }
  return new Admission({
    ...config,
    socketBudget: config.maxSockets !== "auto"
      ? config.maxSockets
      : limit
      ? descriptorBudget(limit)
      : Infinity,
    // Descriptors are the process's: every server in it spends one budget.
    sockets: PROCESS_SOCKETS,
  });
}
