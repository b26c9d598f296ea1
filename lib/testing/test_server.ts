/**
 * A real server under test: `startServer` on 127.0.0.1 port 0, typed
 * clients it closes itself, a handshake's status, a client's next close.
 *
 * @module
 */

import {
  type ClientOptions,
  DuplexClient,
  type RouterShape,
} from "@duplex-ws/client";
import { type DuplexServer, listen, type PushMap } from "@duplex-ws/duplex";
import { within } from "./wait.ts";

/** A server under test. */
export interface TestServer {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** `ws://127.0.0.1:PORT`. */
  readonly wsUrl: string;
  /** The bound port. */
  readonly port: number;
  /**
   * A typed client of the app, connected to `path` (default `/`); closed by
   * {@linkcode TestServer.close} if the test did not close it.
   *
   * @example
   * ```ts
   * import { z } from "zod";
   * import { createServer, EventRouter, silentLogger } from "@duplex-ws/duplex";
   * import { startServer } from "@duplex-ws/testing";
   *
   * const router = new EventRouter()
   *   .on("add", z.object({ a: z.number(), b: z.number() }), ({ a, b }) => a + b);
   * const server = startServer(createServer({ router, logger: silentLogger }));
   * const client = server.client<typeof router>();
   * console.assert(await client.request("add", { a: 2, b: 3 }) === 5);
   * await server.close();
   * ```
   */
  client<R extends RouterShape>(
    options?: Partial<ClientOptions> & { path?: string },
  ): DuplexClient<R>;
  /** Closes the clients it made, drains the app and stops the HTTP server. */
  close(): Promise<void>;
}

/** Starts `app` on 127.0.0.1, port 0. */
export function startServer<S, P extends PushMap>(
  app: DuplexServer<S, P>,
): TestServer {
  const listener = listen(app, { port: 0, hostname: "127.0.0.1" });
  const port = listener.addr.port;
  // deno-lint-ignore no-explicit-any
  const clients = new Set<DuplexClient<any>>();
  return {
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    port,
    client<R extends RouterShape>(
      options: Partial<ClientOptions> & { path?: string } = {},
    ): DuplexClient<R> {
      const { path = "/", ...rest } = options;
      const client = new DuplexClient<R>({
        url: `ws://127.0.0.1:${port}${path}`,
        ...rest,
      });
      clients.add(client);
      return client;
    },
    async close() {
      await Promise.all([...clients].map(closeClient));
      await listener.close();
    },
  };
}

/**
 * The HTTP status a WebSocket handshake to `url` gets (`http://…`), with
 * `headers` added (`Authorization`, `Origin`…): 101 when accepted, else the
 * refusal's (401, 403, 429, 503…). The response is never used as a socket.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { createServer, EventRouter, silentLogger } from "@duplex-ws/duplex";
 * import { handshakeStatus, startServer } from "@duplex-ws/testing";
 *
 * const router = new EventRouter().on("echo", z.unknown(), (d) => d);
 * const server = startServer(createServer({ router, logger: silentLogger }));
 * console.assert(await handshakeStatus(`${server.url}/nowhere`) === 404);
 * await server.close();
 * ```
 */
export async function handshakeStatus(
  url: string,
  headers: Record<string, string> = {},
): Promise<number> {
  const response = await fetch(url, {
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
      "sec-websocket-version": "13",
      ...headers,
    },
  });
  await response.body?.cancel();
  return response.status;
}

/** Closes a client and waits until its socket has closed. */
async function closeClient<R extends RouterShape>(
  client: DuplexClient<R>,
): Promise<void> {
  if (client.state === "closed") return;
  const closed = new Promise<void>((resolve) => {
    const stop = client.onState((state) => {
      if (state === "closed") {
        stop();
        resolve();
      }
    });
  });
  client.close();
  await within(closed, 5000, "client close").catch(() => {});
}

/**
 * The close code and reason of a typed client's next close (the server's
 * 1001 on shutdown, 4001 on an expired token…), whatever the client does
 * next (reconnect, wait, stop); rejects after `ms` naming what was awaited.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { createServer, EventRouter, silentLogger } from "@duplex-ws/duplex";
 * import { nextClose, startServer } from "@duplex-ws/testing";
 *
 * const router = new EventRouter().on("bye", z.undefined(), (_d, ctx) => {
 *   ctx.close(4000, "bye");
 * });
 * const server = startServer(createServer({ router, logger: silentLogger }));
 * const client = server.client<typeof router>();
 * client.emit("bye", undefined);
 * console.assert((await nextClose(client)).code === 4000);
 * await server.close();
 * ```
 */
export function nextClose<R extends RouterShape>(
  client: DuplexClient<R>,
  ms = 5000,
): Promise<{ code: number; reason: string }> {
  let stop = () => {};
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    stop = client.onState((state) => {
      if (state !== "open" && state !== "connecting" && client.lastClose) {
        resolve(client.lastClose);
      }
    });
  });
  return within(closed, ms, "the client's next close").finally(stop);
}
