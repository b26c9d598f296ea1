/**
 * One sharded channel per topic against a fixed set of partitions that
 * topics hash onto (as Centrifugo does), measured on a real Redis Cluster
 * (3 masters) with ioredis's sharded subscribers, the way the cluster engine
 * uses them: `deno task bench:channels`.
 *
 * Three subscribers (three duplex nodes) each hold members in their own
 * third of `topics` topics; publishes go to random topics. Per topic: a node
 * SSUBSCRIBEs each of its topics' channels and receives only their
 * publishes. Partitions: a node subscribes to the partitions its topics hash
 * to (with many topics, all of them) and receives every publish of those
 * partitions, its own topics' or not, and drops the rest.
 *
 * Writes bench/results/cluster-channels.{json,md}.
 */

import { Cluster } from "npm:ioredis@5.9.2";
import { startRedisCluster } from "../tests/_redis_cluster.ts";

const quick = Deno.args.includes("--quick");
const TOPICS = quick ? 3_000 : 30_000;
const PUBLISHES = quick ? 5_000 : 30_000;
const NODES = 3;
const PARTITIONS = [16, 128];

function cpuMicros(pid: number): number {
  let nanos = 0;
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    nanos += Number(
      Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/schedstat`).split(
        " ",
      )[0],
    );
  }
  return nanos / 1000;
}

/** FNV-1a: a topic's partition. */
function partitionOf(topic: string, partitions: number): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < topic.length; i++) {
    hash ^= topic.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % partitions;
}

interface Result {
  design: string;
  channelsPerNode: number;
  subscribeMs: number;
  redisMemoryMiB: number;
  publishesPerSecond: number;
  redisCpuMicrosPerPublish: number;
  receivedPerPublish: number;
  wastedShare: number;
}

async function measure(
  design: string,
  channelOf: (topic: string) => string,
): Promise<Result> {
  const cluster = await startRedisCluster({ replicas: 0 });
  const seeds = cluster.nodes.map((n) => ({ host: "127.0.0.1", port: n.port }));
  const subscribers = Array.from(
    { length: NODES },
    () => new Cluster(seeds, { shardedSubscribers: true }),
  );
  const pub = new Cluster(seeds);
  try {
    const memory = async () => {
      let bytes = 0;
      for (const node of cluster.nodes) {
        const info = await cluster.cli(node.port, "info", "memory");
        bytes += Number(/used_memory:(\d+)/.exec(info)![1]);
      }
      return bytes;
    };
    const topics = Array.from({ length: TOPICS }, (_, i) => `room${i}`);
    const owner = (i: number) => i % NODES;
    let received = 0;
    let relevant = 0;
    subscribers.forEach((sub, n) => {
      sub.on("smessage", (_channel: string, message: string) => {
        received++;
        if (owner(Number(message.slice(4))) === n) relevant++;
      });
    });
    const memory0 = await memory();
    const t0 = performance.now();
    await Promise.all(subscribers.map(async (sub, n) => {
      const mine = new Set(
        topics.filter((_, i) => owner(i) === n).map(channelOf),
      );
      // One channel per SSUBSCRIBE call: each may be on another shard.
      await Promise.all([...mine].map((channel) => sub.ssubscribe(channel)));
    }));
    const subscribeMs = performance.now() - t0;
    const channelsPerNode = new Set(
      topics.filter((_, i) => owner(i) === 0).map(channelOf),
    ).size;
    const redisMemoryMiB = (await memory() - memory0) / 1048576;
    await new Promise((resolve) => setTimeout(resolve, 300));
    const cpu0 = cluster.nodes.reduce((s, n) => s + cpuMicros(n.pid), 0);
    const t1 = performance.now();
    for (let i = 0; i < PUBLISHES; i += 200) {
      await Promise.all(
        Array.from({ length: 200 }, (_, k) => {
          const topic = Math.floor(Math.random() * TOPICS);
          return pub.spublish(channelOf(topics[topic]), `room${topic}`);
        }),
      );
    }
    const seconds = (performance.now() - t1) / 1000;
    const cpu = cluster.nodes.reduce((s, n) => s + cpuMicros(n.pid), 0) -
      cpu0;
    await new Promise((resolve) => setTimeout(resolve, 500));
    return {
      design,
      channelsPerNode,
      subscribeMs,
      redisMemoryMiB,
      publishesPerSecond: PUBLISHES / seconds,
      redisCpuMicrosPerPublish: cpu / PUBLISHES,
      receivedPerPublish: received / PUBLISHES,
      wastedShare: received === 0 ? 0 : (received - relevant) / received,
    };
  } finally {
    for (const client of [pub, ...subscribers]) client.disconnect();
    await cluster.close();
  }
}

const results: Result[] = [];
results.push(await measure("one channel per topic", (t) => `d:{${t}}:t`));
for (const partitions of PARTITIONS) {
  results.push(
    await measure(
      `${partitions} partitions`,
      (t) => `d:{p${partitionOf(t, partitions)}}:t`,
    ),
  );
}

const fmt = (n: number) => n >= 100 ? n.toFixed(0) : n.toFixed(2);
const md = [
  "# Sharded channels: one per topic, or partitions",
  "",
  `${
    new Date().toISOString()
  } · Redis Cluster of 3 masters (redis-server 7.0.15) · ${TOPICS} topics over ${NODES} subscribing nodes (a third each) · ${PUBLISHES} SPUBLISH to random topics, 200 in flight`,
  "",
  "| Design | Channels per node | Subscribe all (ms) | Redis memory for subscriptions (MiB) | Publishes/s | Redis CPU µs/publish | Frames received per publish | Received but not wanted |",
  "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ...results.map((r) =>
    `| ${r.design} | ${r.channelsPerNode} | ${fmt(r.subscribeMs)} | ${
      fmt(r.redisMemoryMiB)
    } | ${fmt(r.publishesPerSecond)} | ${fmt(r.redisCpuMicrosPerPublish)} | ${
      fmt(r.receivedPerPublish)
    } | ${(100 * r.wastedShare).toFixed(0)} % |`
  ),
  "",
].join("\n");
const out = new URL("./results/", import.meta.url).pathname;
await Deno.writeTextFile(
  `${out}cluster-channels${quick ? "-quick" : ""}.json`,
  JSON.stringify({ date: new Date().toISOString(), results }, null, 2) + "\n",
);
await Deno.writeTextFile(
  `${out}cluster-channels${quick ? "-quick" : ""}.md`,
  md,
);
console.log(md);
