/**
 * The Postgres engine's notifications, read: fields separated by `US`
 * (JSON never holds that character raw), the first naming the kind:
 *
 * | Kind | Fields                                            |
 * | ---- | ------------------------------------------------- |
 * | `n`  | node, own (`1`: its node delivers it too), topic, offset, epoch, head |
 * | `t`  | node, topic, push text                            |
 * | `c`  | node, to (`*` or a node), message                 |
 * | `p`  | node, topic, presence delta (JSON)                |
 * | `r`  | the id of a `payloads` row holding one of these   |
 *
 * @module
 */

import {
  isValidTopic,
  type StreamPosition,
  withPosition,
} from "@duplex-ws/protocol";
import type { Sql } from "./_postgres.ts";
import { US } from "./postgres_schema.ts";

/** A notification, read. */
export type Notification =
  | {
    kind: "publish";
    node: string;
    /** Whether its own node delivers it too (a transaction's publish). */
    own: boolean;
    topic: string;
    text: string;
    position?: StreamPosition;
  }
  | { kind: "control"; node: string; own: false; to: string; message: string }
  | {
    kind: "presence";
    node: string;
    own: false;
    topic: string;
    delta: string;
  };

/**
 * Reads a notification, fetching one sent by reference with `fetch`;
 * `undefined` for one that is not well formed.
 */
export async function readNotification(
  payload: string,
  fetch: (id: string) => Promise<string | undefined>,
): Promise<Notification | undefined> {
  if (payload.startsWith(`r${US}`)) {
    const body = await fetch(payload.slice(2));
    return body === undefined || body.startsWith(`r${US}`)
      ? undefined
      : await readNotification(body, fetch);
  }
  const [kind, node, ...rest] = payload.split(US);
  if (kind === "n" && rest.length >= 5) {
    const [own, topic, offset, epoch, ...head] = rest;
    const position = { offset: Number(offset), epoch };
    if (!isValidTopic(topic) || !Number.isSafeInteger(position.offset)) return;
    const text = withPosition(head.join(US), position.offset, epoch);
    return { kind: "publish", node, own: own === "1", topic, text, position };
  }
  if (kind === "t" && rest.length >= 2) {
    const [topic, ...text] = rest;
    if (!isValidTopic(topic)) return;
    return { kind: "publish", node, own: false, topic, text: text.join(US) };
  }
  if (kind === "c" && rest.length >= 2) {
    const [to, ...message] = rest;
    return { kind: "control", node, own: false, to, message: message.join(US) };
  }
  if (kind === "p" && rest.length >= 2) {
    const [topic, ...delta] = rest;
    return { kind: "presence", node, own: false, topic, delta: delta.join(US) };
  }
  return undefined;
}

/** A notification sent by reference (over 8,000 bytes), from its row. */
export async function fetchPayload(
  sql: Sql,
  schema: string,
  id: string,
): Promise<string | undefined> {
  const [row] = await sql.unsafe(
    `select body from "${schema}".payloads where id = $1`,
    [id],
  ).catch(() => [undefined]);
  return row ? String(row.body) : undefined;
}
