/**
 * What the two-server comparisons measured from the bench process share
 * (`http_transport.ts`, `reply_stream.ts`): the duplex bench server started
 * on a free port, a process's CPU time, and a table row of repetitions
 * with its ratio to the baseline.
 *
 * @module
 */

import type { MetricRow } from "./report.ts";

const SERVER = new URL("./duplex_server.ts", import.meta.url).pathname;

/** A process's CPU time so far, every thread, in microseconds (from /proc). */
export function cpuMicros(pid: number): number {
  let nanos = 0;
  for (const task of Deno.readDirSync(`/proc/${pid}/task`)) {
    const stat = Deno.readTextFileSync(
      `/proc/${pid}/task/${task.name}/schedstat`,
    );
    nanos += Number(stat.split(" ")[0]);
  }
  return nanos / 1000;
}

/** `bench/duplex_server.ts` on a free port, ready; `stop` ends it. */
export async function startBenchServer(
  env: Record<string, string> = {},
): Promise<{
  pid: number;
  port: number;
  stop(): Promise<void>;
}> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const server = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", SERVER],
    env: { ...env, PORT: String(port) },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const out = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  await out.read(); // "ready"
  return {
    pid: server.pid,
    port,
    async stop() {
      server.kill("SIGTERM");
      await out.cancel();
      await server.status;
    },
  };
}

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * One row: metric `index` of every repetition of each server (median, min,
 * max), and `other`'s median over `baseline`'s.
 */
export function pairRow(
  results: Record<string, number[][]>,
  [baseline, other]: [string, string],
  workload: string,
  metric: string,
  index: number,
  lowerIsBetter: boolean,
): MetricRow {
  const values = Object.fromEntries(
    Object.entries(results).map(([name, reps]) => {
      const list = reps.map((r) => r[index]);
      return [name, {
        median: median(list),
        min: Math.min(...list),
        max: Math.max(...list),
      }];
    }),
  );
  return {
    workload,
    metric,
    lowerIsBetter,
    values,
    ratios: { [other]: values[other].median / values[baseline].median },
  };
}

/**
 * `run` for the baseline (`false`) and for duplex (`true`), interleaved
 * `reps` times on one bench server started with `env` (`fresh`: a server
 * of its own for each run, so that what a run measures of the server's
 * memory is not what the run before left for the collector): each
 * repetition's metrics, by column.
 */
export async function interleaved(
  reps: number,
  run: (pid: number, port: number, duplex: boolean) => Promise<number[]>,
  env: Record<string, string> = {},
  fresh = false,
): Promise<{ baseline: number[][]; duplex: number[][] }> {
  let server = await startBenchServer(env);
  const results = { baseline: [] as number[][], duplex: [] as number[][] };
  const measure = async (duplex: boolean) => {
    if (fresh && (results.baseline.length + results.duplex.length) > 0) {
      await server.stop();
      server = await startBenchServer(env);
    }
    return await run(server.pid, server.port, duplex);
  };
  try {
    for (let rep = 0; rep < reps; rep++) {
      results.baseline.push(await measure(false));
      results.duplex.push(await measure(true));
    }
  } finally {
    await server.stop();
  }
  return results;
}

/** Settles as `work` does, or rejects once `ms` have passed (the timer keeps the process alive). */
export async function within<T>(ms: number, what: string, work: Promise<T>) {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: over ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
