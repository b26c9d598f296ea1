/**
 * History and recovery on one process (the local engine): positions,
 * recovery after a dropped connection, the seam under full-speed publishing,
 * `recovered: false` when history does not reach back, recent history on a
 * first join, idempotent publishes, and the memory bounds.
 */

import assert from "node:assert/strict";
import { LocalBackplane, silentLogger } from "@duplex-ws/duplex";
import { delay, startServer, TestSocket } from "@duplex-ws/testing";
import { createApp } from "../routes/app.ts";
import { MemoryHistory } from "../lib/core/pubsub/history.ts";
import { positionedHead } from "@duplex-ws/protocol";
import { buildFrame, Opcode, RawPeer } from "./_raw.ts";
import { TEST_IDENTITY, tokenFor } from "./_auth.ts";

type Push = {
  event?: string;
  id?: number;
  data?: Record<string, unknown>;
  error?: { code: string };
};
type Position = { offset: number; epoch: string };

async function member(url: string, user: string): Promise<TestSocket> {
  const socket = await TestSocket.open(`${url}/`, {
    token: await tokenFor(user),
  });
  assert.equal((await socket.next()).event, "welcome");
  return socket;
}

/** The texts of the next `count` chat messages, with their offsets. */
async function said(
  socket: TestSocket,
  count: number,
): Promise<{ text: string; offset: number }[]> {
  const out: { text: string; offset: number }[] = [];
  while (out.length < count) {
    const push = await socket.next<Push>();
    if (push.event === "chat.message") {
      out.push({
        text: push.data!.text as string,
        offset: push.data!.offset as number,
      });
    }
  }
  return out;
}

/** Everything a socket receives within `ms`, chat messages only. */
async function restOf(socket: TestSocket, ms = 200): Promise<string[]> {
  const out: string[] = [];
  for (;;) {
    const push = await socket.next<Push>(ms).catch(() => undefined);
    if (push === undefined) return out;
    if (push.event === "chat.message") out.push(push.data!.text as string);
  }
}

const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

Deno.test("MemoryHistory numbers, trims by size and age, and reads back", () => {
  let now = 0;
  const history = new MemoryHistory({
    maxTopics: 10,
    maxBytes: 1 << 20,
    now: () => now,
  });
  const policy = { size: 3, ttl: 1000, keyTtl: 1000 };
  const head = (n: number) => positionedHead("m", "t", { n });
  for (let i = 1; i <= 5; i++) {
    now = i * 100;
    assert.equal(history.append("t", head(i), policy).offset, i);
  }
  const read = history.read("t", 0, 10, 1000);
  assert.deepEqual(read.entries.map((e) => e.offset), [3, 4, 5]);
  assert.equal(read.top, 5);
  assert.equal(read.first, 3);
  assert.deepEqual(
    history.read("t", 3, 10, 1000).entries.map((e) => e.offset),
    [4, 5],
  );
  assert.deepEqual(
    history.read("t", undefined, 2, 1000).entries.map((e) => e.offset),
    [4, 5],
  );
  // Age: at t=1350 entries older than 1000 ms (t < 350) are not replayed.
  now = 1350;
  assert.deepEqual(
    history.read("t", 0, 10, 1000).entries.map((e) => e.offset),
    [4, 5],
  );
  assert.match(
    read.entries[0].text,
    /"n":3,"offset":3,"epoch":"[0-9a-z]+"\}\}$/,
  );
});

Deno.test("MemoryHistory: an idempotency key gets its first position back", () => {
  const history = new MemoryHistory({ maxTopics: 10, maxBytes: 1 << 20 });
  const policy = { size: 10, ttl: 60_000, keyTtl: 60_000, key: "k1" };
  const first = history.append("t", positionedHead("m", "t", { a: 1 }), policy);
  const again = history.append("t", positionedHead("m", "t", { a: 1 }), policy);
  assert.equal(first.duplicate, false);
  assert.deepEqual([again.offset, again.epoch, again.duplicate], [
    first.offset,
    first.epoch,
    true,
  ]);
  assert.equal(history.read("t", 0, 10, 60_000).top, 1);
});

Deno.test("MemoryHistory stays within its caps: least recently published topics go, and start a new epoch", () => {
  const history = new MemoryHistory({ maxTopics: 5, maxBytes: 50_000 });
  const policy = { size: 1000, ttl: 60_000, keyTtl: 60_000 };
  const big = "x".repeat(2000);
  const epochs = new Map<string, string>();
  for (let i = 0; i < 200; i++) {
    const topic = `t${i % 20}`;
    const appended = history.append(
      topic,
      positionedHead("m", topic, { big }),
      policy,
    );
    if (!epochs.has(topic)) epochs.set(topic, appended.epoch);
    assert.ok(history.bytes <= 50_000, `${history.bytes} bytes`);
    assert.ok(history.topics <= 5);
  }
  // t0 went long ago: reading it finds a new epoch.
  assert.notEqual(history.read("t0", 0, 10, 60_000).epoch, epochs.get("t0"));
});

Deno.test("history: every chat.message has a contiguous offset and the room's epoch", async () => {
  const app = createApp({ identity: TEST_IDENTITY, logger: silentLogger });
  const server = startServer(app);
  const ada = await member(server.wsUrl, "ada");
  try {
    const joined = await ada.request("chat.join", { room: "r" });
    const { epoch } = (joined.data as { position: Position }).position;
    for (let i = 0; i < 20; i++) {
      ada.json({ event: "chat.say", data: { room: "r", text: `${i}` } });
    }
    const got = await said(ada, 20);
    assert.deepEqual(got.map((m) => m.offset), range(1, 20));
    assert.deepEqual(got.map((m) => m.text), range(0, 19).map(String));
    const push = await ada.request("chat.say", { room: "r", text: "last" });
    assert.deepEqual((push.data as { position: Position }).position, {
      offset: 21,
      epoch,
    });
  } finally {
    await ada.close();
    await server.close();
  }
});

Deno.test("recovery: a member whose TCP dropped gets exactly the 200 messages it missed, in order, before live ones", async () => {
  const app = createApp({ identity: TEST_IDENTITY, logger: silentLogger });
  const server = startServer(app);
  const talker = await member(server.wsUrl, "talker");
  // The member is a raw TCP peer, so its connection can drop without a close.
  const peer = await RawPeer.connect(server.port);
  try {
    await peer.handshake(server.port, {
      authorization: `Bearer ${await tokenFor("ada")}`,
    });
    await talker.request("chat.join", { room: "r" });
    await peer.write(buildFrame(
      Opcode.TEXT,
      JSON.stringify({
        event: "chat.join",
        data: { room: "r" },
        id: 1,
      }),
    ));
    let position: Position | undefined;
    while (!position) {
      const frame = await peer.readFrame();
      const message = JSON.parse(new TextDecoder().decode(frame!.payload));
      if (message.id === 1) position = message.data.position;
    }
    await talker.request("chat.say", { room: "r", text: "seen" });
    position = { ...position, offset: position.offset + 1 };
    peer.close(); // TCP gone, no close frame
    for (let i = 0; i < 200; i++) {
      const reply = await talker.request("chat.say", {
        room: "r",
        text: `m${i}`,
      });
      assert.equal(reply.error, undefined);
    }
    const back = await member(server.wsUrl, "ada");
    const rejoined = await back.request("chat.join", {
      room: "r",
      since: position,
    });
    assert.equal((rejoined.data as { recovered: boolean }).recovered, true);
    assert.deepEqual(
      (rejoined.data as { position: Position }).position,
      { offset: position.offset + 200, epoch: position.epoch },
    );
    // The replay came before the reply: it is all queued already, in order.
    const replayed = await said(back, 200);
    assert.deepEqual(
      replayed.map((m) => m.text),
      range(0, 199).map((i) => `m${i}`),
    );
    assert.deepEqual(
      replayed.map((m) => m.offset),
      range(position.offset + 1, position.offset + 200),
    );
    await talker.request("chat.say", { room: "r", text: "live" });
    assert.deepEqual(await restOf(back), ["live"]);
    await back.close();
  } finally {
    peer.close();
    await talker.close();
    await server.close();
  }
});

Deno.test("recovery at the seam: publishing goes on at full speed while a member recovers, no gap or duplicate", async () => {
  const app = createApp({
    identity: TEST_IDENTITY,
    logger: silentLogger,
    rateLimit: false,
    fanoutLimit: false,
  });
  const server = startServer(app);
  const talker = await member(server.wsUrl, "talker");
  const ada = await member(server.wsUrl, "ada");
  try {
    await talker.request("chat.join", { room: "r" });
    const joined = await ada.request("chat.join", { room: "r" });
    const start = (joined.data as { position: Position }).position;
    await ada.close();
    for (let i = 0; i < 100; i++) {
      talker.json({ event: "chat.say", data: { room: "r", text: `${i}` } });
    }
    await said(talker, 100);
    // Rejoin while 300 more are being said.
    const back = await member(server.wsUrl, "ada");
    let running = true;
    let sent = 100;
    const publishing = (async () => {
      while (running && sent < 400) {
        talker.json({
          event: "chat.say",
          data: { room: "r", text: `${sent++}` },
        });
        if (sent % 10 === 0) await delay(0);
      }
    })();
    const rejoined = await back.request("chat.join", {
      room: "r",
      since: start,
    });
    assert.equal((rejoined.data as { recovered: boolean }).recovered, true);
    await publishing;
    running = false;
    const got = await said(back, sent);
    assert.deepEqual(
      got.map((m) => m.offset),
      range(start.offset + 1, start.offset + sent),
    );
    assert.deepEqual(got.map((m) => m.text), range(0, sent - 1).map(String));
    assert.deepEqual(await restOf(back), []);
    await back.close();
  } finally {
    await talker.close();
    await server.close();
  }
});

Deno.test("recovery is refused, never partial: history trimmed past the position, another epoch, too many missed", async (t) => {
  const app = createApp({
    identity: TEST_IDENTITY,
    logger: silentLogger,
    maxReplay: 50,
    topics: [{ match: "*", history: { size: 100 } }],
  });
  const server = startServer(app);
  const talker = await member(server.wsUrl, "talker");
  try {
    await talker.request("chat.join", { room: "r" });
    const first = await talker.request("chat.say", { room: "r", text: "0" });
    const position = (first.data as { position: Position }).position;
    const check = async (
      since: Position,
      recovered: boolean,
      messages: number,
    ) => {
      const ada = await member(server.wsUrl, "ada");
      const reply = await ada.request("chat.join", { room: "r", since });
      assert.equal((reply.data as { recovered: boolean }).recovered, recovered);
      assert.equal((await restOf(ada)).length, messages);
      await ada.close();
    };
    await t.step("within history and the cap: recovered", async () => {
      for (let i = 1; i <= 40; i++) {
        talker.json({ event: "chat.say", data: { room: "r", text: `${i}` } });
      }
      await said(talker, 41);
      await check(position, true, 40);
    });
    await t.step(
      "more missed than maxReplay: recovered false, nothing sent",
      async () => {
        for (let i = 41; i <= 80; i++) {
          talker.json({ event: "chat.say", data: { room: "r", text: `${i}` } });
        }
        await said(talker, 40);
        await check(position, false, 0);
      },
    );
    await t.step(
      "history trimmed past the position: recovered false",
      async () => {
        for (let i = 81; i <= 200; i++) {
          talker.json({ event: "chat.say", data: { room: "r", text: `${i}` } });
        }
        await said(talker, 120);
        // 201 said so far: from 151 on, 50 are missed, within the cap.
        await check({ ...position, offset: 151 }, true, 50);
        await check(position, false, 0);
      },
    );
    await t.step(
      "another epoch, or a position from the future: recovered false",
      async () => {
        await check({ ...position, epoch: "elsewhere" }, false, 0);
        await check({ ...position, offset: 10_000 }, false, 0);
      },
    );
  } finally {
    await talker.close();
    await server.close();
  }
});

Deno.test("a first join can ask for the last N messages", async () => {
  const app = createApp({ identity: TEST_IDENTITY, logger: silentLogger });
  const server = startServer(app);
  const talker = await member(server.wsUrl, "talker");
  try {
    await talker.request("chat.join", { room: "r" });
    for (let i = 0; i < 30; i++) {
      talker.json({ event: "chat.say", data: { room: "r", text: `${i}` } });
    }
    await said(talker, 30);
    const ada = await member(server.wsUrl, "ada");
    const reply = await ada.request("chat.join", { room: "r", last: 5 });
    assert.deepEqual(
      (reply.data as { position: Position }).position.offset,
      30,
    );
    assert.deepEqual(await restOf(ada), ["25", "26", "27", "28", "29"]);
    await ada.close();
  } finally {
    await talker.close();
    await server.close();
  }
});

Deno.test("an idempotent publish: a resend with the same key answers the first position and says nothing again", async () => {
  const app = createApp({ identity: TEST_IDENTITY, logger: silentLogger });
  const server = startServer(app);
  const ada = await member(server.wsUrl, "ada");
  try {
    await ada.request("chat.join", { room: "r" });
    const first = await ada.request("chat.say", {
      room: "r",
      text: "once",
      key: "k-1",
    });
    const again = await ada.request("chat.say", {
      room: "r",
      text: "once",
      key: "k-1",
    });
    assert.deepEqual(
      (again.data as { position: Position }).position,
      (first.data as { position: Position }).position,
    );
    assert.equal((again.data as { duplicate: boolean }).duplicate, true);
    assert.deepEqual(await restOf(ada), ["once"]);
  } finally {
    await ada.close();
    await server.close();
  }
});

Deno.test("a hostile publisher of large messages to many rooms never takes history past its caps; /metrics shows it", async () => {
  const maxHistoryBytes = 262_144;
  const app = createApp({
    identity: TEST_IDENTITY,
    logger: silentLogger,
    backplane: new LocalBackplane({ maxHistoryTopics: 20, maxHistoryBytes }),
    rateLimit: false,
    fanoutLimit: false,
    topicChangesPerSecond: 0,
  });
  const server = startServer(app);
  const bystander = await member(server.wsUrl, "by");
  const mallory = await member(server.wsUrl, "mallory");
  try {
    const joined = await bystander.request("chat.join", { room: "r0" });
    const start = (joined.data as { position: Position }).position;
    const text = "x".repeat(2000);
    for (let room = 0; room < 40; room++) {
      await mallory.request("chat.join", { room: `r${room}` });
    }
    for (let round = 0; round < 3; round++) {
      for (let room = 0; room < 40; room++) {
        for (let i = 0; i < 5; i++) {
          mallory.json({ event: "chat.say", data: { room: `r${room}`, text } });
        }
      }
      await mallory.request("whoami", undefined); // after every say above
      const { history } = app.health().backplane;
      assert.ok(history!.bytes <= maxHistoryBytes, `${history!.bytes} bytes`);
      assert.ok(history!.topics <= 20, `${history!.topics} topics`);
    }
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    const bytes = Number(/^duplex_history_bytes (\d+)$/m.exec(metrics)?.[1]);
    assert.ok(bytes > 0 && bytes <= maxHistoryBytes, metrics);
    // The bystander's room was evicted long ago: its recovery is refused,
    // never partial.
    const back = await bystander.request("chat.join", {
      room: "r0",
      since: start,
    });
    assert.equal((back.data as { recovered: boolean }).recovered, false);
  } finally {
    await bystander.close();
    await mallory.close();
    await server.close();
  }
});

Deno.test("a replay is charged to the fan-out budget: rejoining with an old position over and over is refused", async () => {
  const app = createApp({
    identity: TEST_IDENTITY,
    logger: silentLogger,
    rateLimit: false,
    topicChangesPerSecond: 0,
    fanoutLimit: { deliveriesPerSecond: 300, burstSeconds: 2 },
    maxReplay: 1000,
  });
  const server = startServer(app);
  const talker = await member(server.wsUrl, "talker");
  const mallory = await member(server.wsUrl, "mallory");
  try {
    await talker.request("chat.join", { room: "r" });
    const joined = await mallory.request("chat.join", { room: "r" });
    const start = (joined.data as { position: Position }).position;
    await mallory.request("chat.leave", { room: "r" });
    for (let i = 0; i < 400; i++) {
      talker.json({ event: "chat.say", data: { room: "r", text: `m${i}` } });
    }
    await talker.request("whoami", undefined);
    // The budget holds 600 deliveries: one replay of 400 fits, the second
    // takes it into debt, the third is refused until it refills.
    const codes: (string | undefined)[] = [];
    for (let i = 0; i < 3; i++) {
      const reply = await mallory.request("chat.join", {
        room: "r",
        since: start,
      });
      codes.push((reply.error as { code: string } | undefined)?.code);
      if (!reply.error) {
        assert.equal((reply.data as { recovered: boolean }).recovered, true);
      }
    }
    assert.deepEqual(codes, [undefined, undefined, "RATE_LIMITED"]);
  } finally {
    await talker.close();
    await mallory.close();
    await server.close();
  }
});
