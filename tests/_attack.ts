/**
 * Helpers for the attack tests: what the kernel says about a server process
 * (established sockets, peak memory), and a peer that stops reading.
 */

import type { TestSocket } from "@duplex-ws/testing";
import { buildFrame, Opcode, RawPeer } from "./_raw.ts";

/** TCP connections established to `port` on 127.0.0.1, as `ss` counts them. */
export async function established(port: number): Promise<number> {
  const { stdout } = await new Deno.Command("ss", {
    args: ["-Htn", "state", "established", `( sport = :${port} )`],
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(stdout).split("\n").filter(Boolean).length;
}

/** A process's resident memory now and at its peak, in MiB (`/proc/PID/status`). */
export function memory(pid: number): { rss: number; peak: number } {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const kib = (field: string) =>
    Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  return { rss: kib("VmRSS") / 1024, peak: kib("VmHWM") / 1024 };
}

/** Open descriptors of a process. */
export function descriptors(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}

/**
 * A peer that asks the test app to `flood` it with 32 MiB and never reads a
 * byte of it, nor says another word: a slow consumer that will hold its
 * socket after the server gave up on it.
 */
export async function slowReader(port: number): Promise<RawPeer> {
  const peer = await RawPeer.connect(port);
  try {
    await peer.handshake(port);
  } catch (error) {
    peer.close();
    throw error;
  }
  const ask = { event: "flood", data: { size: 65_536, count: 512 } };
  await peer.write(buildFrame(Opcode.TEXT, JSON.stringify(ask)));
  return peer;
}

/** Opens `count` TCP connections that never send a byte. */
export async function silentConnections(
  port: number,
  count: number,
): Promise<Deno.TcpConn[]> {
  const conns: Deno.TcpConn[] = [];
  for (let i = 0; i < count; i++) {
    try {
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    } catch {
      break; // the listener is gone: the attack has landed
    }
  }
  return conns;
}

/** Whether `GET /healthz` answers 200 now. */
export async function healthy(url: string): Promise<boolean> {
  try {
    const response = await fetch(`${url}/healthz`, {
      signal: AbortSignal.timeout(1000),
    });
    await response.body?.cancel();
    return response.ok;
  } catch {
    return false;
  }
}

/**
 * Round-trip times of `count` echo requests, one every `every` ms, sorted
 * (ms). 200 samples, so that the p99 is not simply the slowest one.
 */
export async function echoTimes(
  socket: TestSocket,
  count = 200,
  every = 10,
): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    await socket.request("echo", i);
    times.push(performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, every));
  }
  return times.sort((a, b) => a - b);
}

/** The `q`-quantile of sorted numbers. */
export function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/** A crowd of chat members in its own process (`tests/_crowd.ts`). */
export interface Crowd {
  /** Messages its members received so far, all together. */
  received(): Promise<number>;
  /** Closes every member and waits for the process to end. */
  disperse(): Promise<void>;
}

/** `count` members of a chat room in a process of their own, each counting what it gets. */
export async function crowd(
  wsUrl: string,
  room: string,
  count: number,
): Promise<Crowd> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-net",
      new URL("./_crowd.ts", import.meta.url).pathname,
      wsUrl,
      room,
      String(count),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const writer = child.stdin.getWriter();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  const line = async () => {
    for (;;) {
      const cut = buffer.indexOf("\n");
      if (cut >= 0) {
        const out = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 1);
        return out;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error("the crowd process ended");
      buffer += value;
    }
  };
  const say = (text: string) =>
    writer.write(new TextEncoder().encode(`${text}\n`));
  if (await line() !== "ready") throw new Error("the crowd did not start");
  return {
    async received() {
      await say("count");
      return Number(await line());
    },
    async disperse() {
      await say("exit");
      await writer.close().catch(() => {});
      await child.status;
      reader.releaseLock();
      await child.stdout.cancel().catch(() => {});
    },
  };
}
