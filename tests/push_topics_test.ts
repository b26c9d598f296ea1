/**
 * Connections that name topics (`?push_topics=1`, what the shared-socket
 * client asks for): every push of a topic carries `topic` on its envelope,
 * with or without history, presence included, and a leave the connection
 * asked for is told with `topic.exit`. A connection that did not ask gets
 * the same pushes as before, byte for byte.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import { createServer, EventRouter, silentLogger } from "@duplex-ws/duplex";
import { startServer, TestSocket } from "@duplex-ws/testing";

const router = new EventRouter<unknown, { note: { n: number } }>()
  .on(
    "join",
    z.object({ topic: z.string() }),
    ({ topic }, ctx) =>
      ctx.join(topic, { presence: { key: ctx.id, meta: {} } }),
  )
  .on("leave", z.object({ topic: z.string() }), ({ topic }, ctx) => ({
    left: ctx.leave(topic),
  }));

type Envelope = { event?: string; topic?: string; data?: unknown };

/** The next envelope of `event`, skipping others. */
async function next(socket: TestSocket, event: string): Promise<Envelope> {
  for (;;) {
    const envelope = await socket.next<Envelope>();
    if (envelope.event === event) return envelope;
  }
}

Deno.test("push_topics=1: every push of a topic names it, a leave is told with topic.exit; without it nothing changes", async () => {
  const app = createServer({
    router,
    logger: silentLogger,
    presenceInterval: 10,
    topics: [
      { match: "plain", presence: true },
      { match: "kept", history: { size: 10 } },
    ],
  });
  const server = startServer(app);
  const named = await TestSocket.open(`${server.wsUrl}?push_topics=1`);
  const plain = await TestSocket.open(server.wsUrl);
  try {
    for (const socket of [named, plain]) {
      await socket.expectReply("join", { topic: "plain" });
      await socket.expectReply("join", { topic: "kept" });
    }
    assert.equal((await next(named, "presence.state")).topic, "plain");
    await app.publish("plain", "note", { n: 1 });
    await app.publish("kept", "note", { n: 2 });

    const a = await next(named, "note");
    assert.deepEqual(a, { event: "note", topic: "plain", data: { n: 1 } });
    const b = await next(named, "note");
    assert.equal(b.topic, "kept", "a topic with history names it as before");
    assert.equal((await next(named, "presence.diff")).topic, "plain");

    const c = await next(plain, "note");
    assert.deepEqual(c, { event: "note", data: { n: 1 } }, "as before");
    assert.equal((await next(plain, "note")).topic, "kept");
    assert.equal((await next(plain, "presence.diff")).topic, undefined);

    assert.deepEqual(await named.expectReply("leave", { topic: "plain" }), {
      left: true,
    });
    const exit = await next(named, "topic.exit");
    assert.deepEqual(exit, {
      event: "topic.exit",
      topic: "plain",
      data: { topic: "plain" },
    });
    await plain.expectReply("leave", { topic: "plain" });
    await app.publish("kept", "note", { n: 3 });
    const after = await plain.next<Envelope>();
    assert.notEqual(after.event, "topic.exit", "only when asked for");
  } finally {
    await named.close();
    await plain.close();
    await server.close();
    await app.shutdown();
  }
});
