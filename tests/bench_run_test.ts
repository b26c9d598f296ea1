/**
 * `deno task bench` on a machine without the bench's peers (before
 * `scripts/setup.sh`): it says what to run and exits 1, with no stack
 * trace, before starting anything.
 */

import assert from "node:assert/strict";

Deno.test("the bench without its peers says to run scripts/setup.sh and exits 1, without a stack trace", async () => {
  const root = new URL("..", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["task", "bench", "--quick", "--suite", "core"],
    cwd: root,
    env: { BENCH_PEERS: "/nonexistent/peers/" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 1);
  assert.match(stderr, /run scripts\/setup\.sh first/);
  assert.match(stderr, /--without-peers/);
  assert.doesNotMatch(stderr, /^\s+at /m, "no stack trace");
  assert.doesNotMatch(stderr, /ERR_MODULE_NOT_FOUND/);
});
