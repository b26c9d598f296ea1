/**
 * The entry Deno Deploy uses, `deno serve main.ts`, with only the
 * permissions Deploy grants an app here (net and env; a request path that
 * read a file would fail), passes the core conformance checks; so does the
 * same entry bundled for the edge as OPERATIONS.md "First start" advises
 * (`deno bundle --code-splitting`, then `deno serve dist/main.js`).
 */

import assert from "node:assert/strict";
import { CORE_ENV, coreConformance } from "./_core.ts";
import { type MainProcess, startMain } from "./_process.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;
const NO_LIMIT = "the descriptor limit cannot be read";

/** Runs the core conformance checks on `node`, then stops it (exit 0). */
async function conforms(t: Deno.TestContext, node: MainProcess) {
  try {
    await coreConformance(t, node);
  } finally {
    const status = await node.stop("SIGTERM");
    assert.equal(status.code, 0);
  }
  // Without read permission the limit cannot be read: said once per
  // process, though the example app makes two servers.
  assert.equal(node.output().split(NO_LIMIT).length - 1, 1, node.output());
}

Deno.test("deno serve main.ts (the Deploy entry) passes the core conformance checks", async (t) => {
  await conforms(t, await startMain("serve", CORE_ENV));
});

Deno.test("the Deploy entry bundled (deno bundle --code-splitting) passes the core conformance checks", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const bundle = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "--quiet", "--code-splitting", "--outdir", dir, MAIN],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(bundle.code, 0, new TextDecoder().decode(bundle.stderr));
    const args = ["serve", "--allow-net", "--allow-env", `${dir}/main.js`];
    await conforms(t, await startMain("serve", CORE_ENV, [], { args }));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
