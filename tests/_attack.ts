/**
 * Helpers for the attack tests: what the kernel says about a server process
 * (established sockets, peak memory), and a peer that stops reading.
 */

import { RawPeer } from "./_raw.ts";
import { buildFrame, Opcode } from "./_raw.ts";

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
