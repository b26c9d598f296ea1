/**
 * What crosses Redis between nodes and how a node checks it before it
 * believes it: Redis is shared infrastructure, and anything that can publish
 * on its channels must not be able to reach clients with it. A frame is
 * `<node>\n<signature>\n<body>`: the sending node's id, an HMAC-SHA256 of
 * the topic, node and body when a shared secret is configured (empty
 * otherwise), and the body; a numbered publish's body starts with its
 * position (`@<offset>:<epoch>\n`), which the signature covers, and its
 * history entry is sealed the same way. A node drops (and counts) a frame that is too
 * large, malformed, unsigned or wrongly signed, or whose body is not what
 * its channel carries: a push envelope (`{"event":…}`, never a reply) on a
 * topic channel, a presence delta on a presence channel.
 *
 * @module
 */

/** `node:crypto`'s HMAC, loaded only when a secret is set (see `FrameCodec.ready`). */
type CreateHmac = typeof import("node:crypto").createHmac;

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

  /** Whether frames are signed (a secret is set). */
  get signed(): boolean {
    return this.#secret !== undefined;
  }

  /**
   * The start of a numbered frame that the `APPEND` script completes with
   * `@<offset>:<epoch>\n<head>` once it has numbered the publish: for an
   * engine without a secret only (nothing is signed then).
   */
  prefix(node: string): string {
    return `${node}\n\n`;
  }

  /**
   * A numbered frame with its position, signed whole: with a secret, the
   * signature covers the position, so a frame sent again at another
   * position is dropped.
   */
  numbered(
    topic: string,
    node: string,
    position: { offset: number; epoch: string },
    head: string,
  ): string {
    return this.encode(
      topic,
      node,
      `@${position.offset}:${position.epoch}\n${head}`,
    );
  }

  /**
   * What is stored beside a history entry when frames are signed: its node
   * and the signature of its position and head.
   */
  seal(
    topic: string,
    node: string,
    position: { offset: number; epoch: string },
    head: string,
  ): string {
    const body = `@${position.offset}:${position.epoch}\n${head}`;
    return `${node}.${this.#sign(topic, node, body)}`;
  }

  /** Whether a history entry's seal is this cluster's for its position and head. */
  sealed(
    topic: string,
    seal: string | undefined,
    position: { offset: number; epoch: string },
    head: string,
  ): boolean {
    if (this.#secret === undefined) return true;
    if (seal === undefined || seal.length < 38) return false;
    const node = seal.slice(0, 36);
    const body = `@${position.offset}:${position.epoch}\n${head}`;
    return NODE_ID.test(node) &&
      sameText(seal.slice(37), this.#sign(topic, node, body));
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
    const signed = frame.slice(second + 1);
    if (this.#secret !== undefined) {
      if (!sameText(signature, this.#sign(topic, node, signed))) {
        return undefined;
      }
    } else if (signature !== "") return undefined;
    if (!signed.startsWith("@")) return { node, body: signed };
    const line = signed.indexOf("\n");
    const match = /^@(\d{1,15}):([0-9a-z]{1,64})$/.exec(signed.slice(0, line));
    if (line < 0 || !match) return undefined;
    const position = { offset: Number(match[1]), epoch: match[2] };
    return { node, body: signed.slice(line + 1), position };
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
