/**
 * The typed client resumes topics with history by itself: after a network
 * cut it rejoins with its last position and delivers what it missed once,
 * in order, before live pushes; it resends unacknowledged requests marked
 * `resend` with their keys; and it tells the app when recovery failed.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import { createServer, EventRouter, silentLogger } from "@duplex-ws/duplex";
import {
  DuplexClient,
  type RejoinEvent,
  RequestError,
} from "@duplex-ws/client";
import {
  delay,
  eventually,
  startProxy,
  startServer,
  type TestServer,
} from "@duplex-ws/testing";
import { type AppOptions, createApp } from "../routes/app.ts";
import type { ExampleRouter } from "../routes/events.ts";
import { TEST_IDENTITY, tokenFor } from "./_auth.ts";

type Client = DuplexClient<ExampleRouter>;

function serve(options: AppOptions = {}): TestServer {
  return startServer(
    createApp({
      identity: TEST_IDENTITY,
      logger: silentLogger,
      rateLimit: false,
      fanoutLimit: false,
      drainTimeout: 200,
      ...options,
    }),
  );
}

function client(url: string, user: string): Client {
  return new DuplexClient<ExampleRouter>({
    url,
    getToken: () => tokenFor(user),
    minReconnectDelay: 20,
    maxReconnectDelay: 100,
  });
}

/** What a client's chat.message handler saw: text and offset. */
function record(c: Client): { text: string; offset: number }[] {
  const seen: { text: string; offset: number }[] = [];
  c.on("chat.message", (m) => seen.push({ text: m.text, offset: m.offset! }));
  return seen;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

Deno.test("DuplexClient after a network cut: every missed message once, in order, then live; onRejoin says recovered", async () => {
  const server = serve();
  const proxy = startProxy({ port: server.port });
  const ada = client(proxy.wsUrl(), "ada");
  const bob = client(server.wsUrl, "bob");
  const rejoins: RejoinEvent[] = [];
  ada.onRejoin((event) => rejoins.push(event));
  const seen = record(ada);
  try {
    await ada.join("chat.join", { room: "r" });
    await bob.join("chat.join", { room: "r" });
    await bob.request("chat.say", { room: "r", text: "seen" });
    await eventually(() => seen.length === 1, 5000, "the first message");

    proxy.cut({ refuseFor: 300 }); // no close frame; reconnects are refused a while
    for (let i = 0; i < 200; i++) {
      await bob.request("chat.say", { room: "r", text: `m${i}` });
    }
    await ada.ready();
    await bob.request("chat.say", { room: "r", text: "live" });
    await eventually(() => seen.length === 202, 10_000, "202 messages");
    assert.deepEqual(
      seen.map((m) => m.text),
      ["seen", ...range(0, 199).map((i) => `m${i}`), "live"],
    );
    const first = seen[0].offset;
    assert.deepEqual(seen.map((m) => m.offset), range(first, first + 201));
    assert.ok(rejoins.length >= 1);
    assert.equal(rejoins.at(-1)!.recovered, true);
    assert.equal(rejoins.at(-1)!.topic, "r");
    assert.equal(ada.recovered("r"), true);
    assert.equal(ada.position("r")?.offset, first + 201);
  } finally {
    ada.close();
    bob.close();
    await proxy.close();
    await server.close();
  }
});

Deno.test("DuplexClient resends an unacknowledged publish with its key: done once, answered once", async () => {
  const server = serve();
  const proxy = startProxy({ port: server.port });
  const ada = client(proxy.wsUrl(), "ada");
  const bob = client(server.wsUrl, "bob");
  const adaSeen = record(ada);
  const bobSeen = record(bob);
  try {
    await ada.join("chat.join", { room: "r" });
    await bob.join("chat.join", { room: "r" });
    // The server gets the publish and does it; its reply never comes back.
    proxy.muteDownstream();
    const key = crypto.randomUUID();
    const said = ada.request(
      "chat.say",
      { room: "r", text: "once", key },
      { resend: true },
    );
    await eventually(() => bobSeen.length === 1, 5000, "bob hears it");
    proxy.cut();
    const reply = await said;
    // The resend carries the request's key: it gets the first run's reply
    // (the handler ran once), not a second run's `duplicate: true`.
    assert.equal(reply.duplicate, undefined, "the first reply, not a rerun");
    await bob.request("chat.say", { room: "r", text: "after" });
    await eventually(() => adaSeen.length === 2, 5000, "ada's two messages");
    assert.deepEqual(adaSeen.map((m) => m.text), ["once", "after"]);
    assert.deepEqual(bobSeen.map((m) => m.text), ["once", "after"]);
    assert.equal(reply.position?.offset, adaSeen[0].offset);

    // Without resend, the same loss is an error the caller sees.
    proxy.muteDownstream();
    const lost = ada.request("chat.say", { room: "r", text: "lost reply" });
    await eventually(() => bobSeen.length === 3, 5000, "bob hears it");
    proxy.cut();
    await assert.rejects(
      () => lost,
      (e) => e instanceof RequestError && e.code === "CONNECTION_LOST",
    );
  } finally {
    ada.close();
    bob.close();
    await proxy.close();
    await server.close();
  }
});

Deno.test("DuplexClient when history no longer reaches back: onRejoin says recovered false, live goes on", async () => {
  const server = serve({
    topics: [{
      match: "*",
      presence: true,
      history: { size: 10, ttl: 60_000 },
    }],
  });
  const proxy = startProxy({ port: server.port });
  const ada = client(proxy.wsUrl(), "ada");
  const bob = client(server.wsUrl, "bob");
  const rejoins: RejoinEvent[] = [];
  ada.onRejoin((event) => rejoins.push(event));
  const seen = record(ada);
  try {
    await ada.join("chat.join", { room: "r" });
    await bob.join("chat.join", { room: "r" });
    proxy.cut({ refuseFor: 200 });
    for (let i = 0; i < 50; i++) {
      await bob.request("chat.say", { room: "r", text: `m${i}` });
    }
    await ada.ready();
    await eventually(() => rejoins.length > 0, 5000, "a rejoin");
    assert.equal(rejoins[0].recovered, false);
    assert.equal(ada.recovered("r"), false);
    assert.equal(seen.length, 0, "never a partial replay");
    await bob.request("chat.say", { room: "r", text: "live" });
    await eventually(() => seen.length === 1, 5000, "the live message");
    assert.equal(seen[0].text, "live");
  } finally {
    ada.close();
    bob.close();
    await proxy.close();
    await server.close();
  }
});

Deno.test("DuplexClient: join while offline is sent once on open; ready() waits for the rejoins; once() awaits a push", async () => {
  const server = serve();
  const proxy = startProxy({ port: server.port });
  proxy.cut({ refuseFor: 200 });
  const ada = client(proxy.wsUrl(), "ada");
  const bob = client(server.wsUrl, "bob");
  try {
    const joined = ada.join("chat.join", { room: "r", last: 5 });
    await ada.ready();
    assert.equal((await joined).room, "r");
    await bob.join("chat.join", { room: "r" });
    const next = ada.once("chat.message", { filter: (m) => m.text === "b" });
    await bob.request("chat.say", { room: "r", text: "a" });
    await bob.request("chat.say", { room: "r", text: "b" });
    assert.equal((await next).text, "b");
    await assert.rejects(
      () => ada.once("chat.message", { timeout: 50 }),
      (e) => e instanceof RequestError && e.code === "TIMEOUT",
    );
    ada.close();
    await assert.rejects(
      () => ada.ready(),
      (e) => e instanceof RequestError && e.code === "CLOSED",
    );
  } finally {
    ada.close();
    bob.close();
    await proxy.close();
    await server.close();
  }
});

Deno.test("DuplexClient retries a rejoin refused for a while (BUSY, RATE_LIMITED) instead of giving up", async () => {
  const router = new EventRouter()
    .on("join", z.object({ topic: z.string() }), async ({ topic }, ctx) => {
      await delay(200); // slow enough that the second rejoin finds it busy
      return await ctx.join(topic);
    });
  const app = createServer({ router, logger: silentLogger, maxInFlight: 1 });
  const server = startServer(app);
  const proxy = startProxy({ port: server.port });
  const c = new DuplexClient<typeof router>({
    url: proxy.wsUrl(),
    minReconnectDelay: 20,
    maxReconnectDelay: 1000,
  });
  const errors: RejoinEvent[] = [];
  c.onRejoin((event) => event.error && errors.push(event));
  try {
    await c.join("join", { topic: "a" });
    await c.join("join", { topic: "b" });
    const [before] = app.connections.keys();
    proxy.cut();
    await c.ready();
    await eventually(
      () =>
        [...app.connections.values()].some((connection) =>
          connection.id !== before && connection.topics.size === 2
        ),
      5000,
      "both topics joined again on the new connection",
    );
    assert.deepEqual(errors, []);
  } finally {
    c.close();
    await proxy.close();
    await server.close();
  }
});
