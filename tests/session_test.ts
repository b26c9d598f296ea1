/**
 * A session on a transport that is not a socket: the server's sessions
 * driven in-process through the transport contract (`Transport` and
 * `SessionDriver`, `@duplex-ws/duplex/transport`) by a recording fake. What
 * the state machine does is read here without a network: nothing is routed
 * before `opened` or after a close began, a close the server starts waits
 * for the transport's `closed` (or terminates it after `closeTimeout`), a
 * missing close code is 1006, and `onClose` runs once.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import {
  type CloseInfo,
  createServer,
  EventRouter,
  silentLogger,
} from "@duplex-ws/duplex";
import {
  serverInternals,
  type SessionDriver,
  type Transport,
} from "@duplex-ws/duplex/transport";
import { eventually } from "@duplex-ws/testing";

/** A transport that records what the session asks of it. */
class RecordingTransport implements Transport {
  readonly kind = "fake";
  bufferedAmount = 0;
  readonly sent: (string | Uint8Array | ArrayBuffer)[] = [];
  readonly closes: [code: number, reason: string][] = [];
  terminated = 0;

  send(data: string | Uint8Array<ArrayBuffer> | ArrayBuffer): void {
    this.sent.push(data);
  }
  close(code: number, reason: string): void {
    this.closes.push([code, reason]);
  }
  terminate(): void {
    this.terminated++;
  }
  /** The text frames sent, parsed. */
  frames(): Record<string, unknown>[] {
    return this.sent.filter((f) => typeof f === "string").map((f) =>
      JSON.parse(f as string)
    );
  }
}

const UPGRADE = {
  host: "localhost",
  upgrade: "websocket",
  connection: "Upgrade",
  "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
  "sec-websocket-version": "13",
};

/** A server with `echo`, whose `onClose` calls are recorded, and a session on a fake. */
async function session(closeTimeout = 1_000) {
  const closed: CloseInfo[] = [];
  const router = new EventRouter()
    .on("echo", z.unknown(), (data) => data)
    .onClose((_ctx, info) => void closed.push(info));
  const server = createServer({ router, closeTimeout, logger: silentLogger });
  const internals = serverInternals(server);
  const admitted = await internals.admit(
    new Request("http://localhost/", { headers: UPGRADE }),
    undefined,
  );
  assert.ok(!(admitted instanceof Response), "the handshake is admitted");
  const transport = new RecordingTransport();
  const driver: SessionDriver = internals.accept(transport, admitted);
  const connection = () => [...server.connections.values()][0];
  return { server, transport, driver, closed, connection };
}

Deno.test("a session routes nothing before the transport says it is open", async () => {
  const { server, transport, driver } = await session();
  try {
    driver.received('{"event":"echo","id":1,"data":"early"}');
    assert.deepEqual(transport.sent, []);
    driver.opened();
    driver.received('{"event":"echo","id":2,"data":"hi"}');
    await eventually(() => transport.sent.length === 1);
    assert.deepEqual(transport.frames(), [{ id: 2, data: "hi" }]);
    driver.closed(1000, "", true);
  } finally {
    await server.shutdown();
  }
});

Deno.test("a close the server starts waits for the transport's closed; nothing is routed meanwhile; onClose runs once", async () => {
  const { server, transport, driver, closed, connection } = await session();
  try {
    driver.opened();
    connection().close(4000, "bye");
    assert.deepEqual(transport.closes, [[4000, "bye"]]);
    driver.received('{"event":"echo","id":1,"data":"late"}');
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.deepEqual(transport.sent, [], "nothing routed while closing");
    assert.equal(server.connections.size, 1, "still there until closed");
    driver.closed(4000, "bye", true);
    driver.closed(1006, "", false);
    await eventually(() => closed.length === 1);
    assert.deepEqual(closed, [{ code: 4000, reason: "bye", wasClean: true }]);
    assert.equal(server.connections.size, 0);
    assert.equal(transport.terminated, 0);
  } finally {
    await server.shutdown();
  }
});

Deno.test("a peer that never answers the close is terminated after closeTimeout, and finishes with 1006", async () => {
  const { server, transport, driver, closed, connection } = await session(50);
  try {
    driver.opened();
    connection().close(4000, "bye");
    await eventually(() => transport.terminated === 1, 2_000, "terminate");
    await eventually(() => closed.length === 1);
    assert.equal(closed[0].code, 1006);
    assert.equal(closed[0].wasClean, false);
    driver.closed(0, "", false); // the runtime lets go later: no second close
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(closed.length, 1);
  } finally {
    await server.shutdown();
  }
});

Deno.test("a transport that reports no close code finishes the session with 1006", async () => {
  const { server, driver, closed } = await session();
  try {
    driver.opened();
    driver.closed(0, "", false);
    await eventually(() => closed.length === 1);
    assert.deepEqual(closed, [{ code: 1006, reason: "", wasClean: false }]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("a binary frame with no binary handler closes the session with 1003", async () => {
  const { server, transport, driver } = await session();
  try {
    driver.opened();
    driver.received(new ArrayBuffer(4));
    assert.deepEqual(transport.closes, [[
      1003,
      "binary messages are not supported",
    ]]);
    driver.closed(1003, "binary messages are not supported", true);
  } finally {
    await server.shutdown();
  }
});
