/**
 * What crosses Redis between nodes and how a node checks it before it
 * believes it: Redis is shared infrastructure, and anything that can publish
 * on its channels must not be able to reach clients with it. A frame is
 * `<node>\n<signature>\n<body>`: the sending node's id, an HMAC-SHA256 of
 * the topic, node and body when a shared secret is configured (empty
 * otherwise), and the body. A node drops (and counts) a frame that is too
 * large, malformed, unsigned or wrongly signed, or whose body is not what
 * its channel carries: a push envelope (`{"event":…}`, never a reply) on a
 * topic channel, a presence delta on a presence channel.
 *
 * @module
 */

/** `node:crypto`'s HMAC, loaded only when a secret is set (see `FrameCodec.ready`). */
type CreateHmac = typeof import("node:crypto").createHmac;
import {
  MAX_PRESENCE_KEY_LENGTH,
  MAX_PRESENCE_META_BYTES,
  type PresenceDelta,
} from "@duplex-ws/duplex/engine";

const NODE_ID = /^[0-9a-f-]{36}$/;

/** Signs and checks frames for one cluster. */
export class FrameCodec {
  readonly #secret: string | undefined;
  readonly #maxBytes: number;
  #createHmac: CreateHmac | undefined;

  /**
   * @param secret The shared HMAC secret, or `undefined` for unsigned frames.
   * @param maxBytes The largest frame accepted (UTF-16 code units).
   */
  constructor(secret: string | undefined, maxBytes: number) {
    this.#secret = secret;
    this.#maxBytes = maxBytes;
  }

  /**
   * Loads the HMAC when frames are signed: `node:crypto` costs a process
   * about 20 ms and 8 MiB at start, so an engine without a secret (and an
   * app without Redis) never loads it. Call before encoding or decoding.
   */
  async ready(): Promise<void> {
    if (this.#secret === undefined || this.#createHmac) return;
    ({ createHmac: this.#createHmac } = await import("node:crypto"));
  }

  /** A frame carrying `body` from `node` for `topic`. */
  encode(topic: string, node: string, body: string): string {
    return `${node}\n${this.#sign(topic, node, body)}\n${body}`;
  }

  /**
   * The start of a numbered frame, which the engine completes with
   * `@<offset>:<epoch>\n<head>` once it has numbered the publish: the
   * signature covers `@` and the head, the position is Redis's.
   */
  prefix(topic: string, node: string, head: string): string {
    return `${node}\n${this.#sign(topic, node, `@${head}`)}\n`;
  }

  /**
   * The sender and body of a frame (for a numbered one, the head and its
   * position), or `undefined` when it must be dropped (too large,
   * malformed, unsigned, or wrongly signed).
   */
  decode(
    topic: string,
    frame: string,
  ): {
    node: string;
    body: string;
    position?: { offset: number; epoch: string };
  } | undefined {
    if (frame.length > this.#maxBytes) return undefined;
    const first = frame.indexOf("\n");
    const second = frame.indexOf("\n", first + 1);
    if (first !== 36 || second < 0) return undefined;
    const node = frame.slice(0, first);
    if (!NODE_ID.test(node)) return undefined;
    const signature = frame.slice(first + 1, second);
    let body = frame.slice(second + 1);
    let signed = body;
    let position: { offset: number; epoch: string } | undefined;
    if (body.startsWith("@")) {
      const line = body.indexOf("\n");
      const match = /^@(\d{1,15}):([0-9a-z]{1,64})$/.exec(body.slice(0, line));
      if (line < 0 || !match) return undefined;
      position = { offset: Number(match[1]), epoch: match[2] };
      body = body.slice(line + 1);
      signed = `@${body}`;
    }
    if (this.#secret !== undefined) {
      if (!sameText(signature, this.#sign(topic, node, signed))) {
        return undefined;
      }
    } else if (signature !== "") return undefined;
    return position ? { node, body, position } : { node, body };
  }

  #sign(topic: string, node: string, body: string): string {
    if (this.#secret === undefined) return "";
    if (!this.#createHmac) throw new Error("FrameCodec: call ready() first");
    return this.#createHmac("sha256", this.#secret)
      .update(`${topic}\n${node}\n`).update(body).digest("base64url");
  }
}

/**
 * Whether two signatures are equal, in a time that depends on their
 * length only (which is public: base64url of a SHA-256), never on where
 * they differ.
 */
function sameText(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) {
    diff |= (a.charCodeAt(i) | 0) ^ b.charCodeAt(i);
  }
  return diff === 0;
}

/**
 * Whether a body is a push envelope a client may get: a JSON object text
 * that starts with `{"event":"` (how the server encodes every push; a reply
 * starts with `{"id":`). The rest is the publishing node's; clients parse it
 * as they parse any push.
 */
export function isPushBody(body: string): boolean {
  return body.startsWith('{"event":"') && body.endsWith("}");
}

/** The most entries one presence delta may carry. */
const MAX_DELTA_ENTRIES = 10_000;

/** Parses a presence delta body; `undefined` when it is not one. */
export function parsePresenceDelta(body: string): PresenceDelta | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return undefined;
  }
  const entries = Object.entries(value);
  if (entries.length > MAX_DELTA_ENTRIES) return undefined;
  // No prototype: a key such as "__proto__" stays a plain key.
  const delta: PresenceDelta = Object.create(null);
  for (const [key, entry] of entries) {
    if (key.length === 0 || key.length > MAX_PRESENCE_KEY_LENGTH) {
      return undefined;
    }
    if (entry === null) {
      delta[key] = null;
      continue;
    }
    if (
      typeof entry !== "object" || typeof entry.at !== "number" ||
      !Number.isFinite(entry.at) ||
      JSON.stringify(entry.meta ?? null).length > MAX_PRESENCE_META_BYTES
    ) {
      return undefined;
    }
    delta[key] = { meta: entry.meta ?? null, at: entry.at };
  }
  return delta;
}
