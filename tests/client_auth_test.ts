/**
 * The typed client and identity: `getToken` on every connect and on the
 * server's `auth.refresh` (refreshed in place: same connection, topics and
 * pending requests), auth failures as the `unauthorized` state instead of a
 * reconnect loop, and a topic the server took away is not rejoined.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import { createServer, EventRouter, silentLogger } from "@duplex-ws/duplex";
import { DuplexClient, UnauthorizedError } from "@duplex-ws/client";
import { jwtAuth } from "@duplex-ws/jwt";
import { delay, eventually, startProxy, startServer } from "@duplex-ws/testing";
import { TEST_SECRET, tokenFor } from "./_auth.ts";

type Pushes = { note: string };

/** A small app: who am I, a slow request, topics, and a room list in the token. */
function testApp() {
  const router = new EventRouter<{ user: string; rooms: string[] }, Pushes>()
    .on("whoami", z.undefined(), (_data, ctx) => ({
      id: ctx.id,
      user: ctx.state.user,
      expiresAt: ctx.identity?.expiresAt,
    }))
    .on("slow", z.number(), async (ms) => {
      await delay(ms);
      return "done";
    })
    .on(
      "join",
      z.object({ topic: z.string() }),
      ({ topic }, ctx) => ctx.join(topic),
    )
    .on("note", z.object({ topic: z.string(), text: z.string() }), async (
      { topic, text },
      ctx,
    ) => {
      await ctx.publish(topic, "note", text);
      return true;
    });
  let handshakes = 0;
  const auth = jwtAuth({
    algorithms: ["HS256"],
    key: TEST_SECRET,
    state: (claims) => ({
      user: claims.sub,
      rooms: (claims.rooms as string[] | undefined) ?? [],
    }),
    authorize: (identity, topic) =>
      !topic.startsWith("private:") || identity.state.rooms.includes(topic),
  });
  const app = createServer({
    router,
    logger: silentLogger,
    refreshGrace: 1000,
    auth: {
      ...auth,
      authenticate(request, info) {
        handshakes++;
        return auth.authenticate(request, info);
      },
    },
  });
  return { app, router, handshakes: () => handshakes };
}

Deno.test("getToken refreshes a 2 s identity in place: same connection, topics and a pending request survive several expiries", async () => {
  const { app, router } = testApp();
  const server = startServer(app);
  let tokens = 0;
  const client = new DuplexClient<typeof router>({
    url: server.wsUrl,
    getToken: () => {
      tokens++;
      return tokenFor("ada", {}, 2);
    },
  });
  const states: string[] = [];
  client.onState((state) => states.push(state));
  const notes: string[] = [];
  client.on("note", (text) => notes.push(text));
  try {
    await client.ready();
    const first = await client.request("whoami", undefined);
    await client.join("join", { topic: "room" });
    const slow = client.request("slow", 5000, { timeout: 10_000 });
    for (let i = 0; i < 5; i++) {
      await delay(1000);
      await client.request("note", { topic: "room", text: `n${i}` });
    }
    assert.equal(await slow, "done");
    const last = await client.request("whoami", undefined);
    assert.equal(last.id, first.id, "the same connection");
    assert.ok(last.expiresAt! > first.expiresAt!, "a newer identity");
    assert.ok(tokens >= 3, `${tokens} tokens`);
    assert.deepEqual(notes, ["n0", "n1", "n2", "n3", "n4"]);
    assert.deepEqual(states, ["open"], "never reconnected");
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("an auth failure is a state, not a reconnect loop: getToken rejecting, then reconnect() after a new login", async () => {
  const { app, router, handshakes } = testApp();
  const server = startServer(app);
  let loggedIn = false;
  let networkDown = 2;
  const client = new DuplexClient<typeof router>({
    url: server.wsUrl,
    minReconnectDelay: 20,
    getToken: () => {
      // A network failure first (retried), then "not signed in" (a state).
      if (networkDown-- > 0) return Promise.reject(new TypeError("offline"));
      return loggedIn
        ? tokenFor("ada")
        : Promise.reject(new UnauthorizedError("log in first"));
    },
  });
  try {
    await eventually(
      () => client.state === "unauthorized",
      2000,
      "unauthorized",
    );
    assert.equal(networkDown, -1, "the network failures were retried");
    assert.equal(client.authError?.message, "log in first");
    await delay(300);
    assert.equal(client.state, "unauthorized");
    assert.equal(handshakes(), 0, "no handshake was tried");
    loggedIn = true;
    client.reconnect();
    await client.ready();
    assert.equal((await client.request("whoami", undefined)).user, "ada");
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("a refresh for another subject ends in 4503 and the unauthorized state; a topic taken away is not rejoined", async (t) => {
  const { app, router } = testApp();
  const server = startServer(app);
  await t.step("another subject", async () => {
    let user = "ada";
    const client = new DuplexClient<typeof router>({
      url: server.wsUrl,
      getToken: () => tokenFor(user, {}, 1),
    });
    try {
      await client.ready();
      user = "mallory"; // the next token is someone else's
      await eventually(
        () => client.state === "unauthorized",
        5000,
        "unauthorized",
      );
      assert.equal(client.lastClose?.code, 4503);
    } finally {
      client.close();
    }
  });
  await t.step("a topic taken away", async () => {
    const proxy = startProxy({ port: server.port });
    let rooms = ["private:a"];
    const client = new DuplexClient<typeof router>({
      url: proxy.wsUrl(),
      minReconnectDelay: 20,
      getToken: () => tokenFor("ada", { rooms }, 1),
    });
    const left: string[] = [];
    client.on("topic.left", (push) => left.push(push.topic));
    try {
      await client.ready();
      await client.join("join", { topic: "private:a" });
      rooms = [];
      await eventually(() => left.length === 1, 5000, "topic.left");
      assert.deepEqual(left, ["private:a"]);
      // After a reconnect the client does not try to rejoin it.
      const rejoins: unknown[] = [];
      client.onRejoin((event) => rejoins.push(event));
      proxy.cut();
      await eventually(() => client.state === "reconnecting", 2000, "cut");
      await client.ready();
      await delay(200);
      assert.deepEqual(rejoins, []);
    } finally {
      client.close();
      await proxy.close();
    }
  });
  await server.close();
});
