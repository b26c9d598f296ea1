/**
 * Behind a front with an idle timeout (a load balancer that ends a
 * connection no byte crossed for a while: AWS ALB's 60 s, nginx's
 * `proxy_read_timeout` 60 s, Cloudflare's 100 s), the heartbeat keeps a
 * silent client connected: the server pings a connection silent for half
 * of `idleTimeout`, and the pong crosses the front too. Without the
 * heartbeat, the front ends it. (`docs/OPERATIONS.md`, "Behind a proxy or
 * load balancer".)
 */

import assert from "node:assert/strict";
import {
  delay,
  startProxy,
  startServer,
  type TestProxy,
  TestSocket,
} from "@duplex-ws/testing";
import { createTestApp } from "./_app.ts";

/** The front's idle timeout, in milliseconds. */
const FRONT_IDLE = 1_500;

/**
 * Makes `proxy` a front with an idle timeout: its connections are cut once
 * no byte crossed it, either way, for `idle` ms (one connection at a time).
 */
function idleFront(proxy: TestProxy, idle: number): () => void {
  let [seen, since] = [-1, Date.now()];
  const timer = setInterval(() => {
    const bytes = proxy.bytes.up + proxy.bytes.down;
    if (bytes !== seen) [seen, since] = [bytes, Date.now()];
    else if (Date.now() - since >= idle) proxy.cut();
  }, 50);
  return () => clearInterval(timer);
}

/** A silent client behind the front for `hold` ms: whether it is still open. */
async function silentBehindFront(idleTimeout: number, hold: number) {
  const { app } = createTestApp({ idleTimeout });
  const server = startServer(app);
  const proxy = startProxy({ port: server.port });
  const stop = idleFront(proxy, FRONT_IDLE);
  const socket = await TestSocket.open(proxy.wsUrl());
  try {
    await delay(hold);
    return socket.ws.readyState === WebSocket.OPEN &&
      proxy.connections === 1;
  } finally {
    stop();
    await socket.close().catch(() => {});
    await proxy.close();
    await server.close();
  }
}

Deno.test("behind a front that ends connections idle for 1.5 s, a silent client stays connected: the heartbeat (idleTimeout 2 s) pings it after 1 s of silence", async () => {
  assert.equal(await silentBehindFront(2, 5_000), true);
});

Deno.test("behind the same front, with the heartbeat off (idleTimeout 0), the silent client is cut", async () => {
  assert.equal(await silentBehindFront(0, FRONT_IDLE + 1_000), false);
});
