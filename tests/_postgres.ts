/**
 * A private PostgreSQL server for a test: Debian's PostgreSQL 15, a cluster
 * made by `initdb` in a temporary directory (owned by the `postgres` user,
 * since `initdb` refuses to run as root), 127.0.0.1 on a free port, stopped
 * and removed at the end.
 *
 * Without PostgreSQL the tests that need it are skipped with a loud reason,
 * except under CI (`CI=true`), where a missing server is an error:
 * `.ci/run` installs it through `scripts/setup.sh`.
 */

import { freePort } from "./_process.ts";

const BIN = "/usr/lib/postgresql/15/bin";

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

const HAS_POSTGRES = exists(`${BIN}/initdb`) && exists(`${BIN}/pg_ctl`);
if (!HAS_POSTGRES) {
  const message =
    "PostgreSQL 15 not found: the Postgres tests cannot run. Install it with scripts/setup.sh (Debian's postgresql).";
  if (Deno.env.get("CI")) {
    throw new Error(`${message} Under CI a skip is an error.`);
  }
  console.warn(`\n⚠️  SKIPPING Postgres tests: ${message}\n`);
}

/** Whether Postgres tests must be skipped. */
export const NO_POSTGRES = !HAS_POSTGRES;

/** A running private PostgreSQL server. */
export interface PostgresServer {
  /** `postgres://duplex@127.0.0.1:PORT/postgres`. */
  readonly url: string;
  readonly port: number;
  /** Stops it at once (`immediate`: as a crash would), keeping its data. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  restart(): Promise<void>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
}

/** Runs a PostgreSQL program as the `postgres` user; throws with its output on failure. */
async function asPostgres(program: string, args: string[]): Promise<void> {
  const out = await new Deno.Command("runuser", {
    args: ["-u", "postgres", "--", `${BIN}/${program}`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const text = new TextDecoder().decode(out.stdout) +
      new TextDecoder().decode(out.stderr);
    throw new Error(`${program} failed: ${text}`);
  }
}

/** Starts a private PostgreSQL (about 2 s). */
export async function startPostgres(): Promise<PostgresServer> {
  const port = freePort();
  const dir = await Deno.makeTempDir({ prefix: "duplex-pg-" });
  const uid = Number(
    new TextDecoder().decode(
      (await new Deno.Command("id", { args: ["-u", "postgres"] }).output())
        .stdout,
    ).trim(),
  );
  await Deno.chown(dir, uid, null);
  await asPostgres("initdb", [
    "-D",
    `${dir}/data`,
    "-A",
    "trust",
    "-U",
    "duplex",
    "-E",
    "UTF8",
    "--no-sync",
  ]);
  const options =
    `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  const start = () =>
    asPostgres("pg_ctl", [
      "-D",
      `${dir}/data`,
      "-o",
      options,
      "-l",
      `${dir}/log`,
      "-w",
      "start",
    ]);
  const stop = () =>
    asPostgres("pg_ctl", ["-D", `${dir}/data`, "-m", "immediate", "stop"])
      .catch(() => {});
  await start();
  return {
    port,
    url: `postgres://duplex@127.0.0.1:${port}/postgres`,
    stop,
    restart: start,
    async close() {
      await stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
}
