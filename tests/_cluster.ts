/**
 * Several `main.ts` processes on one private Redis, for the scale-out
 * tests.
 */

import assert from "node:assert/strict";
import { delay, TestSocket } from "@duplex-ws/testing";
import { tokenFor } from "./_auth.ts";
import { type MainProcess, startMain } from "./_process.ts";
import { type RedisServer, startRedis } from "./_redis.ts";

/** A chat member on `url` as `user` (a signed token), its welcome push read. */
export async function member(url: string, user: string): Promise<TestSocket> {
  const socket = await TestSocket.open(`${url}/`, {
    token: await tokenFor(user),
  });
  assert.equal((await socket.next()).event, "welcome");
  return socket;
}

/** A node's `/healthz`. */
export async function health(
  node: MainProcess,
): Promise<Record<string, unknown>> {
  const response = await fetch(`${node.url}/healthz`);
  return await response.json();
}

/** Waits until a node's `/healthz` says it has reached its engine. */
export async function reachedEngine(node: MainProcess): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await health(node)).status !== "ok") {
    if (Date.now() > deadline) throw new Error("node never reached its engine");
    await delay(50);
  }
}

/**
 * Starts `count` nodes on a private Redis (with `env` added), waits until
 * each has reached it, runs `fn`, then stops them all.
 */
export async function withCluster(
  count: number,
  fn: (nodes: MainProcess[], redis: RedisServer) => Promise<void>,
  env: Record<string, string> = {},
): Promise<void> {
  const redis = await startRedis();
  const nodes: MainProcess[] = [];
  try {
    for (let i = 0; i < count; i++) {
      nodes.push(
        await startMain("listen", {
          REDIS_URL: redis.url,
          PRESENCE_TTL: "1500",
          LOG_LEVEL: "warn",
          DRAIN_TIMEOUT: "500",
          ...env,
        }),
      );
    }
    for (const node of nodes) await reachedEngine(node);
    await fn(nodes, redis);
  } finally {
    for (const node of nodes) await node.stop("SIGTERM");
    await redis.close();
  }
}
