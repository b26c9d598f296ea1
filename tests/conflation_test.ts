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
import { Conflation } from "../lib/core/pubsub/conflation.ts";

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

/** A member whose unsent bytes the test drains, recording what it is sent. */
class SlowMember {
  readonly id = crypto.randomUUID();
  readonly sent: string[] = [];
  /** Bytes queued and not yet written. */
  unsent = 0;
  constructor(readonly halfCap: number) {}
  send(text: string): boolean {
    this.sent.push(text);
    this.unsent += text.length;
    return true;
  }
  room(): number {
    return this.halfCap - this.unsent;
  }
}

Deno.test("a member behind with more held than half its cap still gets every latest value, a part per interval", async () => {
  const conflation = new Conflation();
  const member = new SlowMember(64 * 1024);
  member.unsent = 64 * 1024; // behind: no room
  const settings = { key: "k", interval: 5 };
  const text = (k: number, v: number) =>
    JSON.stringify({ event: "v", data: { k, v, pad: "p".repeat(500) } });
  try {
    // 400 keys of about 530 bytes: 200 KiB held, three times the room.
    for (let v = 0; v < 2; v++) {
      for (let k = 0; k < 400; k++) {
        assert.equal(
          conflation.outgoing("t", text(k, v), settings)(member),
          undefined,
        );
      }
    }
    member.unsent = 0; // it reads again, and keeps reading
    await eventually(
      () => {
        member.unsent = 0;
        return conflation.behind === 0;
      },
      3_000,
      "everything held sent",
    );
    const latest = member.sent.map((t) => JSON.parse(t).data);
    assert.equal(latest.length, 400);
    assert.ok(latest.every((d) => d.v === 1), "only the latest values");
    assert.ok(member.sent.every((t) => t.startsWith('{"conflated":true,')));
  } finally {
    conflation.close();
  }
});

Deno.test("a publish larger than half a member's cap reaches a member that is not behind", () => {
  const conflation = new Conflation();
  const member = new SlowMember(1_000);
  try {
    const big = JSON.stringify({
      event: "v",
      data: { k: 1, pad: "p".repeat(2_000) },
    });
    assert.equal(
      conflation.outgoing("t", big, { key: "k", interval: 5 })(member),
      big,
    );
  } finally {
    conflation.close();
  }
});
