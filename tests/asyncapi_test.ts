/**
 * The AsyncAPI 3 document made from the example app's router: served at
 * /asyncapi.json, valid for the official parser (@asyncapi/parser), and
 * listing exactly what the router and its types say.
 */

import assert from "node:assert/strict";
import { Parser } from "npm:@asyncapi/parser@3.6.6";
import { z } from "zod";
import { defineRequest, EventRouter, silentLogger } from "@duplex-ws/duplex";
import { asyncApi, toJsonSchema } from "@duplex-ws/asyncapi";
import { createApp } from "../routes/app.ts";
import { events } from "../routes/events.ts";
import { TEST_IDENTITY } from "./_auth.ts";

type Doc = {
  asyncapi: string;
  servers?: Record<string, { host: string; protocol: string }>;
  channels: {
    socket: { address: string; messages: Record<string, { payload: unknown }> };
  };
  operations: Record<string, { action: string; reply?: unknown }>;
};

/** The parser's findings at severity "error" (0). */
async function errors(document: unknown): Promise<string[]> {
  const { diagnostics } = await new Parser().parse(JSON.stringify(document));
  return diagnostics
    .filter((d) => d.severity === 0)
    .map((d) => `${d.code} at ${d.path.join("/")}: ${d.message}`);
}

Deno.test("GET /asyncapi.json: the example app's contract, valid for @asyncapi/parser, never cached across hosts", async () => {
  const app = createApp({ identity: TEST_IDENTITY, logger: silentLogger });
  const response = await app.fetch(
    new Request("http://chat.example:8000/asyncapi.json"),
  );
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type")!, /application\/json/);
  // N18: a document made from Host is never shared by a cache across hosts.
  assert.equal(response.headers.get("vary"), "Host");
  assert.equal(response.headers.get("cache-control"), "no-store");
  const doc = await response.json() as Doc;
  assert.equal(doc.asyncapi, "3.0.0");
  assert.deepEqual(await errors(doc), []);
  assert.deepEqual(Object.values(doc.servers!), [
    { host: "chat.example:8000", protocol: "ws" },
  ]);

  // Every event of the router, with a reply; its pushes; its server request.
  const operations = Object.keys(doc.operations).sort();
  for (const event of events.eventNames()) {
    assert.ok(operations.includes(`receive.${event}`), event);
    assert.ok(doc.operations[`receive.${event}`].reply, `${event} reply`);
  }
  for (
    const push of [
      "welcome",
      "chat.message",
      "presence.state",
      "presence.diff",
      "stream.reset",
      "auth.refresh",
      "topic.left",
      "error",
    ]
  ) {
    assert.equal(doc.operations[`send.${push}`]?.action, "send", push);
  }
  assert.equal(doc.operations["request.client.time"].action, "send");
  assert.ok(doc.operations["request.client.time"].reply);

  // The payloads are the Zod schemas' JSON Schema, inside the envelope.
  const join = doc.channels.socket.messages["event.chat.join"].payload as {
    properties: { event: unknown; data: { required: string[] } };
  };
  assert.deepEqual(join.properties.event, { const: "chat.join" });
  assert.deepEqual(join.properties.data.required, ["room"]);
  // `whoami` takes no payload: its envelope has no data.
  const whoami = doc.channels.socket.messages["event.whoami"].payload as {
    properties: Record<string, unknown>;
  };
  assert.equal(whoami.properties.data, undefined);
});

Deno.test("asyncApi: a schema with no JSON Schema form is any JSON, said so; odd names become valid keys", async () => {
  // A Standard Schema with no `jsonSchema` (as a hand-written validator).
  const bare = {
    "~standard": {
      version: 1 as const,
      vendor: "handmade",
      validate: (value: unknown) => ({ value }),
    },
  };
  const router = new EventRouter<undefined, { "odd push!": number }>()
    .push("odd push!", z.number())
    .request(defineRequest("ask me", { data: z.string(), reply: bare }))
    .on("with space", bare, () => 1)
    .on("transform", z.string().transform((s) => s.length), (n) => n);
  const doc = asyncApi(router, {
    title: "t",
    version: "0.0.1",
    servers: { local: { host: "127.0.0.1:1", protocol: "ws" } },
  }) as unknown as Doc;
  assert.deepEqual(await errors(doc), []);
  assert.ok(doc.operations["receive.with_space"]);
  assert.ok(doc.operations["send.odd_push_"]);
  assert.ok(doc.operations["request.ask_me"]);
  assert.deepEqual(toJsonSchema(bare, "input"), {
    description: "Any JSON: this handmade schema has no JSON Schema form.",
  });
  // A transform's input is a string; its output has no JSON Schema form.
  const length = z.string().transform((s) => s.length);
  assert.deepEqual(toJsonSchema(length, "input"), { type: "string" });
  assert.deepEqual(toJsonSchema(length, "output"), {
    description: "Any JSON: this zod schema has no JSON Schema form.",
  });
  assert.equal(toJsonSchema(z.undefined(), "input"), undefined);
});
