/**
 * Runs `main.ts` in a child process, both ways it can run: `deno run main.ts
 * --listen` (the tasks) and `deno serve main.ts` (`--parallel`, Deploy).
 */

import { delay, within } from "@duplex-ws/testing";
import { TEST_SECRET } from "./_auth.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/**
 * How `main.ts` is run: `deno run main.ts --listen`, `deno serve main.ts`,
 * or `deno task start` exactly as the README says (which passes
 * `DESCRIPTOR_LIMIT` from `ulimit -Sn`).
 */
export type Mode = "listen" | "serve" | "task";

/** A free TCP port on 127.0.0.1 (free when asked; the OS may reuse it later). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** The arguments of `deno` for a mode. */
export function mainArgs(mode: Mode, flags: string[] = []): string[] {
  if (mode === "task") return ["task", "--config", CONFIG, "start", ...flags];
  return mode === "listen"
    ? ["run", "--allow-net", "--allow-env", ...flags, MAIN, "--listen"]
    : ["serve", "--allow-net", "--allow-env", ...flags, MAIN];
}

/** A running `main.ts`. */
export interface MainProcess {
  readonly child: Deno.ChildProcess;
  readonly port: number;
  /** `ws://127.0.0.1:PORT`. */
  readonly wsUrl: string;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Everything it printed so far. */
  output(): string;
  /** Sends a signal and waits for the exit (SIGKILL after 10 s). */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/** Options of {@linkcode startMain}. */
export interface StartOptions {
  /** A command to run `deno` under, such as `["prlimit", "--nofile=256:256"]`. */
  prefix?: string[];
  /** Deno's arguments instead of running `main.ts` (for another server script). */
  args?: string[];
  /**
   * The `deno` to run.
   * @default {Deno.execPath()}
   */
  deno?: string;
}

/** The project's pinned wrapper, `bin/deno`. */
export const BIN_DENO = new URL("../bin/deno", import.meta.url).pathname;

/** Starts `main.ts` with `env` and waits until it listens. */
export async function startMain(
  mode: Mode,
  env: Record<string, string> = {},
  flags: string[] = [],
  options: StartOptions = {},
): Promise<MainProcess> {
  const port = env.PORT ? Number(env.PORT) : freePort();
  const [command, ...prefix] = [
    ...options.prefix ?? [],
    options.deno ?? Deno.execPath(),
  ];
  const child = new Deno.Command(command, {
    args: [...prefix, ...options.args ?? mainArgs(mode, flags)],
    env: {
      PORT: String(port),
      HOSTNAME: "127.0.0.1",
      LOG_LEVEL: "info",
      // Every node of a test signs and verifies with the suite's key.
      AUTH_SECRET: TEST_SECRET,
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let log = "";
  const decoder = new TextDecoder();
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) log += decoder.decode(chunk);
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  let stopped: Promise<Deno.CommandStatus> | undefined;
  const stop = (signal: Deno.Signal = "SIGTERM") => {
    stopped ??= (async () => {
      try {
        child.kill(signal);
      } catch {
        // already exited
      }
      let status: Deno.CommandStatus;
      try {
        status = await within(child.status, 10_000, "child exit");
      } catch {
        child.kill("SIGKILL");
        status = await child.status;
      }
      await pumps;
      return status;
    })();
    return stopped;
  };
  const deadline = Date.now() + 20_000;
  while (!/Listening on/.test(log)) {
    if (Date.now() > deadline) {
      await stop("SIGKILL");
      throw new Error(`main.ts did not start:\n${log}`);
    }
    await delay(50);
  }
  return {
    child,
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    output: () => log,
    stop,
  };
}

const TEST_APP = new URL("./_test_app_server.ts", import.meta.url).pathname;

/** Starts the test app (`tests/_app.ts`) as a server process with `options` (and `env`). */
export function startTestApp(
  options: Record<string, unknown> = {},
  start: StartOptions = {},
  env: Record<string, string> = {},
): Promise<MainProcess> {
  const all = { ...env, OPTIONS: JSON.stringify(options) };
  return startMain("listen", all, [], {
    ...start,
    args: ["run", "--allow-net", "--allow-env", TEST_APP],
  });
}
