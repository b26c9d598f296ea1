/**
 * A last line of defence: Deno exits the whole process on an uncaught error
 * or an unhandled rejection, which would drop every connection because one
 * handler left a promise behind. The guard logs those instead.
 *
 * @module
 */

import type { Logger } from "./logger.ts";

let installed: Logger | undefined;

/**
 * Installs global `error` and `unhandledrejection` listeners that log and
 * keep the process alive. Installing again only replaces the logger.
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
    event.preventDefault();
    installed?.error("unhandled rejection", { error: event.reason });
  });
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    installed?.error("uncaught error", { error: event.error ?? event.message });
  });
}
