/**
 * Streamed replies: an `ask` whose answer arrives a token at a time, as a
 * language model's would (a deterministic generator stands in for the
 * model). The handler returns `ctx.stream(...)`; the page reads it with
 * `for await (const token of client.stream("ask", {prompt}))`, and an
 * answer keeps going across a dropped connection, to the last token, once.
 *
 * - `ask {prompt, tokens?, every?}` → a stream of `string` tokens, ending
 *   with `{tokens}`; cancel it (the page's Stop) and the generator stops.
 * - `GET /` is the page, `GET /app.js` its script, `GET /duplex/client.js`
 *   the typed client (`serveClient`).
 *
 * @module
 */

import { z } from "zod";
import {
  createServer,
  type DuplexServer,
  EventRouter,
  HttpRouter,
  type ServerOptions,
} from "@duplex-ws/duplex";
import { serveClient } from "@duplex-ws/client/serve";
import { PAGE_HTML, PAGE_JS } from "./page.ts";

const WORDS = [
  "the",
  "stream",
  "keeps",
  "every",
  "token",
  "in",
  "order",
  "once",
  "across",
  "a",
  "dropped",
  "connection",
  "and",
  "any",
  "node",
  "resumes",
];

/** The model: `count` tokens for a prompt, the same every time. */
export function* tokensFor(prompt: string, count: number): Generator<string> {
  let seed = 0;
  for (const char of prompt) seed = (seed * 31 + char.charCodeAt(0)) >>> 0;
  for (let i = 0; i < count; i++) {
    seed = (seed * 1_103_515_245 + 12_345) >>> 0;
    yield `${i === 0 ? "" : " "}${WORDS[(seed >>> 16) % WORDS.length]}`;
  }
}

/** Waits `ms`, or less when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
  });
}

const ask = z.object({
  prompt: z.string().min(1).max(500),
  tokens: z.number().int().min(1).max(5_000).default(200),
  every: z.number().int().min(0).max(1_000).default(15),
});

export const answerRouter = new EventRouter().on(
  "ask",
  ask,
  ({ prompt, tokens, every }, ctx) =>
    ctx.stream<string, { tokens: number }>(async (stream) => {
      let sent = 0;
      for (const token of tokensFor(prompt, tokens)) {
        if (stream.signal.aborted) break; // cancelled: stop generating
        await stream.write(token);
        sent++;
        if (every > 0) await pause(every, stream.signal);
      }
      return { tokens: sent };
    }),
  {
    stream: z.string(),
    summary: "Answers a prompt a token at a time (a streamed reply).",
  },
);

/** The example's router type, for `DuplexClient<AnswerRouter>`. */
export type AnswerRouter = typeof answerRouter;

const text = (body: string, type: string) => () =>
  new Response(body, { headers: { "content-type": `${type}; charset=utf-8` } });

/** Creates the streaming app: the socket, the page and the client module. */
export function createAnswerApp(
  options: Omit<ServerOptions<undefined, Record<never, never>>, "router"> = {},
): DuplexServer<undefined, Record<never, never>> {
  return createServer({
    http: new HttpRouter()
      .get("/", text(PAGE_HTML, "text/html"))
      .get("/app.js", text(PAGE_JS, "text/javascript"))
      .get("/duplex/client.js", (request) => serveClient(request)!),
    ...options,
    router: answerRouter,
  });
}
