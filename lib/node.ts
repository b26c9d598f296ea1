/**
 * The `./node` transport, opt-in: the same server on `node:http` and npm's
 * `ws` instead of `Deno.serve` and `Deno.upgradeWebSocket`, for deployments
 * that must bound what Deno 2.9.6 cannot:
 *
 * - **message size while a message is assembled**: `ws` counts the bytes of
 *   a fragmented message as they arrive and closes with 1009 at
 *   `maxMessageSize` (Deno assembles the whole message first, up to V8's
 *   string limit);
 * - **silent and trickling connections**: a TCP connection that has not sent
 *   a complete request head within `headerTimeout` is dropped (`Deno.serve`
 *   has no header timeout, so silent connections can hold every descriptor);
 * - **a real terminate**: a peer that stops reading is dropped at the close
 *   timeout, freeing its descriptor and its unsent data at once.
 *
 * Everything else (handshake checks, admission, routing, closes) is the
 * server's own, unchanged. Plain HTTP goes through the same `fetch`. It does
 * not run under `deno serve` or on Deno Deploy, which own the HTTP server.
 *
 * @example
 * ```ts ignore
 * import { listenNode } from "@duplex-ws/duplex/node";
 * const listener = await listenNode(app, { port: 8000, headerTimeout: 10_000 });
 * ```
 *
 * @module
 */

import { Buffer } from "node:buffer";
import http from "node:http";
import type { Socket } from "node:net";
import { Readable } from "node:stream";
import type { PushMap } from "./context.ts";
import {
  LISTEN_DEFAULTS,
  type Listener,
  type ListenOptions,
} from "./listen.ts";
import { createLogger } from "./logger.ts";
import { type Admitted, type DuplexServer, serverInternals } from "./server.ts";
import { type WebSocket, WebSocketServer } from "./_ws.ts";

/** Options of {@linkcode listenNode}. */
export interface NodeListenOptions extends ListenOptions {
  /**
   * Milliseconds a TCP connection may take to send a complete request head,
   * and an idle keep-alive connection may wait for the next one; then it is
   * dropped.
   * @default {10000}
   */
  headerTimeout?: number;
}

function toRequest(req: http.IncomingMessage): Request {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (Array.isArray(value)) {
      for (const v of value) headers.append(name, v);
    } else if (value !== undefined) headers.set(name, value);
  }
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  return new Request(`http://${req.headers.host ?? "localhost"}${req.url}`, {
    method: req.method,
    headers,
    body: hasBody ? Readable.toWeb(req) as ReadableStream : undefined,
    // @ts-ignore: `duplex` is required by fetch for streamed bodies.
    duplex: hasBody ? "half" : undefined,
  });
}

function infoOf(socket: Socket): Deno.ServeHandlerInfo {
  return {
    remoteAddr: {
      transport: "tcp",
      hostname: socket.remoteAddress ?? "",
      port: socket.remotePort ?? 0,
    },
    completed: Promise.resolve(),
  };
}

async function writeResponse(
  response: Response,
  res: http.ServerResponse,
): Promise<void> {
  res.writeHead(response.status, [...response.headers]);
  if (response.body) {
    for await (const chunk of response.body) res.write(chunk);
  }
  res.end();
}

/** Answers an upgrade attempt with a plain HTTP response, then drops the socket. */
async function writeRaw(response: Response, socket: Socket): Promise<void> {
  const body = new Uint8Array(await response.arrayBuffer());
  const head = [
    `HTTP/1.1 ${response.status} ${http.STATUS_CODES[response.status] ?? ""}`,
    ...[...response.headers].map(([name, value]) => `${name}: ${value}`),
    `content-length: ${body.byteLength}`,
    "connection: close",
    "",
    "",
  ].join("\r\n");
  socket.end(Buffer.concat([Buffer.from(head), body]));
}

/**
 * Serves `app` with `node:http` and npm's `ws` (see the module docs for
 * why). Resolves once listening.
 */
export function listenNode<State, Push extends PushMap>(
  app: DuplexServer<State, Push>,
  options: NodeListenOptions = {},
): Promise<Listener> {
  const {
    port = LISTEN_DEFAULTS.port,
    hostname = LISTEN_DEFAULTS.hostname,
    onListen = () => {},
    stopTimeout = LISTEN_DEFAULTS.stopTimeout,
    headerTimeout = LISTEN_DEFAULTS.headerTimeout,
    logger = createLogger(),
  } = options;
  const internal = serverInternals(app as DuplexServer<State, never>);
  const { maxMessageSize, idleTimeout, closeTimeout } = internal.config;
  const protocols = new WeakMap<http.IncomingMessage, string>();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: maxMessageSize,
    perMessageDeflate: false,
    clientTracking: false,
    handleProtocols: (_offered: Set<string>, req: http.IncomingMessage) =>
      protocols.get(req) ?? false,
  });
  const sockets = new Set<Socket>();
  const alive = new Map<WebSocket, boolean>();
  let closing: Promise<void> | undefined;

  const server = http.createServer((req, res) => {
    req.socket.setTimeout(0);
    app.fetch(toRequest(req), infoOf(req.socket))
      .then((response) => writeResponse(response, res))
      .catch((error) => {
        logger.error("response failed", { error });
        res.destroy();
      })
      .finally(() => {
        if (!closing) req.socket.setTimeout(headerTimeout);
      });
  });
  server.keepAliveTimeout = headerTimeout;

  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.setTimeout(headerTimeout);
    socket.on("timeout", () => socket.destroy());
  });

  server.on("upgrade", (req: http.IncomingMessage, socket: Socket, head) => {
    socket.setTimeout(0);
    internal.admit(toRequest(req), infoOf(socket)).then((admitted) => {
      if (admitted instanceof Response) return writeRaw(admitted, socket);
      if (admitted.protocol) protocols.set(req, admitted.protocol);
      // ws may refuse the upgrade itself: the capacity then goes back.
      let accepted = false;
      socket.once("close", () => {
        if (!accepted) internal.cancel(admitted as Admitted<State>);
      });
      wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
        accepted = true;
        alive.set(ws, true);
        ws.on("pong", () => alive.set(ws, true));
        ws.on("message", () => alive.set(ws, true));
        ws.once("close", () => alive.delete(ws));
        // A protocol error (a message past maxPayload, say): ws sends its
        // answer (1009…) and resumes the socket on the next tick to discard
        // the rest at wire speed. Paused after that, the rest stays in the
        // kernel and the peer until the close handshake completes or the
        // close timeout ends the socket.
        ws.once("error", () => {
          setTimeout(() => socket.pause(), 0);
          setTimeout(() => ws.terminate(), closeTimeout);
        });
        internal.accept(ws as never, admitted as Admitted<State>, true);
      });
    }).catch((error) => {
      logger.error("upgrade failed", { error });
      socket.destroy();
    });
  });

  // Deno's idleTimeout, done here: a ping after half of it with no traffic,
  // 1001 when the next check finds no pong.
  const heartbeat = idleTimeout > 0
    ? setInterval(() => {
      for (const [ws, ok] of alive) {
        if (!ok) ws.close(1001, "No response from ping frame.");
        else {
          alive.set(ws, false);
          ws.ping();
        }
      }
    }, idleTimeout * 500)
    : undefined;

  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => {
      server.off("error", reject);
      const bound = server.address() as { address: string; port: number };
      const addr: Deno.NetAddr = {
        transport: "tcp",
        hostname: bound.address,
        port: bound.port,
      };
      onListen(addr);
      let resolveFinished!: () => void;
      const finished = new Promise<void>((done) => resolveFinished = done);
      const stop = async () => {
        await app.shutdown();
        clearInterval(heartbeat);
        const stopped = new Promise<void>((done) => server.close(() => done()));
        const timer = setTimeout(() => {
          for (const socket of sockets) socket.destroy();
        }, stopTimeout);
        for (const socket of sockets) {
          if (socket.writableLength === 0) socket.end();
        }
        await stopped;
        clearTimeout(timer);
        resolveFinished();
      };
      resolve({
        addr,
        finished,
        close() {
          closing ??= stop();
          return closing;
        },
      });
    });
  });
}
