/**
 * A private Redis Cluster for a test: `masters` masters with `replicas`
 * replicas each, from Debian's redis-server on 127.0.0.1, every node with
 * its own port (below 55000: the cluster bus is port + 10000) and data
 * directory, joined by `redis-cli --cluster create`; stopped and removed at
 * the end. A short `cluster-node-timeout` makes a failover take about a
 * second.
 */

import { delay } from "@duplex-ws/testing";
import { REDIS_SERVER, spawnRedis, waitForRedis } from "./_redis.ts";

/** One redis-server of the cluster. */
export interface ClusterNode {
  readonly port: number;
  readonly url: string;
  readonly pid: number;
}

/** A running cluster. */
export interface RedisCluster {
  /** Every node, masters first (as created). */
  readonly nodes: ClusterNode[];
  /** The seed URLs a client is given: every master's. */
  readonly urls: string[];
  /** `redis-cli` against one node, its output. */
  cli(port: number, ...args: string[]): Promise<string>;
  /** The port of the master that serves a key's slot. */
  masterOf(key: string): Promise<number>;
  /** Kills one node (SIGKILL). */
  kill(port: number): Promise<void>;
  /** Resolves once every slot is served again (`cluster_state:ok` everywhere alive). */
  healthy(timeoutMs?: number): Promise<void>;
  /** Stops every node and removes their directories. */
  close(): Promise<void>;
}

function portIsFree(port: number): boolean {
  try {
    Deno.listen({ hostname: "127.0.0.1", port }).close();
    return true;
  } catch {
    return false;
  }
}

/** A port below 55000 whose cluster-bus port (+10000) is free too. */
function clusterPort(taken: Set<number>): number {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    if (taken.has(port) || taken.has(port + 10_000)) continue;
    if (portIsFree(port) && portIsFree(port + 10_000)) {
      taken.add(port);
      taken.add(port + 10_000);
      return port;
    }
  }
}

async function run(args: string[]): Promise<string> {
  const out = await new Deno.Command("redis-cli", {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
}

/** Starts a cluster (3 masters, 1 replica each by default). */
export async function startRedisCluster(
  { masters = 3, replicas = 1 } = {},
): Promise<RedisCluster> {
  if (!REDIS_SERVER) throw new Error("redis-server is not installed");
  const taken = new Set<number>();
  const root = await Deno.makeTempDir({ prefix: "duplex-cluster-" });
  const children = new Map<number, Deno.ChildProcess>();
  const nodes: ClusterNode[] = [];
  const count = masters * (1 + replicas);
  const close = async () => {
    for (const child of children.values()) {
      try {
        child.kill("SIGKILL");
      } catch {
        // gone already
      }
      await child.status;
    }
    children.clear();
    await Deno.remove(root, { recursive: true }).catch(() => {});
  };
  try {
    for (let i = 0; i < count; i++) {
      const port = clusterPort(taken);
      const dir = `${root}/${port}`;
      await Deno.mkdir(dir);
      const child = spawnRedis(port, dir, [
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        `${dir}/nodes.conf`,
        "--cluster-node-timeout",
        "1000",
        // Replicas sync at once (the default waits 5 s for more of them).
        "--repl-diskless-sync-delay",
        "0",
      ]);
      children.set(port, child);
      nodes.push({ port, url: `redis://127.0.0.1:${port}`, pid: child.pid });
    }
    for (const { port } of nodes) await waitForRedis(port);
    const created = await run([
      "--cluster",
      "create",
      ...nodes.map((n) => `127.0.0.1:${n.port}`),
      "--cluster-replicas",
      String(replicas),
      "--cluster-yes",
    ]);
    if (!created.includes("[OK] All 16384 slots covered")) {
      throw new Error(`redis-cli --cluster create failed:\n${created}`);
    }
  } catch (error) {
    await close();
    throw error;
  }
  const cli = (port: number, ...args: string[]) =>
    run(["-p", String(port), ...args]);
  const cluster: RedisCluster = {
    nodes,
    urls: nodes.slice(0, masters).map((n) => n.url),
    cli,
    async masterOf(key) {
      const alive = nodes.find((n) => children.has(n.port))!;
      const slot = Number(
        (await cli(alive.port, "cluster", "keyslot", key)).trim(),
      );
      // `cluster nodes`: "id ip:port@bus flags master ... slot-ranges".
      for (
        const line of (await cli(alive.port, "cluster", "nodes")).split("\n")
      ) {
        const fields = line.trim().split(" ");
        if (!fields[2]?.includes("master") || fields[2].includes("fail")) {
          continue;
        }
        const port = Number(fields[1].split(":")[1].split("@")[0]);
        for (const range of fields.slice(8)) {
          const [start, end = start] = range.split("-").map(Number);
          if (slot >= start && slot <= end) return port;
        }
      }
      throw new Error(`no master for slot ${slot}`);
    },
    async kill(port) {
      const child = children.get(port);
      if (!child) return;
      child.kill("SIGKILL");
      await child.status;
      children.delete(port);
    },
    async healthy(timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const alive = nodes.filter((n) => children.has(n.port));
        const states = await Promise.all(
          alive.map((n) => cli(n.port, "cluster", "info")),
        );
        if (states.every((s) => s.includes("cluster_state:ok"))) return;
        if (Date.now() > deadline) throw new Error("cluster not healthy");
        await delay(100);
      }
    },
    close,
  };
  await cluster.healthy();
  // A replica that has not synced yet would not take over: wait for every
  // one to be linked.
  const deadline = Date.now() + 20_000;
  for (const node of nodes) {
    for (;;) {
      const info = await cli(node.port, "info", "replication");
      if (
        info.includes("role:master") || info.includes("master_link_status:up")
      ) {
        break;
      }
      if (Date.now() > deadline) throw new Error("replicas did not sync");
      await delay(50);
    }
  }
  return cluster;
}
