/**
 * A raw TCP WebSocket peer for what no polite client sends: malformed
 * handshakes, hand-built frames (masked, as clients must), peers that never
 * answer. Built on `Deno.connect`.
 */

import { within } from "@duplex-ws/testing";

/** The RFC 6455 sample key; any valid 16-byte nonce works. */
export const SAMPLE_KEY = "dGhlIHNhbXBsZSBub25jZQ==";

/** An HTTP response head as read off the wire. */
export interface RawResponse {
  status: number;
  headers: Headers;
  /** The whole response as text (head, and whatever body arrived). */
  text: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Builds a request head from a request line and header lines. */
export function requestHead(
  requestLine: string,
  headers: Record<string, string> | [string, string][],
): string {
  const lines = Array.isArray(headers) ? headers : Object.entries(headers);
  return `${requestLine}\r\n${
    lines.map(([k, v]) => `${k}: ${v}`).join("\r\n")
  }\r\n\r\n`;
}

/** The standard handshake headers, to override per test. */
export function handshakeHeaders(
  port: number,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    Host: `127.0.0.1:${port}`,
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Key": SAMPLE_KEY,
    "Sec-WebSocket-Version": "13",
    ...extra,
  };
}

function parseHead(text: string): RawResponse {
  const [head] = text.split("\r\n\r\n");
  const [statusLine, ...lines] = head.split("\r\n");
  const headers = new Headers();
  for (const line of lines) {
    const colon = line.indexOf(":");
    headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return { status: Number(statusLine.split(" ")[1]), headers, text };
}

/** A raw TCP connection to the server under test. */
export class RawPeer {
  readonly conn: Deno.TcpConn;
  #buffer = new Uint8Array(0);
  #closed = false;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }

  /** Connects to 127.0.0.1:port. */
  static async connect(port: number): Promise<RawPeer> {
    return new RawPeer(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  /** Writes bytes or text. */
  async write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    let written = 0;
    while (written < bytes.length) {
      written += await this.conn.write(bytes.subarray(written));
    }
  }

  async #fill(ms: number): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    const n = await within(this.conn.read(chunk), ms, "raw read");
    if (n === null) return false;
    const merged = new Uint8Array(this.#buffer.length + n);
    merged.set(this.#buffer);
    merged.set(chunk.subarray(0, n), this.#buffer.length);
    this.#buffer = merged;
    return true;
  }

  #take(n: number): Uint8Array {
    const out = this.#buffer.slice(0, n);
    this.#buffer = this.#buffer.slice(n);
    return out;
  }

  /** Reads an HTTP response head (and leaves any frames after it buffered). */
  async readResponse(ms = 5000): Promise<RawResponse> {
    for (;;) {
      const text = decoder.decode(this.#buffer);
      const end = text.indexOf("\r\n\r\n");
      if (end >= 0) {
        const response = parseHead(text);
        // Keep what follows the head for frame reads; the body, if any, is in `text`.
        const headBytes = encoder.encode(text.slice(0, end + 4)).length;
        const length = Number(response.headers.get("content-length") ?? 0);
        while (this.#buffer.length < headBytes + length) {
          if (!await this.#fill(ms)) break;
        }
        response.text = decoder.decode(this.#take(headBytes + length));
        return response;
      }
      if (!await this.#fill(ms)) {
        throw new Error("Connection closed before a response head");
      }
    }
  }

  /** Sends a request head and reads the response. */
  async request(head: string, ms = 5000): Promise<RawResponse> {
    await this.write(head);
    return await this.readResponse(ms);
  }

  /** Performs a valid handshake; throws unless the answer is 101. */
  async handshake(
    port: number,
    extra: Record<string, string> = {},
    path = "/",
  ): Promise<RawResponse> {
    const response = await this.request(
      requestHead(`GET ${path} HTTP/1.1`, handshakeHeaders(port, extra)),
    );
    if (response.status !== 101) {
      throw new Error(`Handshake answered ${response.status}`);
    }
    return response;
  }

  /** Reads one server frame; `null` when the TCP connection ended first. */
  async readFrame(ms = 5000): Promise<Frame | null> {
    for (;;) {
      const frame = parseFrame(this.#buffer);
      if (frame) {
        this.#take(frame.size);
        return frame;
      }
      if (!await this.#fill(ms)) return null;
    }
  }

  /** Reads until the server closes TCP; `true` when it did within `ms`. */
  async readUntilEof(ms = 5000): Promise<boolean> {
    try {
      while (await this.#fill(ms)) this.#take(this.#buffer.length);
      return true;
    } catch {
      return false;
    }
  }

  /** Closes the TCP connection (once). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.conn.close();
    } catch {
      // already closed by the peer
    }
  }
}

/** A frame read from the server. */
export interface Frame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Uint8Array;
  /** Bytes the frame took on the wire. */
  size: number;
}

/** Opcodes of RFC 6455 §5.2. */
export const Opcode = {
  CONTINUATION: 0x0,
  TEXT: 0x1,
  BINARY: 0x2,
  CLOSE: 0x8,
  PING: 0x9,
  PONG: 0xa,
} as const;

function parseFrame(buffer: Uint8Array): Frame | null {
  if (buffer.length < 2) return null;
  const first = buffer[0];
  const second = buffer[1];
  let length = second & 0x7f;
  let offset = 2;
  if (length === 126) {
    if (buffer.length < 4) return null;
    length = (buffer[2] << 8) | buffer[3];
    offset = 4;
  } else if (length === 127) {
    if (buffer.length < 10) return null;
    length = Number(
      new DataView(buffer.buffer, buffer.byteOffset + 2, 8).getBigUint64(0),
    );
    offset = 10;
  }
  const masked = (second & 0x80) !== 0;
  const maskOffset = offset;
  if (masked) offset += 4;
  if (buffer.length < offset + length) return null;
  const payload = buffer.slice(offset, offset + length);
  if (masked) {
    for (let i = 0; i < payload.length; i++) {
      payload[i] ^= buffer[maskOffset + (i % 4)];
    }
  }
  return {
    fin: (first & 0x80) !== 0,
    rsv: (first >> 4) & 0x7,
    opcode: first & 0x0f,
    masked,
    payload,
    size: offset + length,
  };
}

/** Options of {@linkcode buildFrame}. */
export interface BuildFrameOptions {
  /** @default {true} */
  fin?: boolean;
  /** RSV1-3 as a 3-bit number. @default {0} */
  rsv?: number;
  /** Mask the payload, as clients must. @default {true} */
  mask?: boolean;
  /** Declare this length instead of the payload's. */
  declaredLength?: number | bigint;
}

/** Builds a client frame. */
export function buildFrame(
  opcode: number,
  payload: Uint8Array | string = new Uint8Array(0),
  options: BuildFrameOptions = {},
): Uint8Array {
  const { fin = true, rsv = 0, mask = true } = options;
  const data = typeof payload === "string" ? encoder.encode(payload) : payload;
  const length = options.declaredLength ?? data.length;
  const header: number[] = [
    (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0x0f),
  ];
  const maskBit = mask ? 0x80 : 0;
  if (typeof length === "bigint" || length > 0xffff) {
    header.push(maskBit | 127);
    const big = BigInt(length);
    for (let shift = 56n; shift >= 0n; shift -= 8n) {
      header.push(Number((big >> shift) & 0xffn));
    }
  } else if (length >= 126) {
    header.push(maskBit | 126, length >> 8, length & 0xff);
  } else {
    header.push(maskBit | length);
  }
  const key = mask
    ? crypto.getRandomValues(new Uint8Array(4))
    : new Uint8Array(0);
  const body = data.slice();
  if (mask) { for (let i = 0; i < body.length; i++) body[i] ^= key[i % 4]; }
  const out = new Uint8Array(header.length + key.length + body.length);
  out.set(header);
  out.set(key, header.length);
  out.set(body, header.length + key.length);
  return out;
}

/** The payload of a close frame: a 2-byte code and a UTF-8 reason. */
export function closePayload(
  code: number,
  reason: string | Uint8Array = "",
): Uint8Array {
  const text = typeof reason === "string" ? encoder.encode(reason) : reason;
  const out = new Uint8Array(2 + text.length);
  out[0] = code >> 8;
  out[1] = code & 0xff;
  out.set(text, 2);
  return out;
}

/** Reads a close frame's code and reason. */
export function readClose(frame: Frame): { code: number; reason: string } {
  if (frame.payload.length < 2) return { code: 1005, reason: "" };
  return {
    code: (frame.payload[0] << 8) | frame.payload[1],
    reason: decoder.decode(frame.payload.subarray(2)),
  };
}
