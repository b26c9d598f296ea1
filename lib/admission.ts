/**
 * Who may open a connection now: the server-wide capacity checks at the
 * handshake. Open sockets (connections plus those the runtime still holds
 * after duplex gave up on them) against `maxConnections` and the descriptor
 * budget; per client address, open sockets and the handshake rate; and the
 * handshakes waiting in `authenticate`. Pure bookkeeping: no I/O after start.
 *
 * @module
 */

import type { RefusalReason } from "./handshake.ts";
import { TokenBucket } from "./limits.ts";

/** The admission limits of one server (resolved options). */
export interface AdmissionLimits {
  /** Open sockets at most, the lingering ones included. */
  readonly maxConnections: number;
  /** Open sockets at most for one client address; 0: no cap. */
  readonly maxConnectionsPerIp: number;
  /** Handshakes per second for one client address (burst: twice as many); 0: no cap. */
  readonly handshakesPerIpPerSecond: number;
  /** Handshakes waiting in `authenticate` at once. */
  readonly maxPendingHandshakes: number;
  /** Open sockets at most, from the descriptor limit; `Infinity`: no budget. */
  readonly socketBudget: number;
}

/** Client addresses whose handshake rate is remembered at most (oldest forgotten first). */
const MAX_RATE_ENTRIES = 10_000;

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

/** The server-wide admission state. */
export class Admission {
  readonly #limits: AdmissionLimits;
  readonly #perIp = new Map<string, number>();
  readonly #rates = new Map<string, TokenBucket>();
  #open = 0;
  #pending = 0;

  /** @param limits The resolved limits. */
  constructor(limits: AdmissionLimits) {
    this.#limits = limits;
  }

  /** Sockets open now, lingering ones included. */
  get open(): number {
    return this.#open;
  }

  /**
   * Whether a handshake from `ip` may go on now; takes one token of its
   * handshake rate. The order: the descriptor budget, the connection cap,
   * the address's sockets, the address's rate.
   */
  check(ip: string | undefined): RefusalReason | null {
    const limits = this.#limits;
    if (this.#open >= limits.socketBudget) return "too_many_sockets";
    if (this.#open >= limits.maxConnections) return "too_many_connections";
    if (ip === undefined) return null;
    if (
      limits.maxConnectionsPerIp > 0 &&
      (this.#perIp.get(ip) ?? 0) >= limits.maxConnectionsPerIp
    ) {
      return "too_many_connections_per_ip";
    }
    if (limits.handshakesPerIpPerSecond > 0 && !this.#rate(ip).take(1)) {
      return "handshake_rate";
    }
    return null;
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

  /** A socket was opened for `ip`; it counts until {@linkcode release}. */
  acquire(ip: string | undefined): void {
    this.#open++;
    if (ip !== undefined) this.#perIp.set(ip, (this.#perIp.get(ip) ?? 0) + 1);
  }

  /** The runtime let go of a socket of `ip`. */
  release(ip: string | undefined): void {
    this.#open--;
    if (ip === undefined) return;
    const left = (this.#perIp.get(ip) ?? 1) - 1;
    if (left > 0) this.#perIp.set(ip, left);
    else this.#perIp.delete(ip);
  }

  #rate(ip: string): TokenBucket {
    let bucket = this.#rates.get(ip);
    if (bucket === undefined) {
      const rate = this.#limits.handshakesPerIpPerSecond;
      bucket = new TokenBucket(rate, rate * 2);
      if (this.#rates.size >= MAX_RATE_ENTRIES) {
        this.#rates.delete(this.#rates.keys().next().value!);
      }
    } else this.#rates.delete(ip);
    // Re-inserted on every use: the map's order is least recently used first.
    this.#rates.set(ip, bucket);
    return bucket;
  }
}
