/**
 * Keeps docs/CONFORMANCE.md honest: every catalogue row T-1…T-74 appears
 * once, the attack rows X-1… are numbered in order and each names a test,
 * and every test a row names exists in the file it names.
 */

import assert from "node:assert/strict";

const DOC = new URL("../docs/CONFORMANCE.md", import.meta.url);
const TESTS = new URL("./", import.meta.url);
/** `file_test.ts › name`, the file in tests/ or an example's (`examples/x/app_test.ts`). */
const TEST_REF = /^`((?:examples\/[a-z_]+\/)?[a-z0-9_]+_test\.ts) › (.+)`$/;

interface Row {
  id: string;
  test: string;
}

function rows(markdown: string): Row[] {
  return markdown.split("\n")
    .filter((line) => /^\|\s*[TX]-\d+\s*\|/.test(line))
    .map((line) => {
      const cells = line.split("|").map((cell) => cell.trim());
      return { id: cells[1], test: cells[cells.length - 2] };
    });
}

Deno.test("docs/CONFORMANCE.md lists T-1…T-74 once each, with a test or a reason", async () => {
  const found = rows(await Deno.readTextFile(DOC)).filter((row) =>
    row.id.startsWith("T-")
  );
  const ids = found.map((row) => row.id);
  assert.deepEqual(ids, Array.from({ length: 74 }, (_, i) => `T-${i + 1}`));
  for (const row of found) {
    assert.ok(
      row.test === "n/a" || /^`[a-z0-9_]+_test\.ts › .+`$/.test(row.test),
      `${row.id}: "${row.test}"`,
    );
  }
  const reasons = found.filter((row) => row.test === "n/a");
  assert.ok(reasons.length <= 6, `${reasons.length} rows without a test`);
});

Deno.test("docs/CONFORMANCE.md numbers the attack rows X-1… in order, each with a test", async () => {
  const attacks = rows(await Deno.readTextFile(DOC)).filter((row) =>
    row.id.startsWith("X-")
  );
  assert.ok(attacks.length > 0);
  assert.deepEqual(
    attacks.map((row) => row.id),
    attacks.map((_, i) => `X-${i + 1}`),
  );
  for (const row of attacks) {
    assert.match(row.test, TEST_REF, row.id);
  }
});

Deno.test("every test docs/CONFORMANCE.md names exists in its file", async () => {
  const sources = new Map<string, string>();
  for (const row of rows(await Deno.readTextFile(DOC))) {
    if (row.test === "n/a") continue;
    const [, file, name] = row.test.match(TEST_REF)!;
    if (!sources.has(file)) {
      // A bare file is in tests/; an example's test is named from the root.
      const url = file.startsWith("examples/")
        ? new URL(`../${file}`, TESTS)
        : new URL(file, TESTS);
      sources.set(file, await Deno.readTextFile(url));
    }
    // Names may be split by the formatter or built with a template: compare without spaces.
    const squash = (text: string) => text.replace(/\s+/g, "");
    const source = squash(sources.get(file)!);
    assert.ok(
      source.includes(squash(name)),
      `${row.id}: no test "${name}" in ${file}`,
    );
  }
});
