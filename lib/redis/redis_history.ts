/**
 * A topic's numbered stream in Redis: the `APPEND` script numbers, stores
 * and publishes a push in one step (so live order is replay order), and
 * `HISTORY` reads it back, each entry given its position again.
 *
 * @module
 */

import {
  type Appended,
  type AppendOptions,
  type HistoryRead,
  newEpoch,
} from "@duplex-ws/duplex/engine";
import { withPosition } from "@duplex-ws/protocol";
import type { Commands } from "./redis_connect.ts";

/** What the history scripts need of the engine. */
export interface HistoryContext {
  /** The command client, when ready. */
  readonly pub: Commands | undefined;
  /** A topic's key of a kind (`h` meta, `s` stream, `t` channel, `k:<key>`). */
  key(topic: string, kind: string): string;
  /** The signed start of a numbered frame. */
  prefix(topic: string, head: string): string;
  /** `PUBLISH`, or `SPUBLISH` on a cluster. */
  readonly publishCommand: string;
}

/**
 * Numbers, stores and publishes a push (its head) in one script; rejects
 * during an outage: then it was not published.
 */
export async function appendPublish(
  context: HistoryContext,
  topic: string,
  head: string,
  options: AppendOptions,
): Promise<Appended> {
  const { pub, key } = context;
  if (!pub) throw new Error("Redis is unavailable");
  const keys = [key(topic, "h"), key(topic, "s")];
  if (options.key !== undefined) keys.push(key(topic, `k:${options.key}`));
  const [duplicate, offset, epoch] = await pub.duplexAppend(
    keys.length,
    ...keys,
    head,
    options.size,
    options.ttl,
    options.keyTtl,
    newEpoch(),
    key(topic, "t"),
    context.prefix(topic, head),
    context.publishCommand,
  );
  return {
    offset: Number(offset),
    epoch: String(epoch),
    text: withPosition(head, Number(offset), String(epoch)),
    duplicate: Number(duplicate) === 1,
  };
}

/** Reads a topic's history (see `HISTORY`); rejects during an outage. */
export async function readHistory(
  context: HistoryContext,
  topic: string,
  since: number | undefined,
  limit: number,
  ttl: number,
): Promise<HistoryRead> {
  const { pub, key } = context;
  if (!pub) throw new Error("Redis is unavailable");
  const out = await pub.duplexHistory(
    key(topic, "h"),
    key(topic, "s"),
    since === undefined ? "" : String(since),
    limit,
    ttl,
    newEpoch(),
  );
  const epoch = String(out[0]);
  const entries = [];
  for (let i = 3; i + 1 < out.length; i += 2) {
    const offset = Number(out[i]);
    entries.push({
      offset,
      text: withPosition(String(out[i + 1]), offset, epoch),
    });
  }
  const first = Number(out[2]);
  return {
    epoch,
    top: Number(out[1]),
    entries,
    first: first < 0 ? undefined : first,
  };
}
