/**
 * The Deno transport: `Deno.upgradeWebSocket` answers an admitted
 * handshake, and its socket becomes a {@linkcode Transport} whose events
 * drive the session. The one module that touches Deno's server WebSocket.
 *
 * @module
 */

import type { SessionDriver, Transport } from "./transport.ts";

const EVENTS = ["open", "message", "error", "close"] as const;

/**
 * Deno's errors after which it has sent the peer a close frame of its own
 * while reporting the close as code 0: `onClose` reports what was sent.
 */
const SENT_ON_ERROR: Readonly<Record<string, number>> = {
  "Invalid close code": 1002,
};

/**
 * Deno's server-side WebSocket as a transport. It is its socket's event
 * listener (`EventListenerObject`), so a connection costs no closures.
 */
export class DenoWebSocket implements Transport, EventListenerObject {
  /** `websocket`. */
  get kind(): string {
    return "websocket";
  }
  readonly #ws: WebSocket;
  #driver: SessionDriver | undefined;
  /** The close code Deno sent after an error, if it sent one. */
  #sent: number | undefined;

  /** Listens to `ws`; events wait for {@linkcode attach}. */
  constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.binaryType = "arraybuffer";
    for (const type of EVENTS) ws.addEventListener(type, this);
  }

  /** Hands the socket's events to the session from now on. */
  attach(driver: SessionDriver): void {
    this.#driver = driver;
  }

  /** Bytes Deno holds unsent. */
  get bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  /** Queues a frame. */
  send(data: string | Uint8Array<ArrayBuffer> | ArrayBuffer): void {
    this.#ws.send(data);
  }

  /** Sends a close frame. */
  close(code: number, reason: string): void {
    this.#ws.close(code, reason);
  }

  /**
   * Nothing: Deno has no per-socket terminate, so the socket stays until
   * the peer or the server's shutdown drops it (it is counted meanwhile).
   */
  terminate(): void {}

  /** The socket's listener. */
  handleEvent(event: Event): void {
    const driver = this.#driver!;
    switch (event.type) {
      case "message":
        return driver.received((event as MessageEvent).data);
      case "open":
        return driver.opened();
      case "error":
        this.#sent = SENT_ON_ERROR[(event as ErrorEvent).message];
        return;
      case "close": {
        for (const type of EVENTS) this.#ws.removeEventListener(type, this);
        const { code, reason, wasClean } = event as CloseEvent;
        if (code === 0 && this.#sent) {
          return driver.closed(this.#sent, "", true);
        }
        return driver.closed(code, reason, wasClean);
      }
    }
  }
}

/**
 * Upgrades a handshake with Deno: the 101 response and the transport, or
 * `undefined` when Deno refuses the request. The subprotocol header is set
 * here, not through Deno's `protocol` option: Deno splits the offer on ", "
 * only and throws for "a,b", which RFC 7230 lists and npm's ws sends.
 */
export function upgradeDeno(
  request: Request,
  idleTimeout: number,
  protocol: string | undefined,
): { response: Response; transport: DenoWebSocket } {
  const { socket, response } = Deno.upgradeWebSocket(request, { idleTimeout });
  if (protocol) response.headers.set("sec-websocket-protocol", protocol);
  return { response, transport: new DenoWebSocket(socket) };
}
