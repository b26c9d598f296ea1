/**
 * A topic's numbered stream in Redis. Without a secret, the `APPEND` script
 * numbers, stores and publishes a push in one step (so live order is replay
 * order). With one, nothing a node did not sign may pass, position
 * included, so a publish is two steps: `APPEND` numbers and stores it, then
 * the node signs the head with its position and `SEAL` stores that seal
 * beside the entry and publishes the signed frame (nodes order what they
 * receive by offset, so the order members get is unchanged). `HISTORY`
 * reads a stream back; with a secret, an entry whose seal does not check
 * (written into Redis by anyone else, or moved) is left out, as lost.
 *
 * @module
 */

import type {
  Appended,
  AppendOptions,
  HistoryEntry,
  HistoryRead,
} from "@duplex-ws/duplex/engine";
import { newEpoch } from "@duplex-ws/duplex/engine";
import { withPosition } from "@duplex-ws/protocol";
import type { Commands } from "./redis_connect.ts";
import { type FrameCodec, isPushBody } from "./redis_frames.ts";

/** What the history scripts need of the engine. */
export interface HistoryContext {
  /** The command client, when ready. */
  readonly pub: Commands | undefined;
  /** A topic's key of a kind (`h` meta, `s` stream, `g` seals, `t` channel, `k:<key>`). */
  key(topic: string, kind: string): string;
  /** Signs and checks frames. */
  readonly frames: FrameCodec;
  /** This node's id. */
  readonly node: string;
  /** `PUBLISH`, or `SPUBLISH` on a cluster. */
  readonly publishCommand: string;
}

/** `offset:epoch`, `empty` (only if the topic has none), or `` (no condition). */
function expected(ifPosition: AppendOptions["ifPosition"]): string {
  if (ifPosition === undefined) return "";
  return ifPosition === null
    ? "empty"
    : `${ifPosition.offset}:${ifPosition.epoch}`;
}

/**
 * Numbers, stores and publishes a push (its head); rejects during an
 * outage: then it was not published.
 */
export async function appendPublish(
  context: HistoryContext,
  topic: string,
  head: string,
  options: AppendOptions,
): Promise<Appended> {
  const { pub, key, frames, node, publishCommand } = context;
  if (!pub) throw new Error("Redis is unavailable");
  const keys = [key(topic, "h"), key(topic, "s"), key(topic, "l")];
  if (options.key !== undefined) keys.push(key(topic, `k:${options.key}`));
  const channel = key(topic, "t");
  const { latest } = options;
  const [outcome, offset, epoch] = await pub.duplexAppend(
    keys.length,
    ...keys,
    head,
    options.size,
    options.ttl,
    options.keyTtl,
    newEpoch(),
    frames.signed ? "" : channel,
    frames.prefix(node),
    publishCommand,
    expected(options.ifPosition),
    latestField(latest),
    latest?.maxKeys ?? 0,
  );
  const position = { offset: Number(offset), epoch: String(epoch) };
  if (Number(outcome) === 0 && frames.signed) {
    const seal = frames.seal(topic, node, position, head);
    await pub.duplexSeal(
      key(topic, "g"),
      key(topic, "l"),
      position.offset,
      seal,
      options.size,
      options.ttl,
      channel,
      frames.numbered(topic, node, position, head),
      publishCommand,
      latestField(latest),
      `${position.offset}:${position.epoch}\n${seal}\n${head}`,
    );
  }
  return {
    ...position,
    text: withPosition(head, position.offset, position.epoch),
    duplicate: Number(outcome) === 1,
    conflict: Number(outcome) === 2 || undefined,
    full: Number(outcome) === 3 || undefined,
  };
}

/** The hash field of a `latest` value ("" when the topic keeps none). */
function latestField(latest: AppendOptions["latest"]): string {
  return latest ? `k${latest.key}` : "";
}

/**
 * A `latest` topic's values (`offset:epoch\nseal\nhead` per key), oldest
 * first; with a secret, one whose seal does not check is left out.
 */
export async function readLatest(
  context: HistoryContext,
  topic: string,
): Promise<HistoryEntry[]> {
  const { pub, key, frames } = context;
  if (!pub) throw new Error("Redis is unavailable");
  const entries: HistoryEntry[] = [];
  for (const value of Object.values(await pub.hgetall(key(topic, "l")))) {
    const [at, seal, ...rest] = value.split("\n");
    const head = rest.join("\n");
    const match = /^(\d{1,15}):([0-9a-z]{1,64})$/.exec(at);
    if (!match || !isPushBody(`${head}}}`)) continue;
    const position = { offset: Number(match[1]), epoch: match[2] };
    if (!frames.sealed(topic, seal || undefined, position, head)) continue;
    const text = withPosition(head, position.offset, position.epoch);
    entries.push({ offset: position.offset, text });
  }
  return entries.sort((a, b) => a.offset - b.offset);
}

/** Reads a topic's history (see `HISTORY`); rejects during an outage. */
export async function readHistory(
  context: HistoryContext,
  topic: string,
  since: number | undefined,
  limit: number,
  ttl: number,
): Promise<HistoryRead> {
  const { pub, key, frames } = context;
  if (!pub) throw new Error("Redis is unavailable");
  const keys = [key(topic, "h"), key(topic, "s")];
  if (frames.signed) keys.push(key(topic, "g"));
  const out = await pub.duplexHistory(
    keys.length,
    ...keys,
    since === undefined ? "" : String(since),
    limit,
    ttl,
    newEpoch(),
  );
  const epoch = String(out[0]);
  const step = frames.signed ? 3 : 2;
  const entries: HistoryEntry[] = [];
  for (let i = 3; i + step - 1 < out.length; i += step) {
    const offset = Number(out[i]);
    const head = String(out[i + 1]);
    const seal = frames.signed ? String(out[i + 2]) : undefined;
    // What a node did not publish is not replayed: it reads as lost.
    if (!isPushBody(`${head}}}`)) continue;
    if (!frames.sealed(topic, seal, { offset, epoch }, head)) continue;
    entries.push({ offset, text: withPosition(head, offset, epoch) });
  }
  const first = Number(out[2]);
  return {
    epoch,
    top: Number(out[1]),
    entries,
    first: first < 0 ? undefined : first,
  };
}
