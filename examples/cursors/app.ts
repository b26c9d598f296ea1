/**
 * Live cursors on binary frames: every client sends its pointer as 4 bytes
 * (x, y as unsigned 16-bit, little-endian) and gets everyone's as one binary
 * frame per tick: 8 bytes per cursor that moved (id as unsigned 32-bit, x,
 * y). Moves are coalesced per tick, so a client that sends 1,000 moves a
 * second costs the others one frame per tick, not 1,000.
 *
 * JSON pushes say who is here: `cursor.hello` (your id, the others' ids) on
 * open, `cursor.joined` and `cursor.left` after. A frame that is not 4 bytes
 * closes the connection with 4400.
 *
 * @module
 */

import { z } from "zod";
import {
  type Context,
  createServer,
  type DuplexServer,
  EventRouter,
  HttpRouter,
  type Logger,
} from "@duplex-ws/duplex";

/** A cursor's connection: its id on the board. */
export interface CursorState {
  /** The cursor's id in frames. */
  id: number;
}

/** What the board pushes as JSON. */
export const pushes = {
  "cursor.hello": z.object({ id: z.number(), others: z.array(z.number()) }),
  "cursor.joined": z.object({ id: z.number() }),
  "cursor.left": z.object({ id: z.number() }),
};

/** The board's JSON pushes. */
export type CursorPushes = {
  [K in keyof typeof pushes]: z.infer<(typeof pushes)[K]>;
};

/** The close code for a malformed cursor frame. */
export const BAD_FRAME = 4400;

/** Bytes of one cursor in a frame from the server. */
export const CURSOR_BYTES = 8;

/** Encodes a move as the client sends it. */
export function encodeMove(x: number, y: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(4);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, x, true);
  view.setUint16(2, y, true);
  return bytes;
}

/** Decodes a frame from the server: id → [x, y]. */
export function decodeCursors(
  frame: ArrayBuffer,
): Map<number, [number, number]> {
  const view = new DataView(frame);
  const cursors = new Map<number, [number, number]>();
  for (let at = 0; at + CURSOR_BYTES <= frame.byteLength; at += CURSOR_BYTES) {
    cursors.set(view.getUint32(at, true), [
      view.getUint16(at + 4, true),
      view.getUint16(at + 6, true),
    ]);
  }
  return cursors;
}

type Ctx = Context<CursorState, CursorPushes>;

/** Who is on the board and where their cursors moved since the last tick. */
class Board {
  #members = new Map<number, Ctx>();
  #moved = new Map<number, [number, number]>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  readonly #tick: number;

  constructor(tick: number) {
    this.#tick = tick;
  }

  add(ctx: Ctx): void {
    const id = ctx.state.id;
    ctx.emit("cursor.hello", { id, others: [...this.#members.keys()] });
    for (const member of this.#members.values()) {
      member.emit("cursor.joined", { id });
    }
    this.#members.set(id, ctx);
  }

  move(ctx: Ctx, frame: Uint8Array<ArrayBuffer>): void {
    if (frame.byteLength !== 4) {
      ctx.close(BAD_FRAME, "cursor frames are 4 bytes");
      return;
    }
    const view = new DataView(frame.buffer, frame.byteOffset, 4);
    this.#moved.set(ctx.state.id, [
      view.getUint16(0, true),
      view.getUint16(2, true),
    ]);
    this.#timer ??= setTimeout(() => this.#flush(), this.#tick);
  }

  remove(ctx: Ctx): void {
    const id = ctx.state.id;
    if (!this.#members.delete(id)) return;
    this.#moved.delete(id);
    for (const member of this.#members.values()) {
      member.emit("cursor.left", { id });
    }
    if (this.#members.size === 0) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
  }

  /** One frame with every cursor that moved, encoded once, to everyone. */
  #flush(): void {
    this.#timer = undefined;
    if (this.#moved.size === 0) return;
    const frame = new Uint8Array(this.#moved.size * CURSOR_BYTES);
    const view = new DataView(frame.buffer);
    let at = 0;
    for (const [id, [x, y]] of this.#moved) {
      view.setUint32(at, id, true);
      view.setUint16(at + 4, x, true);
      view.setUint16(at + 6, y, true);
      at += CURSOR_BYTES;
    }
    this.#moved.clear();
    for (const member of this.#members.values()) member.send(frame);
  }
}

/** Options of {@linkcode createCursorsApp}. */
export interface CursorsOptions {
  /**
   * Milliseconds between frames.
   * @default {50}
   */
  tick?: number;
  /** Where to log. */
  logger?: Logger;
}

/** The router of a board. */
export function cursorsRouter(board: Board) {
  return new EventRouter<CursorState, CursorPushes>()
    .push("cursor.hello", pushes["cursor.hello"])
    .push("cursor.joined", pushes["cursor.joined"])
    .push("cursor.left", pushes["cursor.left"])
    .onOpen((ctx) => board.add(ctx))
    .binary((frame, ctx) => board.move(ctx, frame))
    .onClose((ctx) => board.remove(ctx));
}

/** The cursors router's type, for the typed client. */
export type CursorsRouter = ReturnType<typeof cursorsRouter>;

/** One board on one server. */
export function createCursorsApp(
  options: CursorsOptions = {},
): DuplexServer<CursorState, CursorPushes> {
  let next = 1;
  const board = new Board(options.tick ?? 50);
  return createServer({
    router: cursorsRouter(board),
    // Anyone may draw: each connection gets the next id.
    authenticate: () => ({ id: next++ }),
    http: new HttpRouter().get(
      "/healthz",
      (_r, { server }) => Response.json(server?.health()),
    ),
    // A move is 4 bytes: nothing larger is needed.
    maxMessageSize: 1024,
    logger: options.logger,
  });
}
