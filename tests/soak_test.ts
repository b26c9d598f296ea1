/**
 * The short soak CI runs: `bench/soak.ts --quick` (200 connections, 5 s,
 * slow and abrupt peers among them) must lose nothing and leak nothing.
 */

import assert from "node:assert/strict";

const SOAK = new URL("../bench/soak.ts", import.meta.url).pathname;

Deno.test("a short soak loses nothing and leaks nothing", async () => {
  const report = await Deno.makeTempFile({ suffix: ".json" });
  try {
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-all", SOAK, "--quick", "--json", report],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    const result = JSON.parse(await Deno.readTextFile(report));
    assert.ok(
      result.messages.acked > 100,
      `only ${result.messages.acked} acknowledged`,
    );
    assert.equal(result.deliveries.lost, 0);
    assert.equal(result.deliveries.duplicates, 0);
    assert.equal(result.deliveries.delivered, result.deliveries.expected);
    assert.equal(result.server.connectionsAtEnd, 0);
    assert.ok(result.server.fdsAtEnd <= result.server.fdsAtStart + 10);
  } finally {
    await Deno.remove(report);
  }
});
