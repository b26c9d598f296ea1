/**
 * Operating a running cluster (`server.cluster`, the HTTP server API): on
 * three nodes on Redis and on one, a subject is disconnected everywhere
 * within a second and stays closed; a subject subscribed server-side gets
 * the next publish on every node, and unsubscribed stops getting them;
 * members, topics (paged) and nodes are listed; the HTTP API refuses
 * without its key or with a wrong one, and answers each method; its
 * OpenAPI document lists exactly the methods served.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import {
  createServer,
  type DuplexServer,
  EventRouter,
  HttpRouter,
  silentLogger,
} from "@duplex-ws/duplex";
import { DuplexClient } from "@duplex-ws/client";
import { RedisBackplane } from "@duplex-ws/redis";
import {
  SERVER_API_METHODS as DOCUMENTED,
  serverApiDocument,
} from "@duplex-ws/asyncapi/openapi";
import {
  eventually,
  startServer,
  type TestServer,
  TestSocket,
} from "@duplex-ws/testing";
import { SERVER_API_METHODS, serverApi } from "@duplex-ws/api";
import { NO_REDIS, startRedis } from "./_redis.ts";

const KEY = "an API key of the test suite";

const router = new EventRouter().on(
  "join",
  z.object({ topic: z.string() }),
  ({ topic }, ctx) => ctx.join(topic),
);

function node(backplane?: RedisBackplane) {
  return createServer({
    router,
    logger: silentLogger,
    backplane,
    http: new HttpRouter().on("*", "/api/:method", serverApi({ key: KEY })),
    auth: {
      authenticate: (request) => {
        const user = new URL(request.url).searchParams.get("user") ?? "anon";
        return { subject: user, state: undefined };
      },
    },
  });
}

type Push = { event: string; data: Record<string, unknown> };

async function actions(apps: DuplexServer[], servers: TestServer[]) {
  const [first, , last] = [apps[0], apps[1], apps.at(-1)!];
  const ada = await Promise.all(
    servers.map((s) => TestSocket.open(`${s.wsUrl}/?user=ada`)),
  );
  const bob = await Promise.all(
    servers.map((s) => TestSocket.open(`${s.wsUrl}/?user=bob`)),
  );
  const typed = new DuplexClient({
    url: `${servers.at(-1)!.wsUrl}/?user=ada`,
    minReconnectDelay: 20,
  });
  try {
    await typed.ready();
    const started = Date.now();
    const { closed } = await first.cluster.disconnect("ada", {
      reason: "banned",
    });
    assert.equal(closed, ada.length + 1);
    for (const socket of ada) {
      const close = await socket.closed;
      assert.deepEqual([close.code, close.reason], [4500, "banned"]);
    }
    assert.ok(Date.now() - started < 1_000, "within a second");
    await eventually(() => typed.state === "closed", 1_000, "typed closed");
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(typed.state, "closed", "and it stays closed");

    const { joined } = await last.cluster.subscribe("bob", "news");
    assert.equal(joined, bob.length);
    for (const socket of bob) {
      const push = await socket.next<Push>();
      assert.deepEqual([push.event, push.data.topic], ["topic.joined", "news"]);
    }
    await first.publish("news", "headline" as never, { n: 1 } as never);
    for (const socket of bob) {
      assert.deepEqual((await socket.next<Push>()).data, { n: 1 });
    }
    const { members } = await first.cluster.members("news");
    assert.equal(members.length, bob.length);
    assert.equal(new Set(members.map((m) => m.node)).size, apps.length);
    assert.ok(members.every((m) => m.subject === "bob"));

    await last.cluster.subscribe("bob", "alerts");
    for (const socket of bob) await socket.next(); // topic.joined
    const page = await first.cluster.topics({ limit: 1 });
    assert.deepEqual(page, {
      topics: [{ topic: "alerts", count: bob.length }],
      next: "alerts",
    });
    const rest = await first.cluster.topics({ after: page.next, limit: 1 });
    assert.deepEqual(rest, { topics: [{ topic: "news", count: bob.length }] });

    const { left } = await first.cluster.unsubscribe("bob", "news");
    assert.equal(left, bob.length);
    for (const socket of bob) {
      const push = await socket.next<Push>();
      assert.deepEqual([push.event, push.data.code], [
        "topic.left",
        "UNSUBSCRIBED",
      ]);
    }
    await first.publish("news", "headline" as never, { n: 2 } as never);
    await assert.rejects(() => bob[0].next(300), "no more news");

    const { nodes } = await first.cluster.info();
    assert.equal(nodes.length, apps.length);
    assert.equal(nodes.reduce((sum, n) => sum + n.connections, 0), bob.length);
  } finally {
    typed.close();
    for (const socket of [...ada, ...bob]) await socket.close();
  }
}

Deno.test("one node: disconnect, subscribe, unsubscribe, members, topics, info", async () => {
  const app = node();
  const server = startServer(app);
  try {
    await actions([app], [server]);
  } finally {
    await server.close();
  }
});

Deno.test({
  name:
    "three nodes on Redis: a subject disconnected everywhere within a second stays closed; subscribed server-side it gets the next publish on every node",
  ignore: NO_REDIS,
  async fn() {
    const redis = await startRedis();
    const apps = [0, 1, 2].map(() =>
      node(new RedisBackplane({ url: redis.url, logger: silentLogger }))
    );
    const servers = apps.map((app) => startServer(app));
    try {
      await Promise.all(apps.map((app) => app.ready));
      await actions(apps, servers);
    } finally {
      for (const server of servers) await server.close();
      await redis.close();
    }
  },
});

Deno.test("the HTTP server API: 401 without the key or with a wrong one, 405, 404, 400, and each method answers; off where it is not mounted", async () => {
  const app = node();
  const server = startServer(app);
  const api = (method: string, body: unknown, key = KEY, verb = "POST") =>
    fetch(`${server.url}/api/${method}`, {
      method: verb,
      headers: { "x-api-key": key },
      body: verb === "POST" ? JSON.stringify(body) : undefined,
    });
  const json = async (response: Response) => ({
    status: response.status,
    body: await response.json(),
  });
  try {
    const none = await fetch(`${server.url}/api/info`, {
      method: "POST",
      body: "{}",
    });
    assert.equal((await json(none)).status, 401);
    const wrong = await json(await api("info", {}, `${KEY}!`));
    assert.deepEqual([wrong.status, wrong.body.error.code], [
      401,
      "UNAUTHORIZED",
    ]);
    assert.equal((await json(await api("info", {}, KEY, "GET"))).status, 405);
    assert.equal((await json(await api("nope", {}))).status, 404);
    assert.equal(
      (await json(await api("disconnect", { code: 1 }))).status,
      400,
    );
    const bad = await json(await api("disconnect", { user: "x", code: 1234 }));
    assert.equal(bad.status, 400, "a close code outside 3000-4999");
    const socket = await TestSocket.open(`${server.wsUrl}/?user=cy`);
    await socket.request("join", { topic: "room" });
    const published = await json(
      await api("publish", { topic: "room", event: "note", data: { hi: 1 } }),
    );
    assert.equal(published.status, 200);
    assert.deepEqual((await socket.next<Push>()).data, { hi: 1 });
    const info = await json(await api("info", {}));
    assert.equal(info.body.result.nodes[0].connections, 1);
    const topics = await json(await api("topics", { limit: 10 }));
    assert.deepEqual(topics.body.result.topics, [{ topic: "room", count: 1 }]);
    const presence = await json(await api("presence", { topic: "room" }));
    assert.equal(presence.body.result.count, 1);
    const gone = await json(await api("disconnect", { user: "cy" }));
    assert.equal(gone.body.result.closed, 1);
    assert.equal((await socket.closed).code, 4500);
  } finally {
    await server.close();
  }
  const off = startServer(createServer({ router, logger: silentLogger }));
  try {
    const response = await fetch(`${off.url}/api/info`, {
      method: "POST",
      headers: { "x-api-key": KEY },
      body: "{}",
    });
    await response.body?.cancel();
    assert.equal(response.status, 404, "not mounted: no API");
  } finally {
    await off.close();
  }
});

Deno.test("the OpenAPI 3.1 document lists exactly the methods served, each secured by X-API-Key", () => {
  const doc = serverApiDocument() as {
    openapi: string;
    paths: Record<string, { post: { security: unknown[] } }>;
    components: { securitySchemes: { apiKey: { name: string } } };
  };
  assert.equal(doc.openapi, "3.1.0");
  assert.deepEqual(
    [...DOCUMENTED].sort(),
    [...SERVER_API_METHODS].sort(),
  );
  assert.deepEqual(
    Object.keys(doc.paths).sort(),
    SERVER_API_METHODS.map((m) => `/api/${m}`).sort(),
  );
  for (const path of Object.values(doc.paths)) {
    assert.deepEqual(path.post.security, [{ apiKey: [] }]);
  }
  assert.equal(doc.components.securitySchemes.apiKey.name, "X-API-Key");
});
