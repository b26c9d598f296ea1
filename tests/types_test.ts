/**
 * Compile-time checks: the event map's types reach handlers, `emit` and the
 * router's type. Each `@ts-expect-error` line fails `deno check` (and so
 * `deno test`) if the mistake under it stops being a type error.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import {
  type Context,
  createServer,
  EventRouter,
  silentLogger,
} from "@duplex-ws/duplex";
import { startServer } from "@duplex-ws/testing";

type Pushes = { tick: { n: number }; bare: undefined };
type State = { user: string };

const router = new EventRouter<State, Pushes>()
  .on("add", z.object({ a: z.number(), b: z.number() }), ({ a, b }, ctx) => {
    const sum: number = a + b;
    const user: string = ctx.state.user;
    ctx.emit("tick", { n: sum });
    ctx.emit("bare");
    // @ts-expect-error: unknown push event
    ctx.emit("tock", { n: 1 });
    // @ts-expect-error: wrong payload type
    ctx.emit("tick", { n: "1" });
    // @ts-expect-error: payload required
    ctx.emit("tick");
    // @ts-expect-error: state has no such field
    ctx.state.role;
    return { sum, user };
  })
  .on("shout", z.string().transform((s) => s.toUpperCase()), (text) => {
    // @ts-expect-error: the handler sees the schema's output type (string)
    const n: number = text;
    return n;
  });

// The router's type records each event's input and reply types.
type Events = typeof router.events;
// @ts-expect-error: not an event of this router
type _Missing = Events["nope"];
// @ts-expect-error: wrong input type for "add"
const _badInput: Events["add"]["data"] = { a: "1", b: 2 };

// createServer ties authenticate's state to the router's.
function _wrongState() {
  createServer({
    router,
    // @ts-expect-error: authenticate must return the router's State
    authenticate: () => ({ name: "x" }),
  });
}

// A Context is all a handler needs; the raw socket never leaks into the API.
function _useContext(ctx: Context<State, Pushes>) {
  // @ts-expect-error: no raw socket on the context
  ctx.socket;
}

Deno.test("a typed client gets at run time the replies its router's types say", async () => {
  const server = startServer(createServer({
    router,
    authenticate: () => ({ user: "ada" }),
    logger: silentLogger,
  }));
  try {
    const client = server.client<typeof router>();
    const added: Events["add"]["reply"] = await client.request("add", {
      a: 1,
      b: 2,
    });
    assert.deepEqual(added, { sum: 3, user: "ada" });
    // The schema's output (upper case) is what the handler got.
    assert.equal(await client.request("shout", "hi"), "HI");
    // @ts-expect-error: the client checks the data against the router's input
    await client.request("add", { a: "1", b: 2 }).catch(() => {});
    assert.deepEqual(router.eventNames(), ["add", "shout"]);
  } finally {
    await server.close();
  }
});
