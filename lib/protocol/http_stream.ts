/**
 * The HTTP transport's wire (docs/PROTOCOL.md §7), both sides: the header
 * that names a session on `POST`, the events the stream carries, and a
 * Server-Sent Events reader for clients that read the stream with `fetch`
 * (an `EventSource` parses it by itself). Web APIs only.
 *
 * @module
 */

/** The header a `POST` names its session with. */
export const SESSION_HEADER = "Duplex-Session";

/**
 * The stream's first push:
 * `{"event":"welcome","data":{"session":"<id>","maxBody":<bytes>,"heartbeat":<ms>}}`:
 * the session's id, the bytes a `POST`'s body may have, and the
 * milliseconds between the stream's comment lines.
 */
export const STREAM_WELCOME = "welcome";

/** The SSE event a binary frame comes as (its `data` is base64). */
export const SSE_BINARY = "binary";

/** The SSE event the server closes the stream with (`{code, reason}`). */
export const SSE_CLOSE = "close";

/** One Server-Sent Event. */
export interface SseEvent {
  /** `message` unless the event named another. */
  event: string;
  /** Its `data` lines, joined with `\n`. */
  data: string;
  /** Its `id`, when it had one. */
  id?: string;
}

/**
 * Reads Server-Sent Events from text as it arrives: feed it chunks, get the
 * events completed so far (comments and unknown fields are skipped).
 *
 * @example
 * ```ts
 * import { SseReader } from "./http_stream.ts";
 * const reader = new SseReader();
 * console.assert(reader.feed("id: 1\ndata: {\"event\":\"a\"}\n").length === 0);
 * console.assert(reader.feed("\n")[0].data === '{"event":"a"}');
 * ```
 */
export class SseReader {
  #rest = "";
  #event = "message";
  #data: string[] = [];
  #id: string | undefined;

  /** Takes the next chunk of text; the events it completed. */
  feed(chunk: string): SseEvent[] {
    const events: SseEvent[] = [];
    const lines = (this.#rest + chunk).split(/\r\n|\r|\n/);
    this.#rest = lines.pop()!;
    for (const line of lines) {
      if (line === "") {
        if (this.#data.length > 0) {
          const event: SseEvent = {
            event: this.#event,
            data: this.#data.join("\n"),
          };
          if (this.#id !== undefined) event.id = this.#id;
          events.push(event);
        }
        this.#event = "message";
        this.#data = [];
        continue;
      }
      if (line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "data") this.#data.push(value);
      else if (field === "event") this.#event = value;
      else if (field === "id") this.#id = value;
    }
    return events;
  }
}
