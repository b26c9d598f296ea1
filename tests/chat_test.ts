import assert from "node:assert/strict";
import { silentLogger } from "@duplex-ws/duplex";
import { createApp } from "../routes/app.ts";
import { startServer, TestSocket } from "@duplex-ws/duplex/testing";

type Push = { event: string; data: Record<string, unknown> };

/** Opens a socket as `user` and swallows the welcome push. */
async function member(url: string, user: string): Promise<TestSocket> {
  const socket = await TestSocket.open(`${url}/?user=${user}`);
  assert.equal((await socket.next()).event, "welcome");
  return socket;
}

/** The next push with this event name, skipping others. */
async function nextEvent(socket: TestSocket, event: string): Promise<Push> {
  for (;;) {
    const message = await socket.next<Push>();
    if (message.event === event) return message;
  }
}

Deno.test("chat: join, say to every member (sender included), presence, leave", async () => {
  const app = createApp({ logger: silentLogger });
  const server = startServer(app);
  const ada = await member(server.wsUrl, "ada");
  const bob = await member(server.wsUrl, "bob");
  try {
    assert.deepEqual(await ada.request("chat.join", { room: "lobby" }), {
      id: 1,
      data: { room: "lobby", count: 1 },
    });
    assert.equal((await nextEvent(ada, "chat.presence")).data.count, 1);
    assert.deepEqual((await bob.request("chat.join", { room: "lobby" })).data, {
      room: "lobby",
      count: 2,
    });
    const presence = await nextEvent(ada, "chat.presence");
    assert.equal(presence.data.count, 2);
    assert.equal(typeof presence.data.version, "number");

    const said = await ada.request("chat.say", {
      room: "lobby",
      text: "hello",
    });
    assert.equal(typeof (said.data as { at: number }).at, "number");
    for (const socket of [ada, bob]) {
      const message = await nextEvent(socket, "chat.message");
      assert.deepEqual(
        { ...message.data, at: 0 },
        { room: "lobby", from: "ada", text: "hello", at: 0 },
      );
    }
    assert.deepEqual((await bob.request("chat.who", { room: "lobby" })).data, {
      room: "lobby",
      count: 2,
    });
    assert.deepEqual(
      (await bob.request("chat.leave", { room: "lobby" })).data,
      { room: "lobby", left: true },
    );
    assert.equal((await nextEvent(ada, "chat.presence")).data.count, 1);
    assert.deepEqual(
      (await bob.request("chat.leave", { room: "lobby" })).data,
      { room: "lobby", left: false },
    );
  } finally {
    await ada.close();
    await bob.close();
    await server.close();
  }
});

Deno.test("chat: a closed connection leaves its rooms by itself and presence follows", async () => {
  const app = createApp({ logger: silentLogger });
  const server = startServer(app);
  const ada = await member(server.wsUrl, "ada");
  const bob = await member(server.wsUrl, "bob");
  try {
    await ada.request("chat.join", { room: "a" });
    await bob.request("chat.join", { room: "a" });
    await bob.request("chat.join", { room: "b" });
    await nextEvent(ada, "chat.presence"); // 1
    await nextEvent(ada, "chat.presence"); // 2
    await bob.close();
    const after = await nextEvent(ada, "chat.presence");
    assert.deepEqual({ ...after.data, version: 0 }, {
      room: "a",
      count: 1,
      version: 0,
    });
    assert.equal((await app.presence("b")).count, 0);
  } finally {
    await ada.close();
    await server.close();
  }
});

Deno.test("chat: refusals are error envelopes", async (t) => {
  const app = createApp({ logger: silentLogger, maxTopicsPerConnection: 2 });
  const server = startServer(app);
  const ada = await member(server.wsUrl, "ada");
  const errorOf = (reply: Record<string, unknown>) =>
    (reply.error as { code: string }).code;
  try {
    await t.step("BAD_TOPIC for a room name outside the rules", async () => {
      for (const room of ["", "../etc", "a b", "x".repeat(129)]) {
        assert.equal(
          errorOf(await ada.request("chat.join", { room })),
          "BAD_TOPIC",
          room,
        );
      }
    });
    await t.step(
      "NOT_A_MEMBER for saying something in a room not joined",
      async () => {
        assert.equal(
          errorOf(
            await ada.request("chat.say", { room: "elsewhere", text: "hi" }),
          ),
          "NOT_A_MEMBER",
        );
      },
    );
    await t.step("INVALID_DATA for an empty or oversized text", async () => {
      await ada.request("chat.join", { room: "r1" });
      assert.equal(
        errorOf(await ada.request("chat.say", { room: "r1", text: "" })),
        "INVALID_DATA",
      );
      assert.equal(
        errorOf(
          await ada.request("chat.say", { room: "r1", text: "x".repeat(2001) }),
        ),
        "INVALID_DATA",
      );
    });
    await t.step("TOO_MANY_TOPICS past maxTopicsPerConnection", async () => {
      await ada.request("chat.join", { room: "r2" });
      assert.equal(
        errorOf(await ada.request("chat.join", { room: "r3" })),
        "TOO_MANY_TOPICS",
      );
    });
    await t.step(
      "the sender's name comes from its connection, not the payload",
      async () => {
        await ada.request("chat.say", {
          room: "r1",
          text: "hi",
          from: "mallory",
        });
        assert.equal((await nextEvent(ada, "chat.message")).data.from, "ada");
      },
    );
  } finally {
    await ada.close();
    await server.close();
  }
});

Deno.test("server.publish reaches every member of a topic once, in publish order", async () => {
  const app = createApp({ logger: silentLogger });
  const server = startServer(app);
  const sockets = await Promise.all(
    ["a", "b", "c"].map((u) => member(server.wsUrl, u)),
  );
  try {
    for (const socket of sockets) {
      await socket.request("chat.join", { room: "news" });
    }
    for (let i = 0; i < 100; i++) {
      await app.publish("news", "chat.message", {
        room: "news",
        from: "server",
        text: `${i}`,
        at: i,
      });
    }
    for (const socket of sockets) {
      const texts: string[] = [];
      while (texts.length < 100) {
        const push = await nextEvent(socket, "chat.message");
        texts.push(push.data.text as string);
      }
      assert.deepEqual(texts, Array.from({ length: 100 }, (_, i) => `${i}`));
    }
  } finally {
    for (const socket of sockets) await socket.close();
    await server.close();
  }
});
