/**
 * The core conformance checks, over real sockets, against the example app
 * served by `main.ts` in any mode: the seed handshake, the refusals, HTTP on
 * the same port, the envelope and its error codes, limits and closes, chat.
 * The app must run with MAX_MESSAGE_SIZE=4096 and
 * ALLOWED_ORIGINS=https://app.example.com.
 */

import assert from "node:assert/strict";
import type { MainProcess } from "./_process.ts";
import {
  buildFrame,
  handshakeHeaders,
  Opcode,
  RawPeer,
  readClose,
  requestHead,
} from "./_raw.ts";
import { TestSocket } from "@duplex-ws/testing";
import { tokenFor } from "./_auth.ts";

type Reply = Record<string, unknown> & {
  error?: { code: string };
  data?: unknown;
};

/** The environment `coreConformance` expects the app to run with. */
export const CORE_ENV = {
  MAX_MESSAGE_SIZE: "4096",
  ALLOWED_ORIGINS: "https://app.example.com",
  LOG_LEVEL: "warn",
};

/** Runs the core checks as steps of `t` against `node`. */
export async function coreConformance(
  t: Deno.TestContext,
  node: MainProcess,
): Promise<void> {
  const raw = async (
    extra: Record<string, string>,
    line = "GET / HTTP/1.1",
  ) => {
    const peer = await RawPeer.connect(node.port);
    try {
      return await peer.request(
        requestHead(line, handshakeHeaders(node.port, extra)),
      );
    } finally {
      peer.close();
    }
  };
  {
    await t.step("the seed handshake: 101 with the RFC's accept", async () => {
      const response = await raw({});
      assert.equal(response.status, 101);
      assert.equal(
        response.headers.get("sec-websocket-accept"),
        "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
      );
    });
    await t.step(
      "refusals: version 8 → 426, POST → 405, bad key → 400, foreign Origin → 403",
      async () => {
        const version = await raw({ "Sec-WebSocket-Version": "8" });
        assert.equal(version.status, 426);
        assert.equal(version.headers.get("sec-websocket-version"), "13");
        assert.equal((await raw({}, "POST / HTTP/1.1")).status, 405);
        assert.equal((await raw({ "Sec-WebSocket-Key": "abc" })).status, 400);
        assert.equal(
          (await raw({ Origin: "https://evil.example" })).status,
          403,
        );
        assert.equal(
          (await raw({ Origin: "https://app.example.com" })).status,
          101,
        );
      },
    );
    await t.step(
      "HTTP on the same port: page, script, healthz, metrics, JSON 404",
      async () => {
        for (
          const [path, status] of [
            ["/", 200],
            ["/chat.js", 200],
            ["/healthz", 200],
            ["/metrics", 200],
            ["/nope", 404],
          ] as const
        ) {
          const response = await fetch(`${node.url}${path}`);
          await response.body?.cancel();
          assert.equal(response.status, status, path);
        }
      },
    );
    await t.step("the envelope: replies and every error code", async () => {
      const socket = await TestSocket.open(`${node.wsUrl}/`, {
        token: await tokenFor("deploy"),
      });
      assert.equal((await socket.next()).event, "welcome");
      assert.deepEqual(await socket.request("echo", [1, "a"]), {
        id: 1,
        data: [1, "a"],
      });
      socket.ws.send("{nope");
      const badJson = await socket.next<
        { event: string; data: { code: string } }
      >();
      assert.deepEqual([badJson.event, badJson.data.code], [
        "error",
        "BAD_JSON",
      ]);
      const unknown = await socket.request("no.such.event") as Reply;
      assert.equal(unknown.error?.code, "UNKNOWN_EVENT");
      const invalid = await socket.request("chat.say", { room: 5 }) as Reply;
      assert.equal(invalid.error?.code, "INVALID_DATA");
      const badTopic = await socket.request("chat.join", {
        room: "../x",
      }) as Reply;
      assert.equal(badTopic.error?.code, "BAD_TOPIC");
      await socket.close(4000, "done");
    });
    await t.step(
      "limits and closes: 1009 over MAX_MESSAGE_SIZE, 1003 for binary, chat",
      async () => {
        const big = await TestSocket.open(node.wsUrl);
        big.json({ event: "echo", data: "x".repeat(5000) });
        assert.equal((await big.waitClosed()).code, 1009);
        const peer = await RawPeer.connect(node.port);
        await peer.handshake(node.port);
        await peer.write(buildFrame(Opcode.BINARY, new Uint8Array([1, 2, 3])));
        let frame = await peer.readFrame();
        while (frame && frame.opcode !== Opcode.CLOSE) {
          frame = await peer.readFrame();
        }
        assert.ok(frame);
        assert.equal(readClose(frame).code, 1003);
        peer.close();
        const a = await TestSocket.open(`${node.wsUrl}/`, {
          token: await tokenFor("a"),
        });
        const b = await TestSocket.open(`${node.wsUrl}/`, {
          token: await tokenFor("b"),
        });
        await a.request("chat.join", { room: "deploy" });
        await b.request("chat.join", { room: "deploy" });
        await a.request("chat.say", {
          room: "deploy",
          text: "over this entry",
        });
        for (;;) {
          const push = await b.next<
            { event: string; data: { text: string } }
          >();
          if (push.event === "chat.message") {
            assert.equal(push.data.text, "over this entry");
            break;
          }
        }
        await a.close();
        await b.close();
      },
    );
  }
}
