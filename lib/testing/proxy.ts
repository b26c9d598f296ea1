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
  /** Cuts everything and stops listening. */
  close(): Promise<void>;
}

interface Pair {
  client: Deno.TcpConn;
  server: Deno.TcpConn;
  done: Promise<void>;
}

/** Starts a proxy on 127.0.0.1 (port 0) forwarding to `target`. */
export function startProxy(target: ProxyTarget): TestProxy {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pairs = new Set<Pair>();
  /** Accepted, waiting for the target. */
  const connecting = new Set<Deno.TcpConn>();
  const forwards = new Set<Promise<void>>();
  let refuseUntil = 0;
  let muted = false;

  const end = (pair: Pair) => {
    for (const conn of [pair.client, pair.server]) {
      try {
        conn.close();
      } catch { /* closed already */ }
    }
  };

  const pipe = async (
    from: Deno.TcpConn,
    to: Deno.TcpConn,
    downstream: boolean,
  ) => {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buffer);
        if (n === null) return;
        if (downstream && muted) continue;
        let written = 0;
        while (written < n) {
          written += await to.write(buffer.subarray(written, n));
        }
      }
    } catch { /* cut, or the other side went away */ }
  };

  const forward = async (client: Deno.TcpConn) => {
    if (Date.now() < refuseUntil) return client.close();
    connecting.add(client);
    let server: Deno.TcpConn;
    try {
      server = await Deno.connect({
        hostname: target.hostname ?? "127.0.0.1",
        port: target.port,
      });
    } catch {
      if (connecting.delete(client)) client.close();
      return;
    }
    if (!connecting.delete(client)) {
      // Cut while it was connecting.
      return server.close();
    }
    const pair: Pair = { client, server, done: Promise.resolve() };
    pair.done = Promise.race([
      pipe(client, server, false),
      pipe(server, client, true),
    ]).then(() => {
      end(pair);
      pairs.delete(pair);
    });
    pairs.add(pair);
  };

  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        const forwarding = forward(conn).finally(() =>
          forwards.delete(forwarding)
        );
        forwards.add(forwarding);
      }
    } catch { /* listener closed */ }
  })();

  return {
    port: (listener.addr as Deno.NetAddr).port,
    wsUrl: (path = "/") =>
      `ws://127.0.0.1:${(listener.addr as Deno.NetAddr).port}${path}`,
    get connections() {
      return pairs.size;
    },
    cut(options = {}) {
      muted = false;
      refuseUntil = Date.now() + (options.refuseFor ?? 0);
      for (const pair of pairs) end(pair);
      for (const client of connecting) client.close();
      connecting.clear();
    },
    muteDownstream() {
      muted = true;
    },
    async close() {
      listener.close();
      await accepting;
      this.cut();
      await Promise.all(forwards);
      await Promise.all([...pairs].map((pair) => pair.done));
    },
  };
}
