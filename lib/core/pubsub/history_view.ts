/**
 * A topic's history as the app reads it from the server side
 * (`ctx.history`, `server.history`): decoded entries, each with its
 * position, and the topic's position now, even when history keeps nothing.
 * What a decision on shared state reads before it publishes with
 * `ifPosition`.
 *
 * @module
 */

import {
  ErrorCode,
  isStreamPosition,
  type StreamPosition,
} from "@duplex-ws/protocol";
import { EventError } from "../event_error.ts";
import type { HistoryRead } from "./history.ts";

/** What to read of a topic's history. */
export interface HistoryOptions {
  /**
   * The last this many publishes (at most `maxReplay`).
   * @default {0: only the position}
   */
  last?: number;
  /**
   * The publishes after this position (at most `maxReplay`), when its
   * epoch is the topic's; none when the topic has another epoch (its
   * `position` says which).
   */
  since?: StreamPosition;
}

/** One publish read back. */
export interface HistoryItem<Data = unknown> {
  /** Its event. */
  event: string;
  /** Its data, as published. */
  data: Data;
  /** Its position. */
  position: StreamPosition;
}

/** What {@linkcode readHistory} gives. */
export interface TopicHistory<Data = unknown> {
  /** The publishes asked for, oldest first. */
  entries: HistoryItem<Data>[];
  /** The topic's latest position, or `null` when it has no publish yet. */
  position: StreamPosition | null;
}

/** Reads a topic's history through `read` (the engine's), decoded. */
export async function readHistory(
  read: (since: number | undefined, limit: number) => Promise<HistoryRead>,
  options: HistoryOptions,
  maxReplay: number,
): Promise<TopicHistory> {
  const { last, since } = options;
  if (since !== undefined && !isStreamPosition(since)) {
    throw new EventError(ErrorCode.INVALID_DATA, "since must be a position");
  }
  if (
    last !== undefined &&
    (!Number.isSafeInteger(last) || last < 0 || last > maxReplay)
  ) {
    throw new EventError(
      ErrorCode.INVALID_DATA,
      `last must be an integer from 0 to ${maxReplay}`,
    );
  }
  const limit = since ? maxReplay : last ?? 0;
  const found = await read(since?.offset, limit);
  const position = found.top > 0
    ? { offset: found.top, epoch: found.epoch }
    : null;
  const entries = since && since.epoch !== found.epoch
    ? []
    : found.entries.map((entry) => decode(entry.text));
  return { entries, position };
}

/** A stored push, back to its event, data and position. */
export function decode(text: string): HistoryItem {
  const { event, data } = JSON.parse(text) as {
    event: string;
    data: Record<string, unknown>;
  };
  const { offset, epoch, ...published } = data;
  return {
    event,
    data: published,
    position: { offset: offset as number, epoch: epoch as string },
  };
}

/** Whether history after `since` is all there, within the replay cap. */
export function isContinuous(
  since: StreamPosition,
  read: HistoryRead,
  maxReplay: number,
): boolean {
  if (since.epoch !== read.epoch || since.offset > read.top) return false;
  if (since.offset === read.top) return true;
  const { entries } = read;
  // Every offset after `since` is there: none missing in the middle.
  return entries.length <= maxReplay &&
    entries.length === read.top - since.offset &&
    entries[0]?.offset === since.offset + 1 &&
    entries.at(-1)?.offset === read.top;
}
