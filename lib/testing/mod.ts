/**
 * The test kit (the `./testing` entry): a real server on 127.0.0.1 port 0,
 * and a WebSocket client whose messages and close are promises that time
 * out with a message naming what was awaited. Every helper cleans up after
 * itself, so Deno's op and resource sanitizers stay on.
 *
 * @example
 * ```ts
 * import { z } from "zod";
 * import { createServer, EventRouter, silentLogger } from "@duplex-ws/duplex";
 * import { startServer, TestSocket } from "@duplex-ws/testing";
 *
 * const router = new EventRouter().on("echo", z.unknown(), (data) => data);
 * const server = startServer(createServer({ router, logger: silentLogger }));
 * const socket = await TestSocket.open(server.wsUrl);
 * console.assert((await socket.request("echo", "hi")).data === "hi");
 * await socket.close();
 * await server.close();
 * ```
 *
 * @module
 */

export { type ProxyTarget, startProxy, type TestProxy } from "./proxy.ts";
export {
  handshakeStatus,
  nextClose,
  startServer,
  type TestServer,
} from "./test_server.ts";
export {
  type ClientClose,
  TestSocket,
  type TestSocketOptions,
} from "./test_socket.ts";
export { delay, eventually, within } from "./wait.ts";
