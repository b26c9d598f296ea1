/**
 * A node's first member of a topic makes it subscribe to the topic's
 * channel, and a member that joins with `since` is recovered from history.
 * Until the subscription is in effect a publish reaches the node neither
 * live nor through a history read made before it: if the read came first,
 * the publishes in between were lost with nothing after them to show the
 * gap (the rare `--parallel` failure of `cluster_recovery_test.ts`). Here
 * the subscriber's link to Redis is slowed by 300 ms, publishes land in
 * that window, and none comes after: the member must still get them all.
 */

import assert from "node:assert/strict";
import { z } from "zod";
import { createServer, EventRouter, silentLogger } from "@duplex-ws/duplex";
import { RedisBackplane } from "@duplex-ws/redis";
import { delay, eventually, startServer, TestSocket } from "@duplex-ws/testing";
import { NO_REDIS, startRedis } from "./_redis.ts";

/** Redis with a subscriber link 300 ms slow to take a subscription. */
class SlowSubscriptions extends RedisBackplane {
  override subscribe(topic: string): Promise<unknown> {
    return delay(300).then(() => super.subscribe(topic));
  }
}

const position = z.object({ offset: z.number(), epoch: z.string() });
const router = new EventRouter().on(
  "join",
  z.object({ since: position }),
  ({ since }, ctx) => ctx.join("t", { since }),
);

Deno.test({
  name:
    "a join with since on a node that is still subscribing waits for the subscription: publishes in between are not lost",
  ignore: NO_REDIS,
  async fn() {
    const redis = await startRedis();
    const topics = [{ match: "t", history: { size: 100 } }];
    const a = createServer({
      router,
      logger: silentLogger,
      topics,
      backplane: new RedisBackplane({ url: redis.url }),
    });
    const b = createServer({
      router,
      logger: silentLogger,
      topics,
      backplane: new SlowSubscriptions({ url: redis.url }),
    });
    const server = startServer(b);
    const socket = await TestSocket.open(server.wsUrl);
    try {
      await Promise.all([a.ready, b.ready]);
      const first = await a.publish("t", "m", { n: 1 });
      const joined = socket.request("join", { since: first.position });
      for (let n = 2; n <= 5; n++) {
        await delay(40);
        await a.publish("t", "m", { n });
      }
      const reply = await joined as { data?: { recovered?: boolean } };
      assert.equal(reply.data?.recovered, true);
      const got: number[] = [];
      await eventually(
        async () => {
          const push = await socket.push<{ n: number }>("m", { timeout: 500 })
            .catch(() => undefined);
          if (push) got.push(push.n);
          return got.length >= 4;
        },
        3_000,
        "publishes 2 to 5",
      );
      assert.deepEqual(got, [2, 3, 4, 5]);
    } finally {
      await socket.close();
      await server.close();
      await a.shutdown();
      await b.shutdown();
      await redis.close();
    }
  },
});
