/**
 * The configuration table (docs/CONFIGURATION.md, which the README links)
 * against the code: every default it shows
 * is the one in `SERVER_DEFAULTS` (or `LISTEN_DEFAULTS`), every option with a
 * default has a row, and every environment variable the `./env` reader reads
 * is listed (and nothing more).
 */

import assert from "node:assert/strict";
import { SERVER_DEFAULTS } from "@duplex-ws/duplex";
import { LISTEN_DEFAULTS } from "@duplex-ws/duplex/options";

const readme = Deno.readTextFileSync(
  new URL("../docs/CONFIGURATION.md", import.meta.url),
);
const ENV = new URL("../lib/env/", import.meta.url);
/** Every source file of the env reader, together. */
const envSource = [...Deno.readDirSync(ENV)]
  .filter((entry) => entry.name.endsWith(".ts"))
  .map((entry) => Deno.readTextFileSync(new URL(entry.name, ENV)))
  .join("\n");

interface Row {
  variable?: string;
  option?: string;
  default: string;
}

function configurationRows(): Row[] {
  const start = readme.indexOf("\n## Configuration\n");
  assert.ok(start >= 0, 'docs/CONFIGURATION.md has no "## Configuration"');
  const body = readme.slice(start).split("\n## ")[1];
  const rows: Row[] = [];
  for (const line of body.split("\n")) {
    const cells = line.split("|").slice(1, -1).map((cell) => cell.trim());
    if (
      cells.length < 4 || cells[0].startsWith("---") ||
      cells[0] === "Environment"
    ) {
      continue;
    }
    const code = (cell: string) => /^`([^`]+)`$/.exec(cell)?.[1];
    rows.push({
      variable: code(cells[0]),
      option: code(cells[1]),
      default: cells[2],
    });
  }
  return rows;
}

/** How a default is written in the table. */
function shown(value: unknown): string[] {
  if (Array.isArray(value)) return value.length === 0 ? ["none", "`[]`"] : [];
  return [`\`${value}\``];
}

Deno.test("README configuration defaults are SERVER_DEFAULTS", () => {
  const rows = configurationRows();
  const byOption = new Map(rows.map((row) => [row.option, row]));
  // Nested defaults (rateLimit, fanoutLimit) have a row per field.
  const defaults: Record<string, unknown> = {};
  for (const [option, value] of Object.entries(SERVER_DEFAULTS)) {
    if (typeof value !== "object" || Array.isArray(value)) {
      defaults[option] = value;
      continue;
    }
    for (const [key, inner] of Object.entries(value)) {
      defaults[`${option}.${key}`] = inner;
    }
  }
  for (const [option, value] of Object.entries(defaults)) {
    const row = byOption.get(option);
    assert.ok(row, `README has no row for ${option}`);
    assert.ok(
      shown(value).some((text) => row.default.startsWith(text)),
      `${option}: README says ${row.default}, the code ${value}`,
    );
  }
  for (
    const [variable, value] of [["PORT", LISTEN_DEFAULTS.port], [
      "HOSTNAME",
      LISTEN_DEFAULTS.hostname,
    ]] as const
  ) {
    const row = rows.find((row) => row.variable === variable);
    assert.equal(row?.default, `\`${value}\``, variable);
  }
});

Deno.test("README lists exactly the environment variables ./env reads", () => {
  // Quoted names ("REDIS_URL") and the keys of its variable table (MAX_TOPICS: …).
  const read = new Set(
    [
      ...envSource.matchAll(
        /"([A-Z][A-Z0-9_]{2,})"|^\s+([A-Z][A-Z0-9_]{2,}):/gm,
      ),
    ].map((m) => m[1] ?? m[2]),
  );
  const listed = new Set(
    configurationRows().map((row) => row.variable).filter(Boolean),
  );
  assert.deepEqual([...listed].sort(), [...read].sort());
});
