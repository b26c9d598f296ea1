/**
 * A last line of defence, installed by the application (`main.ts`), never by
 * the library: Deno ends the whole process on an uncaught error or an
 * unhandled rejection, which would drop every connection because one
 * handler left a promise behind. The guard logs those instead, but only
 * those it can attribute to application code (a frame outside the runtime)
 * or to one peer (a message too large for the runtime's own string limit).
 * A failure of the runtime itself is logged and let through, so the
 * process ends non-zero and its supervisor restarts it.
 *
 * @module
 */

import type { Logger } from "./logger.ts";

let installed: Logger | undefined;
/** A failure the library causes on purpose while it runs (see `withExpectedFailure`). */
let expected: ((failure: unknown) => boolean) | undefined;

/** How an uncaught failure is judged. */
export type FailureKind = "app" | "peer" | "runtime";

/** Stack frames of code the runtime does not own: files, URLs, npm packages. */
const APP_FRAME = /\((?:file|https?|data|blob|npm|jsr):|\bat (?:file|https?):/;
const RUNTIME_FRAME = /\(?ext:[a-z_]+\/|\(node:|\bat node:/;

/**
 * Judges an uncaught failure: `peer` when Deno's WebSocket could not build
 * one peer's message (a fragmented text message past V8's string limit:
 * only that socket stops), `runtime` when every frame of its stack is the
 * runtime's own, `app` otherwise (anything that is not an `Error` is too).
 *
 * @example
 * ```ts
 * import { classifyFailure } from "./process_guard.ts";
 * const runtime = new Error("Too many open files (os error 24)");
 * runtime.stack = "Error: Too many open files\n    at ext:deno_http/00_serve.ts:1:2";
 * console.assert(classifyFailure(runtime) === "runtime");
 * console.assert(classifyFailure(new Error("mine")) === "app");
 * ```
 */
export function classifyFailure(failure: unknown): FailureKind {
  if (!(failure instanceof Error) || typeof failure.stack !== "string") {
    return "app";
  }
  const frames = failure.stack.split("\n").slice(1).filter((line) =>
    line.trim().startsWith("at ")
  );
  if (frames.length === 0) return "app";
  if (frames.some((frame) => APP_FRAME.test(frame))) return "app";
  if (!frames.every((frame) => RUNTIME_FRAME.test(frame))) return "app";
  const inWebSocket = frames.some((frame) =>
    frame.includes("ext:deno_websocket")
  );
  if (
    inWebSocket &&
    /failed to allocate string|Invalid string length|Array buffer allocation failed/
      .test(failure.message)
  ) {
    return "peer";
  }
  return "runtime";
}

function onFailure(event: Event, failure: unknown, what: string): void {
  const kind = classifyFailure(failure);
  if (kind === "runtime") {
    installed?.error(`${what} in the runtime: not guarded, the process ends`, {
      error: failure,
    });
    return;
  }
  event.preventDefault();
  if (kind === "peer") {
    installed?.warn("a peer's message failed inside the runtime", {
      error: failure,
    });
  } else installed?.error(what, { error: failure });
}

/**
 * Installs global `error` and `unhandledrejection` listeners that log
 * failures of application code (and the one per-peer runtime failure) and
 * keep the process alive; a failure of the runtime itself still ends it.
 * Installing again only replaces the logger.
 *
 * The router already catches what handlers throw or reject; the guard is for
 * work a handler starts and does not await.
 */
export function installProcessGuard(logger: Logger): void {
  if (installed !== undefined) {
    installed = logger;
    return;
  }
  installed = logger;
  globalThis.addEventListener("unhandledrejection", (event) => {
    onFailure(event, event.reason, "unhandled rejection");
  });
  globalThis.addEventListener("error", (event) => {
    if (expected?.(event.error)) return event.preventDefault();
    onFailure(event, event.error ?? event.message, "uncaught error");
  });
}

/**
 * Runs `during` (synchronous) with the uncaught errors `match` accepts
 * neither logged by the guard nor ending the process: for a failure the
 * library causes on purpose (`listen` aborting a server that Deno 2.9.6
 * cannot stop otherwise throws `BadResource` from the runtime's own
 * listener).
 */
export function withExpectedFailure(
  match: (failure: unknown) => boolean,
  during: () => void,
): void {
  const quiet = (event: ErrorEvent) => {
    if (match(event.error)) event.preventDefault();
  };
  expected = match;
  globalThis.addEventListener("error", quiet);
  try {
    during();
  } finally {
    expected = undefined;
    globalThis.removeEventListener("error", quiet);
  }
}
