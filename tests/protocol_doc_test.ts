/**
 * docs/PROTOCOL.md against the tables it documents: the error codes, the
 * library's closes with the reconnect rule, and the handshake refusals. A
 * code added to the code but not the doc (or the other way) fails here.
 */

import assert from "node:assert/strict";
import { HANDSHAKE_REFUSALS } from "../lib/core/handshake.ts";
import { LibraryClose, shouldReconnect } from "@duplex-ws/protocol";
import { ClientErrorCode, ErrorCode } from "@duplex-ws/protocol";

const doc = Deno.readTextFileSync(
  new URL("../docs/PROTOCOL.md", import.meta.url),
);

/** The text of the section under `heading`, up to the next heading. */
function section(heading: string): string {
  const start = doc.indexOf(`\n${heading}\n`);
  assert.ok(start >= 0, `PROTOCOL.md has no "${heading}"`);
  const rest = doc.slice(start + heading.length + 2);
  const end = rest.search(/\n#{2,3} /);
  return end < 0 ? rest : rest.slice(0, end);
}

/** The backticked first cells of a section's table rows. */
function firstCells(text: string): string[] {
  return [...text.matchAll(/^\| `([^`]+)` +\|/gm)].map((m) => m[1]);
}

Deno.test("PROTOCOL.md lists exactly the error codes of protocol/error_code.ts", () => {
  assert.deepEqual(
    firstCells(section("### Error codes")).sort(),
    Object.values(ErrorCode).sort(),
  );
  assert.deepEqual(
    firstCells(section("### Client error codes")).sort(),
    Object.values(ClientErrorCode).sort(),
  );
});

Deno.test("PROTOCOL.md lists exactly the library's closes, with the reconnect rule", () => {
  const rows = [
    ...section("### Codes the server sends").matchAll(
      /^\| (\d{4}) +\| `([^`]+)` +\|[^|]+\| (yes|no) +\|$/gm,
    ),
  ].map(([, code, reason, reconnect]) => ({
    code: Number(code),
    reason,
    reconnect: reconnect === "yes",
  }));
  const library = rows;
  assert.deepEqual(
    library.map(({ code, reason }) => ({ code, reason })).sort((a, b) =>
      a.code - b.code
    ),
    Object.values(LibraryClose).map(({ code, reason }) => ({ code, reason }))
      .sort((a, b) => a.code - b.code),
  );
  for (const row of rows) {
    assert.equal(row.reconnect, shouldReconnect(row.code), `${row.code}`);
  }
});

Deno.test("PROTOCOL.md lists every handshake refusal reason", () => {
  const reasons = [
    ...section("## 1. Opening handshake (`tests/handshake_test.ts`)").matchAll(
      /\| `([a-z_]+)` +\|$/gm,
    ),
  ].map((m) => m[1]);
  assert.deepEqual(
    reasons.sort(),
    [...Object.keys(HANDSHAKE_REFUSALS), "auth"].sort(),
  );
});
