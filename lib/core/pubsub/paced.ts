/**
 * Sending more than a member's slow-consumer cap without tripping it: a
 * long replay (a full room's history on recovery) goes out a part at a
 * time, each once the member's unsent bytes have come down, instead of all
 * at once and a 1013 "slow consumer".
 *
 * @module
 */

import type { Member } from "./hub.ts";

/** Something with bytes queued and not yet sent (a transport). */
export interface Buffered {
  /** Bytes queued and not yet sent. */
  readonly bufferedAmount: number;
}

/** Bytes `target` can queue under half of `cap` (`0`: no cap, any). */
export function roomUnder(cap: number, target: Buffered): number {
  return cap === 0 ? Infinity : cap / 2 - target.bufferedAmount;
}

/**
 * Resolves `true` once `below` bytes or fewer are unsent, `false` when it
 * closes first; polls from 1 ms up to every 50 ms (the runtime's sockets
 * raise no drain event).
 */
export async function drained(
  target: Buffered,
  isOpen: () => boolean,
  below: number,
): Promise<boolean> {
  let wait = 1;
  while (isOpen()) {
    if (target.bufferedAmount <= below) return true;
    await new Promise((done) => setTimeout(done, wait));
    wait = Math.min(wait * 2, 50);
  }
  return false;
}

/**
 * Sends `texts` to `member` in order: whenever the next one does not fit
 * in the room it has now, it waits for the member to drain first; stops
 * when it is gone. Resolves with the bytes sent.
 */
export async function sendPaced(
  member: Member,
  texts: readonly string[],
): Promise<number> {
  let bytes = 0;
  for (const text of texts) {
    if (member.room && member.drained && member.room() < text.length) {
      if (!await member.drained()) break;
    }
    if (!member.send(text)) break;
    bytes += text.length;
  }
  return bytes;
}
