/**
 * The cluster soak's client socket: the least a WebSocket client can be
 * (RFC 6455 over `node:net`, which can bind a loopback source address), so
 * that 50,000 of them fit beside three nodes on two cores. It reads text,
 * ping and close frames from the server (unmasked, never fragmented by
 * duplex), answers pings, and sends masked text frames.
 */

import { Buffer } from "node:buffer";
import net from "node:net";

const HANDSHAKE_END = Buffer.from("\r\n\r\n");

/** One client socket (see the module docs). */
export class LeanSocket {
  /** Called with each text message. */
  onmessage: (text: string) => void = () => {};
  /** Called once the handshake is answered 101. */
  onopen: () => void = () => {};
  /** Called once when the connection is gone. */
  onclose: () => void = () => {};
  readonly socket: net.Socket;
  #buffer: Buffer = Buffer.alloc(0);
  #open = false;
  #closed = false;

  /** Connects to `127.0.0.1:port` from `localAddress`. */
  constructor(port: number, localAddress: string) {
    const socket = net.connect({ host: "127.0.0.1", port, localAddress });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.on("connect", () => {
      socket.write(
        `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
          "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
          "Sec-WebSocket-Version: 13\r\n\r\n",
      );
    });
    socket.on("data", (chunk: Buffer) => this.#data(chunk));
    socket.on("error", () => {});
    socket.on("close", () => {
      if (this.#closed) return;
      this.#closed = true;
      this.onclose();
    });
  }

  /** Whether the handshake succeeded and the connection is up. */
  get open(): boolean {
    return this.#open && !this.#closed;
  }

  /** Sends a text message (masked, as a client must). */
  send(text: string): void {
    if (!this.open) return;
    this.#frame(0x1, Buffer.from(text));
  }

  /** Drops the TCP connection at once. */
  terminate(): void {
    this.socket.destroy();
  }

  #frame(opcode: number, payload: Buffer): void {
    const length = payload.length;
    const head = length < 126 ? 2 : length < 65_536 ? 4 : 10;
    const frame = Buffer.alloc(head + 4 + length);
    frame[0] = 0x80 | opcode;
    if (length < 126) frame[1] = 0x80 | length;
    else if (head === 4) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(length, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeBigUInt64BE(BigInt(length), 2);
    }
    const mask = crypto.getRandomValues(new Uint8Array(4));
    frame.set(mask, head);
    for (let i = 0; i < length; i++) {
      frame[head + 4 + i] = payload[i] ^ mask[i & 3];
    }
    this.socket.write(frame);
  }

  #data(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0
      ? chunk
      : Buffer.concat([this.#buffer, chunk]);
    if (!this.#open) {
      const end = this.#buffer.indexOf(HANDSHAKE_END);
      if (end < 0) return;
      if (!this.#buffer.subarray(0, 12).toString().endsWith("101")) {
        return void this.socket.destroy();
      }
      this.#open = true;
      this.#buffer = this.#buffer.subarray(end + 4);
      this.onopen();
    }
    while (this.#frames()) { /* one frame each turn */ }
  }

  /** Takes one whole frame off the buffer; `false` when there is none. */
  #frames(): boolean {
    const buffer = this.#buffer;
    if (buffer.length < 2) return false;
    let length = buffer[1] & 0x7f;
    let at = 2;
    if (length === 126) {
      if (buffer.length < 4) return false;
      length = buffer.readUInt16BE(2);
      at = 4;
    } else if (length === 127) {
      if (buffer.length < 10) return false;
      length = Number(buffer.readBigUInt64BE(2));
      at = 10;
    }
    if (buffer.length < at + length) return false;
    const payload = buffer.subarray(at, at + length);
    this.#buffer = buffer.subarray(at + length);
    const opcode = buffer[0] & 0x0f;
    if (opcode === 0x1) this.onmessage(payload.toString());
    else if (opcode === 0x9) this.#frame(0xa, Buffer.from(payload));
    else if (opcode === 0x8) {
      this.#frame(0x8, Buffer.from(payload.subarray(0, 2)));
      this.socket.end();
    }
    return true;
  }
}
