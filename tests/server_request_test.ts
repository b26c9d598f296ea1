/**
 * Requests from the server to a client (PROTOCOL.md §2.4): typed end to end
 * through the router, answered by the typed client's `handle`, validated,
 * and every way it can fail named: no handler, an error reply, a bad reply,
 * a timeout, a client that is gone, too many at once, a made-up reply.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import {
  createServer,
  defineRequest,
  EventError,
  EventRouter,
  silentLogger,
} from "@duplex-ws/duplex";
import { DuplexClient } from "@duplex-ws/client";
import { eventually, startServer, TestSocket } from "@duplex-ws/testing";

const confirm = defineRequest("confirm", {
  data: z.object({ question: z.string() }),
  reply: z.boolean(),
});

/** What the `ask` handler saw: the reply, or the error's code. */
type Outcome = { reply: boolean } | { code: string };

/** Every outcome the `ask` handler saw, in order (the server's side). */
const outcomes: Outcome[] = [];

const router = new EventRouter()
  .request(confirm)
  .on(
    "ask",
    z.object({ question: z.string(), timeout: z.number().optional() }),
    async ({ question, timeout }, ctx): Promise<Outcome> => {
      let outcome: Outcome;
      try {
        outcome = {
          reply: await ctx.request(confirm, { question }, { timeout }),
        };
      } catch (error) {
        outcome = { code: (error as EventError).code };
      }
      outcomes.push(outcome);
      return outcome;
    },
  )
  .on("many", z.number(), async (n, ctx) => {
    const all = await Promise.allSettled(
      Array.from(
        { length: n },
        () => ctx.request(confirm, { question: "?" }, { timeout: 300 }),
      ),
    );
    return all.map((r) =>
      r.status === "fulfilled" ? "ok" : (r.reason as EventError).code
    );
  });

function app() {
  return createServer({ router, logger: silentLogger, maxPendingRequests: 2 });
}
Deno.test("the server asks, the typed client answers: typed both ways, validated", async (t) => {
  const server = startServer(app());
  const client = new DuplexClient<typeof router>({ url: `${server.wsUrl}/` });
  try {
    await t.step("a handler's answer is the reply", async () => {
      const stop = client.handle("confirm", ({ question }) => {
        // `question` is a string, the return a boolean: checked by tsc.
        return question.endsWith("?");
      });
      assert.deepEqual(await client.request("ask", { question: "ok?" }), {
        reply: true,
      });
      stop();
    });
    await t.step("no handler: UNKNOWN_EVENT", async () => {
      assert.deepEqual(await client.request("ask", { question: "x" }), {
        code: "UNKNOWN_EVENT",
      });
    });
    await t.step(
      "a handler that throws: its code, or HANDLER_ERROR",
      async () => {
        const stop = client.handle("confirm", () => {
          throw Object.assign(new Error("not now"), { code: "LATER" });
        });
        assert.deepEqual(await client.request("ask", { question: "x" }), {
          code: "LATER",
        });
        stop();
        const again = client.handle("confirm", () => {
          throw new Error("boom");
        });
        assert.deepEqual(await client.request("ask", { question: "x" }), {
          code: "HANDLER_ERROR",
        });
        again();
      },
    );
    await t.step("a reply that fails the schema: INVALID_DATA", async () => {
      // deno-lint-ignore no-explicit-any
      const stop = client.handle("confirm", () => "yes" as any);
      assert.deepEqual(await client.request("ask", { question: "x" }), {
        code: "INVALID_DATA",
      });
      stop();
    });
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("server requests over a raw socket: timeout, client gone, BUSY, bad and made-up replies", async (t) => {
  const server = startServer(app());
  try {
    await t.step(
      "no answer: TIMEOUT, and a late answer is ignored",
      async () => {
        const socket = await TestSocket.open(`${server.wsUrl}/`);
        socket.json({
          event: "ask",
          data: { question: "q", timeout: 100 },
          id: 1,
        });
        const request = await socket.next<{ event: string; id: number }>();
        assert.equal(request.event, "confirm");
        assert.equal(typeof request.id, "number");
        assert.deepEqual(await socket.next(), {
          id: 1,
          data: { code: "TIMEOUT" },
        });
        socket.json({ id: request.id, data: true });
        // Nothing answers a late or made-up reply; the socket goes on.
        socket.json({ id: 999, data: true });
        socket.json({ event: "ask", data: { question: "q" }, id: 2 });
        const next = await socket.next<{ event: string; id: number }>();
        assert.equal(next.event, "confirm");
        socket.json({ id: next.id, data: false });
        assert.deepEqual(await socket.next(), {
          id: 2,
          data: { reply: false },
        });
        await socket.close();
      },
    );
    await t.step(
      "the client goes before it answers: CONNECTION_LOST",
      async () => {
        const socket = await TestSocket.open(`${server.wsUrl}/`);
        socket.json({ event: "ask", data: { question: "q" }, id: 1 });
        await socket.next();
        const before = outcomes.length;
        await socket.close();
        await eventually(() => outcomes.length > before);
        assert.deepEqual(outcomes.at(-1), { code: "CONNECTION_LOST" });
      },
    );
    await t.step("past maxPendingRequests: BUSY", async () => {
      const socket = await TestSocket.open(`${server.wsUrl}/`);
      socket.json({ event: "many", data: 3, id: 1 });
      for (let i = 0; i < 2; i++) await socket.next();
      assert.deepEqual(await socket.next(), {
        id: 1,
        data: ["TIMEOUT", "TIMEOUT", "BUSY"],
      });
      await socket.close();
    });
    await t.step("a malformed reply: BAD_ENVELOPE, never a crash", async () => {
      const socket = await TestSocket.open(`${server.wsUrl}/`);
      for (
        const reply of [
          { id: 0, data: true },
          { id: "1", data: true },
          { id: 1, data: true, extra: 1 },
          { id: 1, error: { code: 1 } },
          { id: 1, error: { code: "X", message: "m" }, data: 1 },
        ]
      ) {
        socket.json(reply);
        // An id that could be a client's own is answered to; else a push.
        const answer = await socket.next<
          { data?: { code: string }; error?: { code: string } }
        >();
        const code = answer.error?.code ?? answer.data?.code;
        assert.equal(code, "BAD_ENVELOPE", JSON.stringify(reply));
      }
      await socket.close();
    });
  } finally {
    await server.close();
  }
});
