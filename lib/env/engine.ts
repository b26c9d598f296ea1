/**
 * Builds the engine the environment chose (`readEnv(...).engine`): the
 * built-in ones at once, the Redis engine by loading `@duplex-ws/redis`
 * (and with it the Redis client) only when it is asked for. A separate entry
 * from `readEnv`, so that an app that reads its configuration but builds its
 * own engine never loads, nor type-checks, an engine's driver.
 *
 * @example
 * ```ts
 * import { createServer, EventRouter } from "@duplex-ws/duplex";
 * import { readEnv } from "@duplex-ws/env";
 * import { loadEngine } from "@duplex-ws/env/engine";
 *
 * const env = readEnv((name) => Deno.env.get(name));
 * const app = createServer({
 *   ...env.server,
 *   backplane: await loadEngine(env.engine, env.server.logger),
 *   router: new EventRouter(),
 * });
 * await app.shutdown();
 * ```
 *
 * @module
 */

import {
  type Backplane,
  BroadcastChannelBackplane,
  LocalBackplane,
  type Logger,
} from "@duplex-ws/duplex";
import type { EngineConfig } from "./engine_config.ts";

/**
 * The engine `config` describes, not started (`createServer` starts it).
 *
 * @param logger Where the engine logs outages and dropped frames.
 */
export async function loadEngine(
  config: EngineConfig,
  logger?: Logger,
): Promise<Backplane> {
  switch (config.kind) {
    case "redis":
    case "redis-cluster": {
      const { RedisBackplane } = await import("@duplex-ws/redis");
      const { kind: _kind, ...options } = config;
      return new RedisBackplane({ ...options, logger });
    }
    case "postgres": {
      const { PostgresBackplane } = await import("@duplex-ws/postgres");
      const { kind: _kind, ...options } = config;
      return new PostgresBackplane({ ...options, logger });
    }
    case "broadcast-channel":
      return new BroadcastChannelBackplane({ channel: config.channel });
    default:
      return new LocalBackplane(config);
  }
}
