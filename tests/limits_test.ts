/**
 * The protections: slow consumers, rate limits, in-flight cap, handshake
 * bounds, connection churn. Each keeps a bystander connection talking.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import { createServer, EventRouter, silentLogger } from "@duplex-ws/duplex";
import { createTestApp } from "./_app.ts";
import {
  buildFrame,
  handshakeHeaders,
  Opcode,
  RawPeer,
  requestHead,
} from "./_raw.ts";
import {
  delay,
  eventually,
  startServer,
  type TestServer,
  TestSocket,
} from "@duplex-ws/testing";

type Reply = Record<string, unknown> & { error?: { code: string } };

/** A connection that must keep working while another misbehaves. */
async function bystander(server: TestServer): Promise<TestSocket> {
  const socket = await TestSocket.open(server.wsUrl);
  assert.deepEqual(await socket.request("echo", "hi"), { id: 1, data: "hi" });
  return socket;
}

async function stillFine(socket: TestSocket, label: string): Promise<void> {
  const reply = await socket.request("echo", label);
  assert.equal(reply.data, label);
}

function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

Deno.test("a peer that stops reading is closed with 1013 once maxBufferedAmount is passed", async () => {
  const cap = 256 * 1024;
  const { app, observed } = createTestApp({
    maxBufferedAmount: cap,
    closeTimeout: 500,
  });
  const server = startServer(app);
  const other = await bystander(server);
  const slow = await RawPeer.connect(server.port);
  try {
    await slow.handshake(server.port);
    // Ask for 32 MiB and never read a byte of it.
    await slow.write(
      buildFrame(
        Opcode.TEXT,
        JSON.stringify({ event: "flood", data: { size: 65536, count: 512 } }),
      ),
    );
    await eventually(
      () => observed.closes.length === 1,
      5000,
      "slow consumer closed",
    );
    // Only about the cap (plus the kernel's socket buffers) was ever queued.
    const queuedBytes = observed.flooded * 65536;
    assert.ok(queuedBytes < 32 * 1024 * 1024, `queued ${queuedBytes} bytes`);
    assert.equal(app.connections.size, 1);
    await stillFine(other, "after the slow consumer");
  } finally {
    slow.close();
    await other.close();
    await server.close();
  }
});

Deno.test("a publish never waits for the slowest member of a room", async () => {
  const { app } = createTestApp({
    maxBufferedAmount: 512 * 1024,
    closeTimeout: 300,
  });
  const server = startServer(app);
  const fast = await TestSocket.open(server.wsUrl);
  const slow = await RawPeer.connect(server.port);
  try {
    await slow.handshake(server.port);
    await eventually(() => app.connections.size === 2);
    for (const connection of app.connections.values()) connection.join("room");
    const started = performance.now();
    for (let i = 0; i < 800; i++) {
      // As fast as the event loop allows: yield to I/O every 10 messages.
      await app.publish(
        "room",
        "pushed",
        { n: i, pad: "p".repeat(16_000) } as never,
      );
      if (i % 10 === 9) await delay(1);
    }
    const took = performance.now() - started;
    assert.ok(took < 5000, `800 publishes took ${took} ms`);
    for (let i = 0; i < 800; i++) {
      const push = await fast.next<{ data: { n: number } }>();
      assert.equal(push.data.n, i);
    }
    await eventually(
      () => app.connections.size === 1,
      3000,
      "slow member removed",
    );
  } finally {
    slow.close();
    await fast.close();
    await server.close();
  }
});

Deno.test("over the rate limit: RATE_LIMITED replies, then 1008 when it goes on", async () => {
  const { app, observed } = createTestApp({
    // 10 messages of burst, then one token every 2 s: nothing refills mid-test.
    rateLimit: { messagesPerSecond: 0.5, burstSeconds: 20, closeAfter: 20 },
  });
  const server = startServer(app);
  const other = await TestSocket.open(server.wsUrl);
  const abuser = await TestSocket.open(server.wsUrl);
  try {
    for (let i = 0; i < 15; i++) abuser.json({ event: "echo", data: i, id: i });
    const replies: Reply[] = [];
    for (let i = 0; i < 15; i++) replies.push(await abuser.next<Reply>());
    assert.equal(replies.filter((r) => r.error === undefined).length, 10);
    const limited = replies.filter((r) => r.error?.code === "RATE_LIMITED");
    assert.equal(limited.length, 5);
    assert.deepEqual(
      limited.map((r) => r.id),
      [10, 11, 12, 13, 14],
      "refusals answer their id",
    );
    // 15 more refusals make 20 in a row: the 20th closes. Nothing is sent
    // after it (Deno drops a peer that keeps sending after a close frame).
    for (let i = 0; i < 15; i++) abuser.json({ event: "echo", data: i });
    assert.deepEqual(await abuser.waitClosed(), {
      code: 1008,
      reason: "rate limit exceeded",
      wasClean: true,
    });
    await eventually(() => observed.closes.length === 1);
    assert.deepEqual(await other.request("echo", "fine"), {
      id: 1,
      data: "fine",
    });
  } finally {
    await other.close();
    await server.close();
  }
});

Deno.test("the token bucket refills: a paced client is never limited", async () => {
  const { app } = createTestApp({
    rateLimit: { messagesPerSecond: 50, burstSeconds: 0.1 },
  });
  const server = startServer(app);
  const socket = await TestSocket.open(server.wsUrl);
  try {
    for (let i = 0; i < 20; i++) {
      const reply = await socket.request("echo", i);
      assert.equal(reply.error, undefined, `message ${i} was limited`);
      await delay(25);
    }
  } finally {
    await socket.close();
    await server.close();
  }
});

Deno.test("past maxInFlight running handlers, messages are answered BUSY", async () => {
  const { app } = createTestApp({ maxInFlight: 2 });
  const server = startServer(app);
  const socket = await TestSocket.open(server.wsUrl);
  try {
    for (const id of [1, 2, 3]) {
      socket.json({ event: "async", data: { ms: 150 }, id });
    }
    const first = await socket.next<Reply>();
    assert.deepEqual(first.id, 3);
    assert.equal(first.error?.code, "BUSY");
    const rest = [await socket.next<Reply>(), await socket.next<Reply>()];
    assert.deepEqual(rest.map((r) => r.id).sort(), [1, 2]);
    assert.deepEqual(await socket.request("echo", "free again"), {
      id: 1,
      data: "free again",
    });
  } finally {
    await socket.close();
    await server.close();
  }
});

Deno.test("past maxPendingHandshakes waiting in authenticate, handshakes get 503", async () => {
  const { app } = createTestApp({ maxPendingHandshakes: 2 });
  const server = startServer(app);
  const peers = await Promise.all(
    [1, 2, 3].map(() => RawPeer.connect(server.port)),
  );
  try {
    const head = requestHead(
      "GET /?user=slow HTTP/1.1",
      handshakeHeaders(server.port),
    );
    await peers[0].write(head);
    await peers[1].write(head);
    await delay(50);
    const third = await peers[2].request(head);
    assert.equal(third.status, 503);
    assert.ok(third.headers.get("retry-after"));
    assert.equal((await peers[0].readResponse()).status, 101);
    assert.equal((await peers[1].readResponse()).status, 101);
  } finally {
    for (const peer of peers) peer.close();
    await eventually(() => app.connections.size === 0);
    await server.close();
  }
});

Deno.test("connection churn leaks no connections and no file descriptors", async () => {
  const { app, observed } = createTestApp();
  const server = startServer(app);
  try {
    const baseline = openFds();
    for (let round = 0; round < 6; round++) {
      const sockets = await Promise.all(
        Array.from({ length: 50 }, () => TestSocket.open(server.wsUrl)),
      );
      // Half say goodbye properly, half just drop.
      await Promise.all(sockets.map(async (socket, i) => {
        if (i % 2) return void await socket.close();
        socket.ws.close();
        await socket.closed;
      }));
      const raws = await Promise.all(
        Array.from({ length: 20 }, () => RawPeer.connect(server.port)),
      );
      await Promise.all(raws.map((peer) => peer.handshake(server.port)));
      for (const peer of raws) peer.close();
    }
    await eventually(
      () => app.connections.size === 0,
      5000,
      "every connection finished",
    );
    assert.equal(observed.closes.length, 6 * 70);
    await eventually(
      () => openFds() <= baseline + 2,
      5000,
      `fds back to ${baseline}`,
    );
  } finally {
    await server.close();
  }
});

Deno.test("the bytes-per-second bucket limits large messages on its own", async () => {
  const { app } = createTestApp({
    // Plenty of messages, but only 4 KiB of burst and 1 byte per second after it.
    rateLimit: {
      messagesPerSecond: 1000,
      bytesPerSecond: 1,
      burstSeconds: 4096,
    },
  });
  const server = startServer(app);
  const socket = await TestSocket.open(server.wsUrl);
  try {
    const big = "x".repeat(1500);
    const replies: Reply[] = [];
    for (let i = 0; i < 4; i++) {
      replies.push(await socket.request("echo", big) as Reply);
    }
    assert.deepEqual(
      replies.map((r) => r.error?.code ?? "ok"),
      ["ok", "ok", "RATE_LIMITED", "RATE_LIMITED"],
    );
    assert.equal(
      (await socket.request("echo", "x") as Reply).error,
      undefined,
      "small ones still fit",
    );
  } finally {
    await socket.close();
    await server.close();
  }
});

Deno.test("requests with a key past keyedRequestsPerSecond are refused RATE_LIMITED before they run or are kept; plain ones go on", async () => {
  let runs = 0;
  const router = new EventRouter().on("work", z.unknown(), () => ++runs);
  const app = createServer({
    router,
    logger: silentLogger,
    keyedRequestsPerSecond: 5, // a bucket of 25
  });
  const server = startServer(app);
  const socket = await TestSocket.open(server.wsUrl);
  try {
    const codes: string[] = [];
    for (let id = 1; id <= 40; id++) {
      socket.json({ event: "work", data: id, id, key: `k${id}` });
      const reply = await socket.next<Reply>();
      codes.push(reply.error?.code ?? "ok");
    }
    const ran = codes.filter((code) => code === "ok").length;
    assert.ok(ran >= 25 && ran <= 27, `${ran} ran: ${codes.join()}`);
    assert.equal(runs, ran, "a refused request never ran");
    assert.equal(codes.filter((c) => c === "RATE_LIMITED").length, 40 - ran);
    // Requests without a key are not charged.
    assert.equal((await socket.request<Reply>("work", 0)).error, undefined);
    assert.equal(runs, ran + 1);
  } finally {
    await socket.close();
    await server.close();
  }
});
