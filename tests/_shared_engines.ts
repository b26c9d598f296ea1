/**
 * Redis and Postgres as engines shared by test servers in this process and
 * test-app processes (`startTestApp`), with heartbeats quick enough for a
 * dead node to be gone within seconds and slow enough that a busy
 * machine's never looks gone.
 */

import {
  createServer,
  type DuplexServer,
  EventRouter,
  silentLogger,
} from "@duplex-ws/duplex";
import type { Backplane } from "@duplex-ws/duplex/engine";
import { RedisBackplane } from "@duplex-ws/redis";
import { PostgresBackplane } from "@duplex-ws/postgres";
import { eventually } from "@duplex-ws/testing";
import { NO_REDIS, startRedis } from "./_redis.ts";
import { NO_POSTGRES, startPostgres } from "./_postgres.ts";
import type { MainProcess } from "./_process.ts";

/** The engines' heartbeats in these tests. */
export const QUICK = { presenceTtl: 2_000, heartbeatInterval: 400 };

/** A running engine server. */
export interface SharedEngine {
  /** The environment a test-app process needs to use it (`QUICK` included). */
  env: Record<string, string>;
  /** An engine for a server in this process. */
  engine(): Backplane;
  close(): Promise<void>;
}

/** Each engine: its name, whether it is missing here, how to start it. */
export const SHARED_ENGINES: [string, boolean, () => Promise<SharedEngine>][] =
  [
    ["Redis", NO_REDIS, async () => {
      const redis = await startRedis();
      return {
        env: { REDIS_URL: redis.url, ENGINE: JSON.stringify(QUICK) },
        engine: () =>
          new RedisBackplane({
            url: redis.url,
            logger: silentLogger,
            ...QUICK,
          }),
        close: () => redis.close(),
      };
    }],
    ["Postgres", NO_POSTGRES, async () => {
      const pg = await startPostgres();
      return {
        env: { POSTGRES_URL: pg.url, ENGINE: JSON.stringify(QUICK) },
        engine: () => new PostgresBackplane({ url: pg.url, ...QUICK }),
        close: () => pg.close(),
      };
    }],
  ];

/** Resolves once a node process answers `/health` with `ok` (its engine reached). */
export function healthy(node: MainProcess): Promise<void> {
  return eventually(async () => {
    const response = await fetch(`${node.url}/health`);
    return (await response.json())?.status === "ok";
  });
}

/** A server on `engine` that records what occupancy it is told (`occupied room`, `vacated room`). */
export function occupancyWatcher(
  engine: SharedEngine,
): { server: DuplexServer<undefined, never>; events: string[] } {
  const events: string[] = [];
  const server = createServer({
    router: new EventRouter(),
    logger: silentLogger,
    backplane: engine.engine(),
    occupancy: {
      onOccupied: (topic) => void events.push(`occupied ${topic}`),
      onVacated: (topic) => void events.push(`vacated ${topic}`),
    },
  });
  return { server, events };
}
