/**
 * Conflation for slow members (a topic policy's `conflate`): a member that
 * stops reading is not closed as a slow consumer; it gets the latest value
 * per key, marked `"conflated":true`, once it reads again, while a fast
 * member gets every publish. With history, the typed client takes the gap
 * as meant (no rejoin) and its position ends at the last publish.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import { createServer, EventRouter, silentLogger } from "@duplex-ws/duplex";
import { DuplexClient, type PushInfo } from "@duplex-ws/client";
import {
  delay,
  eventually,
  startProxy,
  startServer,
  TestSocket,
} from "@duplex-ws/testing";
import { buildFrame, Opcode, RawPeer } from "./_raw.ts";

type Price = { symbol: string; value: number; pad: string };
const SYMBOLS = Array.from({ length: 10 }, (_, i) => `S${i}`);
const PAD = "p".repeat(480);

const router = new EventRouter<unknown, { price: Price }>()
  .on(
    "join",
    z.object({ topic: z.string() }),
    ({ topic }, ctx) => ctx.join(topic),
  );

function app() {
  return createServer({
    router,
    logger: silentLogger,
    rateLimit: false,
    fanoutLimit: false,
    maxBufferedAmount: 256 * 1024,
    topics: [
      { match: "prices", conflate: { key: "symbol", interval: 20 } },
      {
        match: "ticks",
        history: { size: 50_000 },
        conflate: { key: "symbol", interval: 20 },
      },
    ],
  });
}

/** Publishes `count` prices round the symbols; the last value per symbol. */
async function publish(
  duplex: ReturnType<typeof app>,
  topic: string,
  count: number,
): Promise<Map<string, number>> {
  const last = new Map<string, number>();
  for (let i = 1; i <= count; i++) {
    const symbol = SYMBOLS[i % SYMBOLS.length];
    await duplex.publish(topic, "price", { symbol, value: i, pad: PAD });
    last.set(symbol, i);
    if (i % 200 === 0) await delay(1); // the sockets write meanwhile
  }
  return last;
}

Deno.test("a member that stops reading keeps its connection and gets the latest value per key, marked conflated; a fast member gets all", async () => {
  const duplex = app();
  const server = startServer(duplex);
  const slow = await RawPeer.connect(server.port);
  const fast = await TestSocket.open(server.wsUrl);
  try {
    await slow.handshake(server.port);
    await slow.write(
      buildFrame(
        Opcode.TEXT,
        JSON.stringify({ event: "join", data: { topic: "prices" }, id: 1 }),
      ),
    );
    assert.match(
      new TextDecoder().decode((await slow.readFrame())!.payload),
      /"joined":true/,
    );
    await fast.request("join", { topic: "prices" });
    let fastCount = 0;
    const fastDone = (async () => {
      while (fastCount < 40_000) {
        await fast.nextRaw(10_000);
        fastCount++;
      }
    })();
    // 40,000 prices of about 500 bytes (20 MB) while `slow` reads nothing.
    const last = await publish(duplex, "prices", 40_000);
    await fastDone;
    assert.equal(duplex.connections.size, 2, "the slow member is still open");

    const latest = new Map<string, number>();
    let frames = 0;
    let conflated = 0;
    while (SYMBOLS.some((s) => latest.get(s) !== last.get(s))) {
      const frame = await slow.readFrame(5_000);
      assert.ok(frame, "frames until the last value of every symbol");
      assert.equal(frame.opcode, Opcode.TEXT, "no close: not a slow consumer");
      const push = JSON.parse(new TextDecoder().decode(frame.payload));
      frames++;
      if (push.conflated === true) conflated++;
      latest.set(push.data.symbol, push.data.value);
    }
    assert.ok(conflated > 0, "some pushes say values were skipped");
    assert.ok(frames < 30_000, `the slow member got ${frames} of 40,000`);
    assert.deepEqual(latest, last);
  } finally {
    slow.close();
    fast.close();
    await server.close();
  }
});

Deno.test("with history, the typed client behind a stalled link takes the conflated gap as meant: no rejoin, the latest values, its position at the last publish", async () => {
  const duplex = app();
  const server = startServer(duplex);
  const proxy = startProxy({ port: server.port });
  const client = new DuplexClient<typeof router>({ url: proxy.wsUrl() });
  const rejoins: unknown[] = [];
  client.onRejoin((event) => rejoins.push(event));
  const latest = new Map<string, number>();
  const infos: PushInfo[] = [];
  let count = 0;
  client.on("price", (price, info) => {
    count++;
    latest.set(price.symbol, price.value);
    if (info.conflated) infos.push(info);
  });
  try {
    await client.join("join", { topic: "ticks" });
    proxy.stall();
    const last = await publish(duplex, "ticks", 20_000);
    proxy.resume();
    await eventually(
      () => client.position("ticks")?.offset === 20_000,
      10_000,
      "the last publish",
    );
    assert.deepEqual(latest, last);
    assert.ok(infos.length > 0 && infos[0].topic === "ticks");
    assert.ok(count < 20_000, `got ${count} of 20,000`);
    assert.equal(rejoins.length, 0, "no rejoin: the gap was meant");
    assert.equal(duplex.connections.size, 1);
  } finally {
    client.close();
    await proxy.close();
    await server.close();
  }
});

Deno.test("a topic policy cannot have both delta and conflate", () => {
  assert.throws(
    () =>
      createServer({
        router: new EventRouter(),
        logger: silentLogger,
        topics: [{ match: "x", delta: "fossil", conflate: true }],
      }),
    /both delta and conflate/,
  );
});
