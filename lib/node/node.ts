/**
 * The `@duplex-ws/node` transport, opt-in: the same server on `node:http` and npm's
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
 * import { listenNode } from "@duplex-ws/node";
 * const listener = await listenNode(app, { port: 8000, headerTimeout: 10_000 });
 * ```
 *
 * @module
 */

import http from "node:http";
import type { Socket } from "node:net";
import {
  createLogger,
  type DuplexServer,
  type Listener,
  ListenError,
  type ListenOptions,
  type Logger,
  type PushMap,
} from "@duplex-ws/duplex";
import { LISTEN_DEFAULTS } from "@duplex-ws/duplex/options";
import {
  ListenerLostError,
  type ServerInternals,
  serverInternals,
} from "@duplex-ws/duplex/transport";
import { type WebSocket, WebSocketServer } from "./_ws.ts";
import {
  badRequest,
  infoOf,
  toRequest,
  writeRaw,
  writeResponse,
} from "./http_bridge.ts";
import { AcceptWatch } from "./accept_watch.ts";
import { WsSocket } from "./ws_socket.ts";

/** Options of {@linkcode listenNode}. */
export interface NodeListenOptions extends ListenOptions {
  /**
   * Milliseconds a TCP connection may take to send a complete request head,
   * and an idle keep-alive connection may wait for the next one; then it is
   * dropped.
   * @default {10000}
   */
  headerTimeout?: number;
  /**
   * Negotiate permessage-deflate (RFC 7692) with clients that offer it:
   * `true` for the settings below, or your own `threshold` (bytes; smaller
   * messages go uncompressed). Each compressing connection holds zlib state
   * (with no context takeover, as here, only while a message is compressed;
   * `ws` runs at most 10 deflate jobs at once): measure memory and CPU
   * before turning it on for many connections. Deno's own transport cannot
   * negotiate it.
   * @default {false}
   */
  perMessageDeflate?: boolean | { threshold?: number };
}

/** `ws`'s deflate settings for {@linkcode NodeListenOptions.perMessageDeflate}. */
function deflateSettings(option: NodeListenOptions["perMessageDeflate"]) {
  if (!option) return false;
  return {
    threshold: (option === true ? undefined : option.threshold) ?? 1_024,
    serverNoContextTakeover: true,
    clientNoContextTakeover: true,
    concurrencyLimit: 10,
  };
}

/** What serving needs, settled once. */
interface Serving<State> {
  readonly app: DuplexServer<State, never>;
  readonly internal: ServerInternals<State>;
  readonly headerTimeout: number;
  readonly logger: Logger;
  /** Every TCP connection, to end them at close. */
  readonly sockets: Set<Socket>;
  /** Every WebSocket, for the heartbeat. */
  readonly live: Set<WsSocket>;
  /** Whether `close` has begun. */
  closing: boolean;
}

/**
 * A plain HTTP request through the app's `fetch`. The whole request (head
 * and body) must arrive within `headerTimeout`; a slow body is dropped.
 */
function serveHttp<State>(
  serving: Serving<State>,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): void {
  const { socket } = req;
  socket.setTimeout(0);
  const request = toRequest(req);
  if (request === undefined) return badRequest(socket);
  const deadline = setTimeout(() => socket.destroy(), serving.headerTimeout);
  const done = () => clearTimeout(deadline);
  req.once("end", done).once("close", done);
  if (!request.body) done();
  serving.app.fetch(request, infoOf(socket))
    .then((response) => writeResponse(response, res))
    .catch((error) => {
      serving.logger.error("response failed", { error });
      res.destroy();
    })
    .finally(() => {
      done();
      if (!serving.closing) socket.setTimeout(serving.headerTimeout);
    });
}

/** An upgrade: the server's handshake checks, then `ws` takes the socket. */
function serveUpgrade<State>(
  serving: Serving<State>,
  wss: WebSocketServer,
  protocols: WeakMap<http.IncomingMessage, string>,
  [req, socket, head]: [http.IncomingMessage, Socket, Buffer],
): void {
  socket.setTimeout(0);
  const request = toRequest(req);
  if (request === undefined) return badRequest(socket);
  const { internal, live } = serving;
  const { closeTimeout } = internal.config;
  internal.admit(request, infoOf(socket)).then((admitted) => {
    if (admitted instanceof Response) return writeRaw(admitted, socket);
    if (admitted.protocol) protocols.set(req, admitted.protocol);
    // ws may refuse the upgrade itself: the capacity then goes back.
    let accepted = false;
    socket.once("close", () => {
      if (!accepted) internal.cancel(admitted);
    });
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      accepted = true;
      const transport = new WsSocket(ws, closeTimeout);
      const driver = internal.accept(transport, admitted);
      transport.attach(driver);
      live.add(transport);
      ws.once("close", () => live.delete(transport));
      driver.opened();
    });
  }).catch((error) => {
    serving.logger.error("upgrade failed", { error });
    socket.destroy();
  });
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
    recoverFor = LISTEN_DEFAULTS.recoverFor,
    logger = createLogger(),
  } = options;
  const internal = serverInternals(app as DuplexServer<State, never>);
  const serving: Serving<State> = {
    app: app as DuplexServer<State, never>,
    internal,
    headerTimeout,
    logger,
    sockets: new Set(),
    live: new Set(),
    closing: false,
  };
  const protocols = new WeakMap<http.IncomingMessage, string>();
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: internal.config.maxMessageSize,
    perMessageDeflate: deflateSettings(options.perMessageDeflate),
    clientTracking: false,
    handleProtocols: (_offered: Set<string>, req: http.IncomingMessage) =>
      protocols.get(req) ?? false,
  });
  const server = http.createServer((req, res) => serveHttp(serving, req, res));
  server.keepAliveTimeout = headerTimeout;
  server.on("connection", (socket: Socket) => {
    serving.sockets.add(socket);
    socket.once("close", () => serving.sockets.delete(socket));
    socket.setTimeout(headerTimeout);
    socket.on("timeout", () => socket.destroy());
  });
  server.on(
    "upgrade",
    (...args: [http.IncomingMessage, Socket, Buffer]) =>
      serveUpgrade(serving, wss, protocols, args),
  );
  const { idleTimeout } = internal.config;
  const heartbeat = idleTimeout > 0
    ? setInterval(() => {
      for (const socket of serving.live) socket.heartbeat();
    }, idleTimeout * 500)
    : undefined;
  const stop = async () => {
    serving.closing = true;
    await app.shutdown();
    clearInterval(heartbeat);
    await stopServer(server, serving.sockets, stopTimeout);
  };
  const at = { port, hostname, onListen, recoverFor, logger };
  return listening(server, at, stop);
}

/** Stops accepting, ends idle sockets, and drops the rest after `stopTimeout`. */
async function stopServer(
  server: http.Server,
  sockets: Set<Socket>,
  stopTimeout: number,
): Promise<void> {
  const stopped = new Promise<void>((done) => server.close(() => done()));
  const timer = setTimeout(() => {
    for (const socket of sockets) socket.destroy();
  }, stopTimeout);
  for (const socket of sockets) {
    if (socket.writableLength === 0) socket.end();
  }
  await stopped;
  clearTimeout(timer);
}

/** Listens, and resolves with the listener once bound. */
function listening(
  server: http.Server,
  at:
    & Required<
      Pick<ListenOptions, "port" | "hostname" | "onListen" | "recoverFor">
    >
    & { logger: Logger },
  stop: () => Promise<void>,
): Promise<Listener> {
  return new Promise((resolve, reject) => {
    const refused = (error: Error & { code?: string }) => {
      const why = error.code === "EADDRINUSE"
        ? "address in use"
        : error.message;
      const where = `${at.hostname}:${at.port}`;
      reject(
        new ListenError(`cannot listen on ${where}: ${why}`, { cause: error }),
      );
    };
    server.once("error", refused);
    server.listen(at.port, at.hostname, () => {
      server.off("error", refused);
      const bound = server.address() as { address: string; port: number };
      const addr: Deno.NetAddr = {
        transport: "tcp",
        hostname: bound.address,
        port: bound.port,
      };
      at.onListen(addr);
      let closing: Promise<void> | undefined;
      let lost: (error: Error) => void = () => {};
      const finished = new Promise<void>((done, fail) => {
        lost = fail;
        // Only a close asked for ends it: a listener brought back closes too.
        server.on("close", () => closing?.then(done));
      });
      const watch = new AcceptWatch(server, {
        hostname: at.hostname,
        port: bound.port,
        recoverFor: at.recoverFor,
        logger: at.logger,
        onLost: (error) => lost(new ListenerLostError(error.message)),
      });
      resolve({
        addr,
        finished,
        close() {
          watch.stop();
          closing ??= stop();
          return closing;
        },
      });
    });
  });
}
