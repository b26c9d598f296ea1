/**
 * What `@duplex-ws/env` returns fits `createServer` and `listen` as it is:
 * spread in, no casts, and the server runs with the environment's engine
 * (built by `loadEngine`) and limits.
 */

import assert from "node:assert/strict";
import { createServer, EventRouter, listen } from "@duplex-ws/duplex";
import { readEnv } from "@duplex-ws/env";
import { loadEngine } from "@duplex-ws/env/engine";
import { handshakeStatus, TestSocket } from "@duplex-ws/testing";
import { z } from "zod";

Deno.test("readEnv's options spread into createServer and listen, engine and limits included", async () => {
  const vars: Record<string, string> = {
    BACKPLANE: "broadcast-channel",
    MAX_CONNECTIONS: "1",
    HOSTNAME: "127.0.0.1",
    PORT: "0",
    LOG_LEVEL: "error",
  };
  const env = readEnv((name) => vars[name]);
  const router = new EventRouter().on("ping", z.undefined(), () => "pong");
  const backplane = await loadEngine(env.engine);
  const app = createServer({ ...env.server, backplane, router });
  const listener = listen(app, { ...env.listen, onListen() {} });
  const url = `ws://127.0.0.1:${listener.addr.port}/`;
  const socket = await TestSocket.open(url);
  try {
    assert.equal(app.health().backplane.kind, "broadcast-channel");
    assert.deepEqual(await socket.request("ping"), { id: 1, data: "pong" });
    // MAX_CONNECTIONS=1: the second handshake is refused.
    const second = await handshakeStatus(url.replace("ws", "http"));
    assert.equal(second, 503);
  } finally {
    await socket.close();
    await listener.close();
  }
});

Deno.test("DATABASE_URL chooses the Postgres engine (unless a Redis variable is set); a wrong URL is refused naming it", async () => {
  const read = (vars: Record<string, string>) =>
    readEnv((name) => vars[name]).engine;
  const url = "postgres://app@127.0.0.1:5432/app";
  assert.deepEqual(read({ DATABASE_URL: url, POSTGRES_SCHEMA: "rt" }), {
    kind: "postgres",
    url,
    schema: "rt",
    presenceTtl: undefined,
  });
  assert.equal(
    read({ DATABASE_URL: url, REDIS_URL: "redis://127.0.0.1" }).kind,
    "redis",
  );
  assert.throws(() => read({ DATABASE_URL: "mysql://x/y" }), /DATABASE_URL/);
  assert.throws(() => read({ BACKPLANE: "postgres" }), /DATABASE_URL/);
  const engine = await loadEngine(read({ DATABASE_URL: url }));
  assert.equal(engine.kind, "postgres", "built, not started");
});

Deno.test("an app importing @duplex-ws/env type-checks without any engine's driver: the env reader's graph names no npm package", async () => {
  const entry = new URL("../lib/env/env.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--lock=deno.dev.lock", entry],
    cwd: new URL("..", import.meta.url).pathname,
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.ok(out.success);
  const graph = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string; dependencies?: { specifier: string }[] }[];
  };
  const named = graph.modules.flatMap((m) => [
    m.specifier,
    ...(m.dependencies ?? []).map((d) => d.specifier),
  ]);
  assert.ok(graph.modules.length > 10, "the graph was read");
  assert.deepEqual(named.filter((s) => s.startsWith("npm:")), []);
  // The engines load their drivers from `@duplex-ws/env/engine` only.
  assert.ok(!named.some((s) => /redis|postgres/.test(s)));
});
