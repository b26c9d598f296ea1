import assert from "node:assert/strict";
import { EventError, silentLogger } from "@duplex-ws/duplex";
import { Hub, type Member } from "../lib/core/pubsub/hub.ts";
import { isValidTopic } from "@duplex-ws/protocol";
import { PubSub, type PubSubOptions } from "../lib/core/pubsub/pubsub.ts";
import { topicPolicies } from "../lib/core/pubsub/topic_policy.ts";

/** PubSub options as createServer resolves them. */
function pubsubOptions(extra: Partial<PubSubOptions> = {}): PubSubOptions {
  return {
    maxTopicsPerConnection: 100,
    policyOf: topicPolicies([]),
    presenceInterval: 250,
    presenceGrace: 0,
    maxReplay: 1000,
    publishKeyTtl: 300_000,
    logger: silentLogger,
    ...extra,
  };
}

function member(id: string, open = true): Member & { sent: string[] } {
  const sent: string[] = [];
  return {
    id,
    sent,
    send(text: string) {
      if (!open) return false;
      sent.push(text);
      return true;
    },
  };
}

Deno.test("Hub tracks membership both ways and forgets empty topics", () => {
  const hub = new Hub();
  const a = member("a");
  const b = member("b");
  assert.equal(hub.join(a, "room"), true);
  assert.equal(hub.join(a, "room"), false, "a second join is a no-op");
  hub.join(b, "room");
  hub.join(a, "other");
  assert.equal(hub.count("room"), 2);
  assert.deepEqual([...hub.topicsOf(a)].sort(), ["other", "room"]);
  assert.equal(hub.leave(a, "room"), true);
  assert.equal(hub.leave(a, "room"), false, "a second leave is a no-op");
  assert.equal(hub.leave(a, "never"), false);
  assert.deepEqual(hub.leaveAll(a), ["other"]);
  assert.equal(hub.count("other"), 0);
  assert.equal(hub.count("room"), 1);
  hub.leave(b, "room");
  assert.equal(hub.count("room"), 0);
});

Deno.test("Hub.deliver sends to every member but the excluded one, skipping closed ones", () => {
  const hub = new Hub();
  const a = member("a");
  const b = member("b");
  const closed = member("c", false);
  for (const m of [a, b, closed]) hub.join(m, "room");
  assert.equal(hub.deliver("room", "x"), 2);
  assert.equal(hub.deliver("room", "y", "a"), 1);
  assert.deepEqual(a.sent, ["x"]);
  assert.deepEqual(b.sent, ["x", "y"]);
  assert.equal(hub.deliver("nobody-here", "z"), 0);
});

Deno.test("topic names: 1-128 characters of A-Z a-z 0-9 _ . : -", () => {
  for (
    const ok of [
      "a",
      "room-1",
      "team:42.general",
      "__proto__",
      "constructor",
      "x".repeat(128),
    ]
  ) {
    assert.ok(isValidTopic(ok), ok);
  }
  for (
    const bad of [
      "",
      "x".repeat(129),
      "../x",
      "a b",
      "nul\u0000",
      "é",
      "a/b",
      5,
      null,
    ]
  ) {
    assert.ok(!isValidTopic(bad), String(bad));
  }
});

Deno.test("PubSub refuses bad topics and too many topics with error codes", async () => {
  const pubsub = new PubSub(pubsubOptions({ maxTopicsPerConnection: 2 }));
  const a = member("a");
  assert.throws(
    () => pubsub.join(a, "../x"),
    (e) => e instanceof EventError && e.code === "BAD_TOPIC",
  );
  pubsub.join(a, "one");
  pubsub.join(a, "two");
  assert.deepEqual(
    await pubsub.join(a, "two"),
    { topic: "two", joined: false },
    "rejoining does not count against the bound",
  );
  assert.throws(
    () => pubsub.join(a, "three"),
    (e) => e instanceof EventError && e.code === "TOO_MANY_TOPICS",
  );
  assert.equal(pubsub.leave(a, "../x"), false);
  pubsub.leave(a, "one");
  assert.equal((await pubsub.join(a, "three")).joined, true);
});

Deno.test("PubSub with the local engine: delivery, exclusion, prototype names, presence", async () => {
  const pubsub = new PubSub(pubsubOptions());
  await pubsub.start();
  const a = member("a");
  const b = member("b");
  pubsub.join(a, "__proto__");
  pubsub.join(b, "__proto__");
  assert.deepEqual(await pubsub.publish("__proto__", "hi", undefined), {
    local: 2,
    remote: "none",
  });
  assert.deepEqual(
    await pubsub.publish("__proto__", "bye", undefined, { exclude: "a" }),
    { local: 1, remote: "none" },
  );
  assert.deepEqual(a.sent, ['{"event":"hi"}']);
  assert.deepEqual(b.sent, ['{"event":"hi"}', '{"event":"bye"}']);
  assert.equal((await pubsub.presence("__proto__")).count, 2);
  assert.equal(({} as Record<string, unknown>).hi, undefined);
  pubsub.leaveAll(a);
  assert.equal((await pubsub.presence("__proto__")).count, 1);
  await pubsub.close();
});

Deno.test("PubSub.publish encodes once: the same text reaches every member", async () => {
  const pubsub = new PubSub(pubsubOptions());
  const members = Array.from({ length: 50 }, (_, i) => member(`m${i}`));
  for (const m of members) pubsub.join(m, "room");
  const stringify = JSON.stringify;
  let calls = 0;
  JSON.stringify = ((...args: Parameters<typeof stringify>) => {
    calls++;
    return stringify(...args);
  }) as typeof JSON.stringify;
  try {
    await pubsub.publish("room", "tick", undefined);
  } finally {
    JSON.stringify = stringify;
  }
  assert.equal(calls, 1);
  assert.ok(
    members.every((m) =>
      m.sent.length === 1 && m.sent[0] === '{"event":"tick"}'
    ),
  );
});
