import assert from "node:assert/strict";
import { listen, silentLogger } from "@duplex-ws/duplex";
import { DuplexClient, RequestError } from "@duplex-ws/client";
import { createApp } from "../routes/app.ts";
import type { ExampleRouter } from "../routes/events.ts";
import { freePort } from "./_process.ts";
import { delay, eventually } from "@duplex-ws/testing";
import { TEST_IDENTITY, tokenFor } from "./_auth.ts";

function serveOn(port: number) {
  const app = createApp({
    identity: TEST_IDENTITY,
    logger: silentLogger,
    drainTimeout: 500,
  });
  return { app, listener: listen(app, { port, hostname: "127.0.0.1" }) };
}

function client(
  port: number,
  user = "ada",
  options: Partial<ConstructorParameters<typeof DuplexClient>[0]> = {},
) {
  return new DuplexClient<ExampleRouter>({
    url: `ws://127.0.0.1:${port}/`,
    getToken: () => tokenFor(user),
    minReconnectDelay: 50,
    maxReconnectDelay: 200,
    ...options,
  });
}

async function opened(c: DuplexClient<ExampleRouter>): Promise<void> {
  await eventually(() => c.state === "open", 5000, "client open");
}

Deno.test("DuplexClient: typed request/reply, typed errors, pushes", async () => {
  const port = freePort();
  const { listener } = serveOn(port);
  const c = client(port);
  try {
    const welcome = new Promise<{ user: string }>((resolve) =>
      c.on("welcome", resolve)
    );
    assert.equal((await welcome).user, "ada");
    const echoed = await c.request("echo", { any: ["thing"] });
    assert.deepEqual(echoed, { any: ["thing"] });
    const me = await c.request("whoami", undefined);
    assert.equal(me.user, "ada");
    await assert.rejects(
      () => c.request("chat.say", { room: "nowhere", text: "hi" }),
      (error) => error instanceof RequestError && error.code === "NOT_A_MEMBER",
    );
    const messages: string[] = [];
    c.on("chat.message", (m) => messages.push(`${m.from}: ${m.text}`));
    const joined = await c.join("chat.join", { room: "lobby" });
    assert.equal(joined.room, "lobby");
    assert.equal(joined.count, 1);
    assert.equal(joined.topic, "lobby");
    assert.equal(joined.position?.offset, 0);
    await c.request("chat.say", { room: "lobby", text: "hello" });
    await eventually(() => messages.length === 1);
    assert.deepEqual(messages, ["ada: hello"]);
  } finally {
    c.close();
    await listener.close();
  }
});

Deno.test("DuplexClient: a request without a reply times out", async () => {
  const port = freePort();
  // A server that accepts and never answers.
  const silent = Deno.serve(
    { port, hostname: "127.0.0.1", onListen() {} },
    (request) => {
      const { socket, response } = Deno.upgradeWebSocket(request);
      socket.onmessage = () => {};
      return response;
    },
  );
  const c = client(port);
  try {
    await opened(c);
    await assert.rejects(
      () => c.request("echo", 1, { timeout: 100 }),
      (error) => error instanceof RequestError && error.code === "TIMEOUT",
    );
  } finally {
    c.close();
    await eventually(() => c.state === "closed");
    await silent.shutdown();
  }
});

Deno.test("DuplexClient: reconnects after a server restart and rejoins its rooms", async () => {
  const port = freePort();
  let server = serveOn(port);
  const ada = client(port, "ada");
  const bob = client(port, "bob");
  const states: string[] = [];
  ada.onState((state) => states.push(state));
  const got: string[] = [];
  bob.on("chat.message", (m) => got.push(m.text));
  try {
    await ada.join("chat.join", { room: "r" });
    await bob.join("chat.join", { room: "r" });
    await ada.request("chat.say", { room: "r", text: "before" });
    await eventually(() => got.includes("before"));

    await server.listener.close(); // every socket gets 1001
    await eventually(() =>
      ada.state === "reconnecting" && bob.state === "reconnecting"
    );
    assert.equal(ada.lastClose?.code, 1001);
    server = serveOn(port);
    await opened(ada);
    await opened(bob);
    // The joins were replayed: both are in "r" on the new server.
    await eventually(() => server.app.connections.size === 2);
    let count = 0;
    for (let i = 0; i < 50 && count !== 2; i++) {
      count = (await ada.request("chat.who", { room: "r" })).count;
      if (count !== 2) await delay(20);
    }
    assert.equal(count, 2);
    await ada.request("chat.say", { room: "r", text: "after" });
    await eventually(() => got.includes("after"));
    assert.deepEqual(states.slice(0, 3), ["open", "reconnecting", "open"]);
  } finally {
    ada.close();
    bob.close();
    await server.listener.close();
  }
});

Deno.test("DuplexClient: the outbox holds messages while offline, up to its limit", async () => {
  const port = freePort();
  const c = client(port, "ada", { outboxLimit: 3, maxReconnectDelay: 100 });
  try {
    // No server yet: the client is connecting / reconnecting.
    assert.ok(c.emit("echo", 1));
    assert.ok(c.emit("echo", 2));
    const reply = c.request("echo", "queued");
    assert.equal(c.queued, 3);
    assert.equal(c.emit("echo", 4), false, "the 4th message was accepted");
    await assert.rejects(
      () => c.request("echo", 5),
      (error) => error instanceof RequestError && error.code === "OUTBOX_FULL",
    );
    const { listener } = serveOn(port);
    try {
      assert.equal(
        await reply,
        "queued",
        "the queued request was sent once online",
      );
      assert.equal(c.queued, 0);
    } finally {
      c.close();
      await listener.close();
    }
  } finally {
    c.close();
  }
});

Deno.test("DuplexClient: no reconnection after 1000, 1008 or 4500-4999 unless told to; reconnection after 4000-4499", async (t) => {
  const port = freePort();
  const { listener, app } = serveOn(port);
  try {
    for (const code of [4500, 1000]) {
      await t.step(`server closes with ${code}`, async () => {
        const c = client(port);
        await opened(c);
        const connection = [...app.connections.values()].at(-1)!;
        connection.close(code, "bye");
        await eventually(() => c.state === "closed", 3000, "closed state");
        assert.equal(c.lastClose?.code, code);
        await delay(300);
        assert.equal(c.state, "closed");
      });
    }
    await t.step("server closes with 4000: come back", async () => {
      const c = client(port);
      await opened(c);
      [...app.connections.values()].at(-1)!.close(4000, "come back");
      await eventually(() => c.state === "reconnecting");
      assert.equal(c.lastClose?.code, 4000);
      await opened(c);
      c.close();
    });
    await t.step("shouldReconnect overrides the policy", async () => {
      const c = client(port, "ada", { shouldReconnect: () => true });
      await opened(c);
      [...app.connections.values()].at(-1)!.close(4500, "bye");
      await eventually(() => c.state === "reconnecting");
      await opened(c);
      c.close();
    });
  } finally {
    await listener.close();
  }
});

Deno.test("DuplexClient types follow the router (compile-time)", () => {
  type Check = DuplexClient<ExampleRouter>;
  const useIt = (c: Check) => {
    // @ts-expect-error: not an event of the router
    c.request("nope", 1);
    // @ts-expect-error: chat.say needs {room, text}
    c.request("chat.say", { room: "r" });
    // @ts-expect-error: not a push of the router
    c.on("chat.nothing", () => {});
    c.on("presence.diff", (p) => {
      const n: number = p.count;
      return n;
    });
    c.on("chat.message", (m) => {
      const from: string = m.from;
      return from;
    });
  };
  assert.equal(typeof useIt, "function");
});
