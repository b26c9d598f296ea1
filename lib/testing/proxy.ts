/**
 * A TCP proxy for tests that need the network to fail: put it between a
 * client and a server, then cut every connection without a close frame (as
 * a phone leaving Wi-Fi does), refuse new ones for a while, or let bytes
 * through one way only.
 *
 * @example
 * ```ts
 * import { startProxy } from "@duplex-ws/testing";
 * const echo = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const proxy = startProxy({ port: echo.addr.port });
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port: proxy.port });
 * while (proxy.connections === 0) await new Promise((r) => setTimeout(r, 5));
 * proxy.cut();
 * const read = await conn.read(new Uint8Array(1)).catch(() => null);
 * console.assert(read === null, "the proxy ended the connection");
 * conn.close();
 * await proxy.close();
 * echo.close();
 * ```
 *
 * @module
 */

/** Where a proxy forwards to. */
export interface ProxyTarget {
  /** The target's port. */
  port: number;
  /**
   * The target's address.
   * @default {"127.0.0.1"}
   */
  hostname?: string;
}

/** A running proxy; {@linkcode startProxy} makes one. */
export interface TestProxy {
  /** The port it listens on, on 127.0.0.1. */
  readonly port: number;
  /** `ws://127.0.0.1:<port>` with `path` (default `/`). */
  wsUrl(path?: string): string;
  /** Connections forwarded now. */
  readonly connections: number;
  /**
   * Ends every forwarded connection at once, both ways, without any
   * WebSocket close frame; with `refuseFor`, connections made within that
   * many milliseconds are ended as soon as they are accepted.
   */
  cut(options?: { refuseFor?: number }): void;
  /**
   * Stops forwarding what the target sends (until the next `cut`): the
   * client's messages reach the server, its replies do not.
   */
  muteDownstream(): void;
  /**
   * Stops reading what the target sends until {@linkcode TestProxy.resume}
   * (or the next `cut`): the target's socket buffers fill, as with a
   * client that reads too slowly (a slow consumer, conflation).
   */
  stall(): void;
  /** Reads what the target sends again after `stall`. */
  resume(): void;
  /** Bytes forwarded so far: `up` to the target, `down` from it. */
  readonly bytes: { readonly up: number; readonly down: number };
  /** Cuts everything and stops listening. */
  close(): Promise<void>;
}

interface Pair {
  client: Deno.TcpConn;
  server: Deno.TcpConn;
  done: Promise<void>;
}

function end(pair: Pair): void {
  for (const conn of [pair.client, pair.server]) {
    try {
      conn.close();
    } catch { /* closed already */ }
  }
}

/** A TCP proxy that can cut, refuse and mute. */
class TcpProxy implements TestProxy {
  readonly port: number;
  readonly #target: ProxyTarget;
  readonly #listener: Deno.TcpListener;
  readonly #pairs = new Set<Pair>();
  /** Accepted, waiting for the target. */
  readonly #connecting = new Set<Deno.TcpConn>();
  readonly #forwards = new Set<Promise<void>>();
  readonly #accepting: Promise<void>;
  #refuseUntil = 0;
  #muted = false;
  #stalled: PromiseWithResolvers<void> | undefined;
  /** Bytes forwarded each way so far. */
  readonly bytes = { up: 0, down: 0 };

  constructor(target: ProxyTarget) {
    this.#target = target;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#accepting = this.#accept();
  }

  wsUrl(path = "/"): string {
    return `ws://127.0.0.1:${this.port}${path}`;
  }

  get connections(): number {
    return this.#pairs.size;
  }

  cut(options: { refuseFor?: number } = {}): void {
    this.#muted = false;
    this.resume();
    this.#refuseUntil = Date.now() + (options.refuseFor ?? 0);
    for (const pair of this.#pairs) end(pair);
    for (const client of this.#connecting) client.close();
    this.#connecting.clear();
  }

  muteDownstream(): void {
    this.#muted = true;
  }

  stall(): void {
    this.#stalled ??= Promise.withResolvers<void>();
  }

  resume(): void {
    this.#stalled?.resolve();
    this.#stalled = undefined;
  }

  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    this.cut();
    await Promise.all(this.#forwards);
    await Promise.all([...this.#pairs].map((pair) => pair.done));
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        const forwarding = this.#forward(conn).finally(() =>
          this.#forwards.delete(forwarding)
        );
        this.#forwards.add(forwarding);
      }
    } catch { /* listener closed */ }
  }

  async #forward(client: Deno.TcpConn): Promise<void> {
    if (Date.now() < this.#refuseUntil) return client.close();
    this.#connecting.add(client);
    let server: Deno.TcpConn;
    try {
      server = await Deno.connect({
        hostname: this.#target.hostname ?? "127.0.0.1",
        port: this.#target.port,
      });
    } catch {
      if (this.#connecting.delete(client)) client.close();
      return;
    }
    if (!this.#connecting.delete(client)) {
      // Cut while it was connecting.
      return server.close();
    }
    const pair: Pair = { client, server, done: Promise.resolve() };
    pair.done = Promise.race([
      this.#pipe(client, server, false),
      this.#pipe(server, client, true),
    ]).then(() => {
      end(pair);
      this.#pairs.delete(pair);
    });
    this.#pairs.add(pair);
  }

  async #pipe(
    from: Deno.TcpConn,
    to: Deno.TcpConn,
    downstream: boolean,
  ): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        if (downstream) await this.#stalled?.promise;
        const n = await from.read(buffer);
        if (n === null) return;
        if (downstream && this.#muted) continue;
        if (downstream) this.bytes.down += n;
        else this.bytes.up += n;
        let written = 0;
        while (written < n) {
          written += await to.write(buffer.subarray(written, n));
        }
      }
    } catch { /* cut, or the other side went away */ }
  }
}

/** Starts a proxy on 127.0.0.1 (port 0) forwarding to `target`. */
export function startProxy(target: ProxyTarget): TestProxy {
  return new TcpProxy(target);
}
