/**
 * Several endpoints on one port (`combineServers`), through the example
 * app: the chat at `/` and the operators' socket at `/admin`, each with its
 * own router, identity check and limits; one fetch, one health, one drain.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import {
  combineServers,
  createServer,
  EventRouter,
  silentLogger,
} from "@duplex-ws/duplex";
import { DuplexClient } from "@duplex-ws/client";
import { handshakeStatus, startServer, TestSocket } from "@duplex-ws/testing";
import { createApp } from "../routes/app.ts";
import type { AdminRouter } from "../routes/admin.ts";
import type { ExampleRouter } from "../routes/events.ts";
import { TEST_IDENTITY, tokenFor } from "./_auth.ts";

async function status(url: string, token?: string): Promise<number> {
  return await handshakeStatus(
    url,
    token ? { authorization: `Bearer ${token}` } : {},
  );
}

Deno.test("the example app's /admin socket: refused without an admin's identity, lists the chat's rooms with who is in them", async () => {
  const app = createApp({
    identity: { ...TEST_IDENTITY, admins: ["root"] },
    logger: silentLogger,
    presenceGrace: 0,
  });
  const server = startServer(app);
  const chat = new DuplexClient<ExampleRouter>({
    url: `${server.wsUrl}/`,
    getToken: () => tokenFor("ada"),
  });
  let admin: DuplexClient<AdminRouter> | undefined;
  try {
    await chat.join("chat.join", { room: "lobby", status: "here" });
    const adminUrl = `${server.url}/admin`;
    assert.equal(await status(adminUrl), 401, "no token");
    assert.equal(await status(adminUrl, await tokenFor("ada")), 403, "ada");
    assert.equal(await status(adminUrl, await tokenFor("root")), 101, "root");

    admin = new DuplexClient<AdminRouter>({
      url: `${server.wsUrl}/admin`,
      getToken: () => tokenFor("root"),
    });
    const { rooms } = await admin.request("admin.rooms", undefined);
    assert.equal(rooms.length, 1);
    assert.equal(rooms[0].room, "lobby");
    assert.equal(rooms[0].count, 1);
    assert.deepEqual(Object.keys(rooms[0].members), ["ada"]);

    // Each endpoint has its own events: the chat's are unknown on /admin.
    await assert.rejects(
      // deno-lint-ignore no-explicit-any
      admin.request("echo" as any, 1),
      (error: { code: string }) => error.code === "UNKNOWN_EVENT",
    );
    // One health and one metrics text for both endpoints.
    const health = app.health();
    assert.equal(health.connections, 2);
    const metrics = app.metrics();
    assert.match(metrics, /^duplex_connections 1$/m);
    assert.match(metrics, /duplex_connections\{endpoint="\/admin"\} 1/);
    assert.equal(
      metrics.match(/^# TYPE duplex_connections /gm)?.length,
      1,
      "each family once",
    );
    const healthz = await (await fetch(`${server.url}/healthz`)).json();
    assert.equal(healthz.connections, 2);
  } finally {
    chat.close();
    admin?.close();
    await server.close();
  }
});

Deno.test("combineServers: upgrades by path to each server's own limits, one shutdown closes every endpoint with 1001", async () => {
  const echo = new EventRouter().on("echo", z.unknown(), (data) => data);
  const main = createServer({ router: echo, logger: silentLogger });
  const small = createServer({
    path: "/small",
    router: new EventRouter().on("who", z.undefined(), () => "small"),
    maxConnections: 1,
    logger: silentLogger,
  });
  assert.throws(
    () =>
      combineServers(
        main,
        createServer({ router: echo, logger: silentLogger }),
      ),
    /two have the path "\/"/,
  );
  const app = combineServers(main, small);
  const server = startServer(app);
  try {
    const a = await TestSocket.open(`${server.wsUrl}/`);
    const b = await TestSocket.open(`${server.wsUrl}/small`);
    assert.deepEqual(await b.request("who"), { id: 1, data: "small" });
    // /small holds one connection; / is not affected by its cap.
    assert.equal(await status(`${server.url}/small`), 503);
    const c = await TestSocket.open(`${server.wsUrl}/`);
    assert.deepEqual(await c.request("echo", 2), { id: 1, data: 2 });
    // An unknown path is refused like a single server refuses it.
    assert.equal(await status(`${server.url}/nowhere`), 404);
    const closes = Promise.all([a, b, c].map((s) => s.waitClosed()));
    await app.shutdown();
    for (const close of await closes) assert.equal(close.code, 1001);
  } finally {
    await server.close();
  }
});
