/**
 * A private redis-server for a test: 127.0.0.1, a free port, its own data
 * directory, stopped (and its directory removed) at the end.
 *
 * Without `redis-server` on PATH the tests that need it are skipped with a
 * loud reason, except under CI (`CI=true`), where a missing server is an
 * error: `.ci/run` installs it through `scripts/setup.sh`.
 */

import { freePort } from "./_process.ts";
import { delay } from "@duplex-ws/testing";

function findRedis(): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    try {
      const path = `${dir}/redis-server`;
      if (Deno.statSync(path).isFile) return path;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** The redis-server binary, or undefined. */
export const REDIS_SERVER = findRedis();

if (!REDIS_SERVER) {
  const message =
    "redis-server not found: the Redis tests cannot run. Install it with scripts/setup.sh (Debian's redis-server).";
  if (Deno.env.get("CI")) {
    throw new Error(`${message} Under CI a skip is an error.`);
  }
  console.warn(`\n⚠️  SKIPPING Redis tests: ${message}\n`);
}

/** Whether Redis tests must be skipped. */
export const NO_REDIS = REDIS_SERVER === undefined;

/** A running redis-server. */
export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:PORT`. */
  readonly url: string;
  /** Its process id while it runs (for CPU accounting). */
  readonly pid: number;
  /** Stops it (keeps the data directory for a restart). */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  /** Stops it and removes its data directory. */
  close(): Promise<void>;
}

async function ping(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await conn.write(new TextEncoder().encode("PING\r\n"));
      const buffer = new Uint8Array(16);
      const n = await conn.read(buffer);
      return n !== null &&
        new TextDecoder().decode(buffer.subarray(0, n)).startsWith("+PONG");
    } finally {
      conn.close();
    }
  } catch {
    return false;
  }
}

/**
 * Starts redis-server on 127.0.0.1:`port` with its data in `dir`, nothing
 * persisted, and `extra` arguments (cluster mode, say).
 */
export function spawnRedis(
  port: number,
  dir: string,
  extra: string[] = [],
): Deno.ChildProcess {
  if (!REDIS_SERVER) throw new Error("redis-server is not installed");
  return new Deno.Command(REDIS_SERVER, {
    args: [
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      "no",
      "--protected-mode",
      "no",
      "--logfile",
      `${dir}/redis.log`,
      ...extra,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** Resolves once redis-server answers PING on `port` (10 s at most). */
export async function waitForRedis(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!await ping(port)) {
    if (Date.now() > deadline) {
      throw new Error(`redis-server did not start on ${port}`);
    }
    await delay(20);
  }
}

/** Starts a private redis-server. */
export async function startRedis(): Promise<RedisServer> {
  if (!REDIS_SERVER) throw new Error("redis-server is not installed");
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "duplex-redis-" });
  let child: Deno.ChildProcess | undefined;
  const launch = async () => {
    child = spawnRedis(port, dir);
    await waitForRedis(port);
  };
  const stop = async () => {
    if (!child) return;
    child.kill("SIGKILL");
    await child.status;
    child = undefined;
  };
  await launch();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child?.pid ?? 0;
    },
    stop,
    restart: launch,
    async close() {
      await stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/**
 * Runs `redis-cli` against a private server; its output, trimmed. An
 * argument over 64 KiB goes through stdin (`-x`, as the last argument).
 */
export async function redisCli(
  redis: RedisServer,
  ...args: string[]
): Promise<string> {
  const last = args.at(-1) ?? "";
  const viaStdin = last.length > 65_536;
  const child = new Deno.Command("redis-cli", {
    args: [
      "-p",
      String(redis.port),
      ...(viaStdin ? ["-x", ...args.slice(0, -1)] : args),
    ],
    stdin: viaStdin ? "piped" : "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (viaStdin) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(last));
    await writer.close();
  }
  const { stdout, success, stderr } = await child.output();
  if (!success) throw new Error(new TextDecoder().decode(stderr));
  return new TextDecoder().decode(stdout).trim();
}
