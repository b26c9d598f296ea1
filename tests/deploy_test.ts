/**
 * The entry Deno Deploy uses, `deno serve main.ts`, with only the
 * permissions Deploy grants an app here (net and env; a request path that
 * read a file would fail), passes the core conformance checks.
 */

import assert from "node:assert/strict";
import { CORE_ENV, coreConformance } from "./_core.ts";
import { startMain } from "./_process.ts";

Deno.test("deno serve main.ts (the Deploy entry) passes the core conformance checks", async (t) => {
  const node = await startMain("serve", CORE_ENV);
  try {
    await coreConformance(t, node);
  } finally {
    const status = await node.stop("SIGTERM");
    assert.equal(status.code, 0);
  }
});
