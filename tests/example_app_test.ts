import assert from "node:assert/strict";
import { silentLogger } from "@duplex-ws/duplex";
import { createApp } from "../routes/app.ts";
import { startServer, TestSocket } from "@duplex-ws/testing";
import { TEST_IDENTITY } from "./_auth.ts";

Deno.test("example app: HTTP routes", async (t) => {
  const app = createApp({ identity: TEST_IDENTITY, logger: silentLogger });
  await t.step("GET / is a page that says how to connect", async () => {
    const response = await app.fetch(new Request("http://localhost/"));
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /text\/html/);
    assert.match(await response.text(), /WebSocket/);
  });
  await t.step("GET /healthz is JSON 200", async () => {
    const response = await app.fetch(new Request("http://localhost/healthz"));
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), {
      status: "ok",
      connections: 0,
      lingering: 0,
      backplane: {
        kind: "local",
        state: "ok",
        history: { topics: 0, bytes: 0 },
      },
    });
  });
  await t.step(
    "anything else is a JSON 404; a wrong method a 405",
    async () => {
      const missing = await app.fetch(new Request("http://localhost/nope"));
      assert.equal(missing.status, 404);
      assert.equal((await missing.json()).error, "not_found");
      const post = await app.fetch(
        new Request("http://localhost/healthz", { method: "POST" }),
      );
      assert.equal(post.status, 405);
      assert.equal(post.headers.get("allow"), "GET");
      await post.body?.cancel();
    },
  );
  await t.step("/healthz reports shutdown with 503", async () => {
    await app.shutdown();
    const response = await app.fetch(new Request("http://localhost/healthz"));
    assert.equal(response.status, 503);
    assert.equal((await response.json()).status, "shutting_down");
  });
});

Deno.test("example app: welcome push, echo and whoami over a real socket", async () => {
  const app = createApp({ identity: TEST_IDENTITY, logger: silentLogger });
  const server = startServer(app);
  try {
    const socket = await TestSocket.open(server.wsUrl, "anything");
    const welcome = await socket.next<
      { event: string; data: { id: string; user: string } }
    >();
    assert.equal(welcome.event, "welcome");
    // No token at all: a guest.
    assert.match(welcome.data.user, /^guest-[a-z0-9]{6}$/);
    assert.deepEqual(await socket.request("echo", { deep: [1, { x: null }] }), {
      id: 1,
      data: { deep: [1, { x: null }] },
    });
    const whoami = await socket.request("whoami");
    assert.deepEqual(whoami.data, {
      id: welcome.data.id,
      user: welcome.data.user,
      protocol: "",
    });
    await socket.close();
  } finally {
    await server.close();
  }
});
