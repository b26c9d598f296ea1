/**
 * The live-cursors example over real sockets, with the test kit: moves
 * arrive as one binary frame per tick, who joins and leaves is pushed, a
 * bad frame closes with 4400, and a flood costs the others one frame a tick.
 */

import assert from "node:assert/strict";
import { silentLogger } from "@duplex-ws/duplex";
import { delay, eventually, nextClose, startServer } from "@duplex-ws/testing";
import {
  BAD_FRAME,
  createCursorsApp,
  type CursorsRouter,
  decodeCursors,
  encodeMove,
} from "./app.ts";

Deno.test("cursors: a move reaches the others as a binary frame; joins and leaves are pushed", async () => {
  const server = startServer(createCursorsApp({ logger: silentLogger }));
  try {
    const ada = server.client<CursorsRouter>();
    const adaHello = ada.once("cursor.hello");
    const { id: adaId } = await adaHello;
    const bob = server.client<CursorsRouter>();
    const joined = ada.once("cursor.joined");
    const bobHello = await bob.once("cursor.hello");
    assert.deepEqual(bobHello.others, [adaId]);
    assert.deepEqual(await joined, { id: bobHello.id });

    const frames: Map<number, [number, number]>[] = [];
    bob.onBinary((frame) => frames.push(decodeCursors(frame)));
    assert.ok(ada.sendBinary(encodeMove(120, 65_000)));
    await eventually(() => frames.length > 0, 2000, "a cursor frame");
    assert.deepEqual(frames[0].get(adaId), [120, 65_000]);

    const left = bob.once("cursor.left");
    ada.close();
    assert.deepEqual(await left, { id: adaId });
  } finally {
    await server.close();
  }
});

Deno.test("cursors: a frame that is not 4 bytes closes with 4400; a flood is coalesced per tick", async () => {
  const server = startServer(
    createCursorsApp({ tick: 50, logger: silentLogger }),
  );
  try {
    const bad = server.client<CursorsRouter>({ shouldReconnect: () => false });
    await bad.once("cursor.hello");
    const closed = nextClose(bad);
    bad.sendBinary(new Uint8Array(5));
    assert.equal((await closed).code, BAD_FRAME);

    const flooder = server.client<CursorsRouter>();
    const { id } = await flooder.once("cursor.hello");
    const watcher = server.client<CursorsRouter>();
    await watcher.once("cursor.hello");
    let frames = 0;
    let last: [number, number] | undefined;
    watcher.onBinary((frame) => {
      frames++;
      last = decodeCursors(frame).get(id) ?? last;
    });
    const started = performance.now();
    for (let i = 0; i < 500; i++) {
      flooder.sendBinary(encodeMove(i, i));
      if (i % 100 === 99) await delay(20);
    }
    await eventually(() => last?.[0] === 499, 2000, "the last move");
    const ticks = (performance.now() - started) / 50;
    // 500 moves, and the watcher got about one frame per tick.
    assert.ok(
      frames <= Math.ceil(ticks) + 2,
      `${frames} frames, ${ticks} ticks`,
    );
  } finally {
    await server.close();
  }
});
