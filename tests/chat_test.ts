import assert from "node:assert/strict";
import { silentLogger } from "@duplex-ws/duplex";
import { type AppOptions, createApp } from "../routes/app.ts";
import { colorOf } from "../routes/chat.ts";
import { startServer, TestSocket } from "@duplex-ws/testing";
import { TEST_IDENTITY, tokenFor } from "./_auth.ts";

type Push = { event: string; data: Record<string, unknown> };

/** Opens a socket as `user` and swallows the welcome push. */
async function member(url: string, user: string): Promise<TestSocket> {
  const socket = await TestSocket.open(`${url}/`, {
    token: await tokenFor(user),
  });
  assert.equal((await socket.next()).event, "welcome");
  return socket;
}

/** What a chat test gets: the app, and members opened by name (closed after it). */
interface Chat {
  app: ReturnType<typeof createApp>;
  member(user: string): Promise<TestSocket>;
}

/**
 * Runs `body` against the example app on a port (presence without grace
 * unless `options` say), then closes every member it opened and the server.
 */
async function withChat(
  options: AppOptions,
  body: (chat: Chat) => Promise<void>,
): Promise<void> {
  const app = createApp({
    identity: TEST_IDENTITY,
    logger: silentLogger,
    presenceGrace: 0,
    ...options,
  });
  const server = startServer(app);
  const opened: TestSocket[] = [];
  try {
    await body({
      app,
      member: async (user) => {
        const socket = await member(server.wsUrl, user);
        opened.push(socket);
        return socket;
      },
    });
  } finally {
    for (const socket of opened) await socket.close();
    await server.close();
  }
}

/** The next push with this event name, skipping others. */
async function nextEvent(socket: TestSocket, event: string): Promise<Push> {
  for (;;) {
    const message = await socket.next<Push>();
    if (message.event === event) return message;
  }
}

Deno.test("chat: join, say to every member (sender included), leave", () =>
  withChat({}, async ({ member }) => {
    const ada = await member("ada");
    const bob = await member("bob");
    const joined = await ada.request("chat.join", { room: "lobby" });
    const { epoch } = (joined.data as { position: { epoch: string } }).position;
    assert.deepEqual(joined, {
      id: 1,
      data: {
        room: "lobby",
        count: 1,
        topic: "lobby",
        position: { offset: 0, epoch },
      },
    });
    assert.deepEqual((await bob.request("chat.join", { room: "lobby" })).data, {
      room: "lobby",
      count: 2,
      topic: "lobby",
      position: { offset: 0, epoch },
    });
    const said = await ada.request("chat.say", {
      room: "lobby",
      text: "hello",
    });
    assert.equal(typeof (said.data as { at: number }).at, "number");
    assert.deepEqual((said.data as { position: unknown }).position, {
      offset: 1,
      epoch,
    });
    for (const socket of [ada, bob]) {
      const message = await nextEvent(socket, "chat.message");
      assert.deepEqual(
        { ...message.data, at: 0 },
        { room: "lobby", from: "ada", text: "hello", at: 0, offset: 1, epoch },
      );
    }
    assert.deepEqual(
      (await bob.request("chat.leave", { room: "lobby" })).data,
      { room: "lobby", left: true },
    );
    assert.deepEqual(
      (await bob.request("chat.leave", { room: "lobby" })).data,
      { room: "lobby", left: false },
    );
  }));

Deno.test("chat presence: a snapshot on join, then diffs with each member's status and colour", () =>
  withChat({}, async ({ member }) => {
    const ada = await member("ada");
    const bob = await member("bob");
    await ada.request("chat.join", { room: "lobby", status: "here" });
    const first = await nextEvent(ada, "presence.state");
    assert.deepEqual(first.data, {
      topic: "lobby",
      members: { ada: { status: "here", color: colorOf("ada") } },
      count: 1,
    });
    await bob.request("chat.join", { room: "lobby" });
    const snapshot = await nextEvent(bob, "presence.state");
    assert.deepEqual(Object.keys(snapshot.data.members as object).sort(), [
      "ada",
      "bob",
    ]);
    // Changes within one interval go out as one diff: ada's own join may
    // ride along with bob's.
    const joined = await nextEvent(ada, "presence.diff");
    assert.deepEqual(
      (joined.data.joins as Record<string, unknown>).bob,
      { status: "", color: colorOf("bob") },
    );
    assert.deepEqual([joined.data.leaves, joined.data.count], [{}, 2]);
    const who = await ada.request("chat.who", { room: "lobby" });
    assert.deepEqual(who.data, {
      room: "lobby",
      count: 2,
      members: [
        { name: "ada", status: "here", color: colorOf("ada") },
        { name: "bob", status: "", color: colorOf("bob") },
      ],
    });
    await bob.request("chat.leave", { room: "lobby" });
    const left = await nextEvent(ada, "presence.diff");
    assert.deepEqual(left.data, {
      topic: "lobby",
      joins: {},
      leaves: { bob: { status: "", color: colorOf("bob") } },
      count: 1,
    });
  }));

Deno.test("chat presence: one entry per user however many tabs; a closed tab leaves only when the last one goes", () =>
  withChat({}, async ({ member }) => {
    const watcher = await member("watcher");
    const tab1 = await member("ada");
    const tab2 = await member("ada");
    await watcher.request("chat.join", { room: "r" });
    await tab1.request("chat.join", { room: "r" });
    await tab2.request("chat.join", { room: "r" });
    assert.equal((await nextEvent(tab2, "presence.state")).data.count, 2);
    // The watcher has been told ada is here (a join and a leave inside one
    // interval would cancel out, and it would hear of neither).
    let joined = await nextEvent(watcher, "presence.diff");
    while (!("ada" in (joined.data.joins as object))) {
      joined = await nextEvent(watcher, "presence.diff");
    }
    await tab1.close();
    await tab2.request("chat.say", { room: "r", text: "still here" });
    await nextEvent(watcher, "chat.message");
    const who = await watcher.request("chat.who", { room: "r" });
    assert.equal((who.data as { count: number }).count, 2);
    await tab2.close();
    let diff = await nextEvent(watcher, "presence.diff");
    while (!("ada" in (diff.data.leaves as object))) {
      diff = await nextEvent(watcher, "presence.diff");
    }
    assert.equal(diff.data.count, 1);
  }));

Deno.test("chat presence: a member who comes back within the grace period never shows as leaving", () =>
  withChat({ presenceGrace: 1000 }, async ({ member }) => {
    const watcher = await member("watcher");
    const ada = await member("ada");
    const pushes: Push[] = [];
    await watcher.request("chat.join", { room: "r" });
    await ada.request("chat.join", { room: "r" });
    await nextEvent(watcher, "presence.diff"); // ada joined
    await ada.close();
    const back = await member("ada");
    await back.request("chat.join", { room: "r" });
    // Well past the grace period: no diff at all was sent.
    await back.request("chat.say", { room: "r", text: "back" });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await back.request("chat.say", { room: "r", text: "again" });
    for (;;) {
      const push = await watcher.next<Push>();
      pushes.push(push);
      if (push.event === "chat.message" && push.data.text === "again") break;
    }
    assert.deepEqual(
      pushes.filter((p) => p.event === "presence.diff"),
      [],
    );
    await back.close();
  }));

Deno.test("chat presence: joins and leaves in a loop make at most one diff per interval, and are rate limited", () =>
  withChat({ presenceInterval: 200 }, async ({ member }) => {
    const watcher = await member("watcher");
    const flapper = await member("flapper");
    await watcher.request("chat.join", { room: "r" });
    await nextEvent(watcher, "presence.state");
    const started = performance.now();
    let limited = 0;
    for (let i = 0; i < 200; i++) {
      const reply = await flapper.request(
        i % 2 ? "chat.leave" : "chat.join",
        { room: "r" },
      );
      if (
        (reply.error as { code: string } | undefined)?.code === "RATE_LIMITED"
      ) {
        limited++;
      }
    }
    const elapsed = performance.now() - started;
    assert.ok(limited > 0, "joins and leaves past the rate were refused");
    await new Promise((resolve) => setTimeout(resolve, 400));
    // Everything the watcher got meanwhile: the echo's reply comes last.
    await watcher.request("echo", "marker");
    let diffs = 0;
    for (;;) {
      const push = await watcher.next<Push>(100).catch(() => undefined);
      if (push === undefined) break;
      if (push.event === "presence.diff") diffs++;
    }
    // One per 200 ms interval at most (plus the one in flight at the end).
    assert.ok(diffs <= Math.ceil((elapsed + 400) / 200) + 1, `${diffs} diffs`);
  }));

Deno.test("chat: a closed connection leaves its rooms by itself and presence follows", () =>
  withChat({}, async ({ member, app }) => {
    const ada = await member("ada");
    const bob = await member("bob");
    await ada.request("chat.join", { room: "a" });
    await bob.request("chat.join", { room: "a" });
    await bob.request("chat.join", { room: "b" });
    let diff = await nextEvent(ada, "presence.diff");
    while (!("bob" in (diff.data.joins as object))) {
      diff = await nextEvent(ada, "presence.diff");
    }
    await bob.close();
    diff = await nextEvent(ada, "presence.diff");
    assert.deepEqual(
      [Object.keys(diff.data.leaves as object), diff.data.count],
      [
        ["bob"],
        1,
      ],
    );
    assert.equal((await app.presence("b")).count, 0);
  }));

Deno.test("chat: refusals are error envelopes", (t) =>
  withChat({ maxTopicsPerConnection: 2 }, async ({ member }) => {
    const ada = await member("ada");
    const errorOf = (reply: Record<string, unknown>) =>
      (reply.error as { code: string }).code;
    await t.step("BAD_TOPIC for a room name outside the rules", async () => {
      for (const room of ["../etc", "a b", "é"]) {
        assert.equal(
          errorOf(await ada.request("chat.join", { room })),
          "BAD_TOPIC",
          room,
        );
      }
    });
    await t.step(
      "INVALID_DATA for an empty or overlong room name, never echoed",
      async () => {
        for (const room of ["", "x".repeat(129), "y".repeat(100_000)]) {
          const reply = await ada.request("chat.say", { room, text: "hi" });
          assert.equal(errorOf(reply), "INVALID_DATA");
          assert.ok(
            JSON.stringify(reply).length < 500,
            "the name is not echoed",
          );
        }
      },
    );
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
  }));

Deno.test("server.publish reaches every member of a topic once, in publish order", () =>
  withChat({}, async ({ member, app }) => {
    const sockets = await Promise.all(
      ["a", "b", "c"].map((u) => member(u)),
    );
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
  }));
