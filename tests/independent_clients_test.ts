/**
 * Clients we did not write, both strict about RFC 6455: Python's
 * `websockets` (Debian's python3-websockets, run by /usr/bin/python3) and
 * npm's `ws` run under Deno. Both fail on an illegal frame or close code.
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { WebSocket } from "../lib/node/_ws.ts";
import { createTestApp } from "./_app.ts";
import { eventually, startServer, within } from "@duplex-ws/testing";

const PYTHON = "/usr/bin/python3";
const SCRIPT = new URL("./clients/python_client.py", import.meta.url).pathname;

function pythonWebsockets(): boolean {
  try {
    return new Deno.Command(PYTHON, {
      args: ["-c", "import websockets"],
      stdout: "null",
      stderr: "null",
    })
      .outputSync().success;
  } catch {
    return false;
  }
}

const HAS_PYTHON = pythonWebsockets();
if (!HAS_PYTHON) {
  const message =
    `${PYTHON} with Debian's python3-websockets not found: the Python client test cannot run. Install it with scripts/setup.sh.`;
  if (Deno.env.get("CI")) {
    throw new Error(`${message} Under CI a skip is an error.`);
  }
  console.warn(`\n⚠️  SKIPPING the Python client test: ${message}\n`);
}

function strictApp() {
  return createTestApp({
    binary: true,
    protocols: ["duplex.v2", "duplex.v1"],
    maxMessageSize: 65_536,
  });
}

Deno.test({
  name:
    "python websockets: handshake, subprotocol, echo, ping, close codes both ways, 1009, 1001",
  ignore: !HAS_PYTHON,
  async fn() {
    const { app, observed } = strictApp();
    const server = startServer(app);
    const child = new Deno.Command(PYTHON, {
      args: [SCRIPT, server.wsUrl],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines: Record<string, unknown>[] = [];
    let stderr = "";
    const readErr = (async () => {
      for await (
        const chunk of child.stderr.pipeThrough(new TextDecoderStream())
      ) stderr += chunk;
    })();
    try {
      let buffer = "";
      for await (
        const chunk of child.stdout.pipeThrough(new TextDecoderStream())
      ) {
        buffer += chunk;
        let cut;
        while ((cut = buffer.indexOf("\n")) >= 0) {
          const line = JSON.parse(buffer.slice(0, cut));
          buffer = buffer.slice(cut + 1);
          lines.push(line);
          if (line.marker === "waiting for shutdown") void app.shutdown();
        }
      }
      const status = await within(child.status, 30_000, "python client");
      await readErr;
      const checks = lines.filter((line) => "check" in line);
      assert.deepEqual(
        checks.map((c) => c.check),
        [
          "subprotocol",
          "text echo",
          "binary echo",
          "ping/pong",
          "error envelope",
          "client close",
          "server close",
          "1009 too big",
          "server shutdown",
        ],
        stderr,
      );
      for (const check of checks) {
        assert.equal(check.ok, true, JSON.stringify(check));
      }
      assert.equal(status.code, 0, stderr);
      await eventually(() => observed.closes.length === 4);
      assert.deepEqual(observed.closes.map((c) => c.info.code), [
        4001,
        4000,
        1009,
        1001,
      ]);
    } finally {
      await server.close();
    }
  },
});

Deno.test("npm ws client: handshake, echo, ping/pong, close codes both ways, no protocol error", async (t) => {
  const { app, observed } = strictApp();
  const server = startServer(app);
  const errors: Error[] = [];
  const open = (protocols?: string[]) =>
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(server.wsUrl, protocols);
      ws.on("error", (error: Error) => errors.push(error));
      ws.once("open", () => resolve(ws));
      ws.once("error", reject);
    });
  const closed = (ws: WebSocket) =>
    within(
      new Promise<[number, string]>((resolve) =>
        ws.once("close", (code: number, reason: Buffer) =>
          resolve([code, reason.toString()]))
      ),
      5000,
      "ws close",
    );
  const next = (ws: WebSocket) =>
    within(
      new Promise<Buffer | string>((resolve) =>
        ws.once("message", (data: Buffer, isBinary: boolean) =>
          resolve(isBinary ? data : data.toString()))
      ),
      5000,
      "ws message",
    );
  try {
    await t.step(
      "subprotocol, text and binary echo, ping/pong, client close 4001",
      async () => {
        const ws = await open(["duplex.v1", "duplex.v2"]);
        assert.equal(ws.protocol, "duplex.v2");
        ws.send(JSON.stringify({ event: "echo", data: [1, "two"], id: 1 }));
        assert.deepEqual(JSON.parse(await next(ws) as string), {
          id: 1,
          data: [1, "two"],
        });
        const bytes = Buffer.from(crypto.getRandomValues(new Uint8Array(4096)));
        ws.send(bytes);
        assert.ok(bytes.equals(await next(ws) as Buffer));
        const pong = new Promise<Buffer>((resolve) => ws.once("pong", resolve));
        ws.ping(Buffer.from("duplex"));
        assert.equal((await within(pong, 5000, "pong")).toString(), "duplex");
        const done = closed(ws);
        ws.close(4001, "ws says bye");
        assert.deepEqual(await done, [4001, "ws says bye"]);
      },
    );
    await t.step(
      "server close 4000 and 1009 arrive as valid close frames",
      async () => {
        const ws = await open();
        const done = closed(ws);
        ws.send(
          JSON.stringify({
            event: "close",
            data: { code: 4000, reason: "server says bye" },
          }),
        );
        assert.deepEqual(await done, [4000, "server says bye"]);
        const big = await open();
        const bigDone = closed(big);
        big.send(JSON.stringify({ event: "echo", data: "x".repeat(70_000) }));
        assert.equal((await bigDone)[0], 1009);
      },
    );
    await t.step("shutdown: 1001 server shutting down", async () => {
      const ws = await open();
      const done = closed(ws);
      await app.shutdown();
      assert.deepEqual(await done, [1001, "server shutting down"]);
    });
    assert.deepEqual(
      errors.map((e) => e.message),
      [],
      "ws saw a protocol error",
    );
    await eventually(() => observed.closes.length === 4);
    assert.deepEqual(observed.closes.map((c) => c.info.code), [
      4001,
      4000,
      1009,
      1001,
    ]);
  } finally {
    await server.close();
  }
});
