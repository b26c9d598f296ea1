/**
 * The Redis engine's two clients, one Redis or a Redis Cluster: a command
 * client (with the engine's scripts defined on it, no offline queue, so a
 * command during an outage fails at once instead of being sent late) and a
 * subscriber (sharded on a cluster). Built and connected here; their
 * outages and recoveries are reported to the engine. `ioredis` is loaded
 * only when they are.
 *
 * @module
 */

import type { Logger } from "@duplex-ws/duplex";
import {
  APPEND,
  COUNT,
  HEARTBEAT,
  HISTORY,
  HOLD,
  NODE_TOPICS,
  SEAL,
  SET_COUNT,
  SHARE_PRESENCE,
} from "./redis_scripts.ts";

/** The command client, with the engine's scripts. */
export interface Commands {
  /** `ready` when connected. */
  readonly status: string;
  /** Redis commands the engine uses directly. */
  hgetall(key: string): Promise<Record<string, string>>;
  hdel(key: string, ...fields: string[]): Promise<number>;
  zrange(key: string, start: number, stop: number): Promise<string[]>;
  publish(channel: string, message: string): Promise<number>;
  spublish(channel: string, message: string): Promise<number>;
  quit(): Promise<unknown>;
  disconnect(): void;
  once(event: string, listener: () => void): unknown;
  smembers(key: string): Promise<string[]>;
  // The engine's scripts, with their arguments as `redis_scripts.ts` lists them.
  /** `HEARTBEAT`: the live nodes. */
  duplexHeartbeat(
    ...args: [string, string, number, "gone"?]
  ): Promise<string[]>;
  /** `SET_COUNT`. */
  duplexSetCount(...args: [string, string, number, number]): Promise<number>;
  /** `NODE_TOPICS`. */
  duplexNodeTopics(...args: string[]): Promise<number>;
  /** `COUNT`: the sum and the microseconds. */
  duplexCount(...args: [string, string, number]): Promise<[number, number]>;
  /** `SHARE_PRESENCE`. */
  duplexSharePresence(...args: (string | number)[]): Promise<number>;
  /** `APPEND`: duplicate, offset, epoch. */
  duplexAppend(...args: (string | number)[]): Promise<[number, number, string]>;
  /** `HISTORY`: two or three keys (the seals, with a secret), given per call. */
  duplexHistory(...args: (string | number)[]): Promise<(string | number)[]>;
  /** `HOLD`: 1 when the claim was extended. */
  duplexHold(key: string, running: string, ttl: number): Promise<number>;
  /** `SEAL`. */
  duplexSeal(...args: (string | number)[]): Promise<number>;
}

/** What the engine needs of a subscriber client, one Redis or a cluster. */
export interface Subscriber {
  /** `ready` when connected. */
  readonly status: string;
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
  ssubscribe(...channels: string[]): Promise<unknown>;
  sunsubscribe(...channels: string[]): Promise<unknown>;
  ping(): Promise<unknown>;
  on(event: string, listener: (...args: never[]) => void): unknown;
  once(event: string, listener: () => void): unknown;
  quit(): Promise<unknown>;
  disconnect(): void;
}

/** Where to connect and how to retry. */
export interface ConnectOptions {
  /** One Redis's URL, when not a cluster. */
  readonly url: string;
  /** A cluster's seed URLs. */
  readonly clusterUrls?: readonly string[];
  /** The longest delay between reconnection attempts. */
  readonly maxRetryDelay: number;
  /** Where to log outages and recoveries. */
  readonly logger: Logger;
}

/** What the engine hears of its clients. */
export interface ConnectEvents {
  /** A frame on a subscribed channel. */
  message(channel: string, frame: string): void;
  /** A client lost Redis (or a cluster a shard). */
  down(): void;
  /** A client is connected (again). */
  ready(): void;
  /** The command client is connected (again). */
  commandsReady(): void;
}

/** `host:port` seeds from `redis://` URLs, and the client options of the first. */
function clusterSeeds(urls: readonly string[]) {
  const seeds = urls.map((url) => {
    const parsed = new URL(url);
    return { host: parsed.hostname, port: Number(parsed.port || 6379) };
  });
  const first = new URL(urls[0]);
  const redisOptions: Record<string, unknown> = {};
  if (first.username) {
    redisOptions.username = decodeURIComponent(first.username);
  }
  if (first.password) {
    redisOptions.password = decodeURIComponent(first.password);
  }
  if (first.protocol === "rediss:") redisOptions.tls = {};
  return { seeds, redisOptions };
}

/** The two clients, built (not yet connected). */
async function build(
  options: ConnectOptions,
): Promise<{ pub: Commands; sub: Subscriber }> {
  const { Cluster, Redis } = await import("./_ioredis.ts");
  const { url, clusterUrls, maxRetryDelay } = options;
  const retryStrategy = (times: number) =>
    Math.min(100 * 2 ** Math.min(times, 10), maxRetryDelay) *
    (0.5 + Math.random() / 2);
  // A disconnect ends its socket at once (no timer left behind).
  const each = { disconnectTimeout: 0, maxRetriesPerRequest: 1 };
  if (!clusterUrls) {
    const common = { ...each, lazyConnect: true, retryStrategy };
    return {
      pub: new Redis(url, { ...common, enableOfflineQueue: false }) as never,
      sub: new Redis(url, { ...common, autoResubscribe: true }) as never,
    };
  }
  const { seeds, redisOptions } = clusterSeeds(clusterUrls);
  const cluster = {
    lazyConnect: true,
    clusterRetryStrategy: retryStrategy,
    redisOptions: { ...redisOptions, ...each },
    // A failover moves slots: follow within a second.
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    slotsRefreshInterval: 1_000,
  };
  return {
    pub: new Cluster(seeds, { ...cluster, enableOfflineQueue: false }) as never,
    sub: new Cluster(seeds, { ...cluster, shardedSubscribers: true }) as never,
  };
}

/** Defines the engine's scripts on the command client. */
function defineScripts(pub: Commands): void {
  const define = (pub as unknown as {
    defineCommand(
      name: string,
      spec: { numberOfKeys?: number; lua: string },
    ): void;
  }).defineCommand.bind(pub);
  define("duplexHeartbeat", { numberOfKeys: 1, lua: HEARTBEAT });
  define("duplexSetCount", { numberOfKeys: 1, lua: SET_COUNT });
  define("duplexNodeTopics", { numberOfKeys: 1, lua: NODE_TOPICS });
  define("duplexCount", { numberOfKeys: 2, lua: COUNT });
  define("duplexSharePresence", { numberOfKeys: 1, lua: SHARE_PRESENCE });
  // Two or three keys (the idempotency key is optional): given per call.
  define("duplexAppend", { lua: APPEND });
  define("duplexHistory", { lua: HISTORY });
  define("duplexSeal", { numberOfKeys: 2, lua: SEAL });
  define("duplexHold", { numberOfKeys: 1, lua: HOLD });
}

/**
 * Builds both clients and wires their events to `events`; `connect`
 * resolves once they are connected, or at once if Redis is down (they keep
 * retrying).
 */
export async function createRedisClients(
  options: ConnectOptions,
  events: ConnectEvents,
): Promise<{ pub: Commands; sub: Subscriber; connect(): Promise<void> }> {
  const { pub, sub } = await build(options);
  defineScripts(pub);
  const cluster = options.clusterUrls !== undefined;
  sub.on(
    cluster ? "smessage" : "message",
    (channel: string, frame: string) => events.message(channel, frame),
  );
  let down = false;
  for (const client of [pub, sub] as unknown as Subscriber[]) {
    // A cluster reports a shard's loss per node, and may stay "ready".
    if (cluster) client.on("node error", () => events.down());
    client.on("error", (error: Error) => {
      if (!down) {
        options.logger.warn("redis unavailable", { error: error.message });
      }
      down = true;
      events.down();
    });
    // Redis killed or restarted may end the connection without an error.
    client.on("close", () => events.down());
    client.on("ready", () => {
      down = false;
      events.ready();
    });
  }
  (pub as unknown as Subscriber).on("ready", () => events.commandsReady());
  const connect = async () => {
    await Promise.allSettled(
      [pub, sub].map((client) =>
        (client as unknown as { connect(): Promise<void> }).connect()
      ),
    );
  };
  return { pub, sub, connect };
}

/**
 * Ends a client: QUIT, and wait for its connection to end; a client that
 * is not connected now (its QUIT would wait for Redis), or cannot quit, is
 * disconnected.
 */
export async function quit(
  client: Commands | Subscriber | undefined,
): Promise<void> {
  if (client === undefined || client.status === "end") return;
  if (client.status !== "ready") return client.disconnect();
  const ended = new Promise<void>((resolve) => client.once("end", resolve));
  try {
    await client.quit();
    await ended;
  } catch {
    client.disconnect();
  }
}
