/**
 * The notification feed over real sockets and HTTP, with the test kit: a
 * POST reaches the user's sockets (and only theirs), a subscriber that was
 * cut off gets what it missed once and in order, and every bad POST has its
 * status.
 */

import assert from "node:assert/strict";
import { silentLogger } from "@duplex-ws/duplex";
import { DuplexClient } from "@duplex-ws/client";
import { issueToken } from "@duplex-ws/jwt";
import {
  delay,
  eventually,
  handshakeStatus,
  startProxy,
  startServer,
} from "@duplex-ws/testing";
import { createFeedApp, type FeedRouter } from "./app.ts";

const SECRET = "feed example test secret, 32 bytes or more";
const KEY = "notify-key-for-tests";

function app() {
  return createFeedApp({
    secret: SECRET,
    notifyKey: KEY,
    logger: silentLogger,
  });
}

const tokenFor = (user: string) =>
  issueToken({ sub: user }, { key: SECRET, expiresIn: 3600 });

async function notify(
  url: string,
  body: unknown,
  key = KEY,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const response = await fetch(`${url}/notify`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${key}`,
      "content-type": "application/json",
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

Deno.test("feed: a POST reaches the user's sockets and only theirs; everyone's feed reaches all", async () => {
  const server = startServer(app());
  try {
    const ada = server.client<FeedRouter>({ getToken: () => tokenFor("ada") });
    const bob = server.client<FeedRouter>({ getToken: () => tokenFor("bob") });
    await ada.join("feed.join", { scope: "me" });
    await bob.join("feed.join", { scope: "me" });
    await bob.join("feed.join", { scope: "all" });
    const seenByBob: string[] = [];
    bob.on("notification", (n) => seenByBob.push(n.title));

    const forAda = ada.once("notification");
    const posted = await notify(server.url, { to: "ada", title: "hi ada" });
    assert.equal(posted.status, 202);
    assert.equal(posted.json.topic, "feed.user.ada");
    assert.equal((await forAda).title, "hi ada");

    await notify(server.url, { title: "for everyone" });
    await eventually(() => seenByBob.includes("for everyone"));
    assert.deepEqual(seenByBob, ["for everyone"]);
  } finally {
    await server.close();
  }
});

Deno.test("feed: a subscriber cut off gets what was posted meanwhile, once and in order", async () => {
  const server = startServer(app());
  const proxy = startProxy({ port: server.port });
  const ada = new DuplexClient<FeedRouter>({
    url: `ws://127.0.0.1:${proxy.port}/`,
    getToken: () => tokenFor("ada"),
    minReconnectDelay: 50,
  });
  try {
    const seen: string[] = [];
    ada.on("notification", (n) => seen.push(n.title));
    await ada.join("feed.join", { scope: "me" });
    await notify(server.url, { to: "ada", title: "one" });
    await eventually(() => seen.length === 1);
    proxy.cut({ refuseFor: 300 });
    await eventually(() => ada.state === "reconnecting");
    for (const title of ["two", "three"]) {
      assert.equal(
        (await notify(server.url, { to: "ada", title })).status,
        202,
      );
    }
    await eventually(() => seen.length === 3, 5000, "the missed notifications");
    await delay(100);
    assert.deepEqual(seen, ["one", "two", "three"]);
    assert.equal(ada.recovered("feed.user.ada"), true);
  } finally {
    ada.close();
    await proxy.close();
    await server.close();
  }
});

Deno.test("feed: a wrong key is 401, a bad body 400, a large one 413; sockets need a token", async () => {
  const server = startServer(app());
  try {
    assert.equal(
      (await notify(server.url, { title: "x" }, "wrong")).status,
      401,
    );
    assert.equal((await notify(server.url, "{not json")).status, 400);
    assert.equal((await notify(server.url, { title: "" })).status, 400);
    assert.equal(
      (await notify(server.url, { to: "../x", title: "t" })).status,
      400,
    );
    const large = await notify(server.url, {
      title: "t",
      body: "x".repeat(20_000),
    });
    assert.equal(large.status, 413);
    // No token: the socket is refused.
    assert.equal(await handshakeStatus(server.url), 401);
  } finally {
    await server.close();
  }
});
