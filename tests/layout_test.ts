/**
 * The import rules of lib/, read from the import statements themselves, and
 * the map in docs/ARCHITECTURE.md kept honest: every lib/ file is in it.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const LIB = new URL("lib/", ROOT);

/** Every .ts file under lib/, as a path relative to lib/ ("protocol/envelope.ts"). */
function libFiles(dir = LIB, prefix = ""): string[] {
  const files: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    if (entry.isDirectory) {
      files.push(
        ...libFiles(new URL(`${entry.name}/`, dir), `${prefix}${entry.name}/`),
      );
    } else if (entry.name.endsWith(".ts")) files.push(prefix + entry.name);
  }
  return files.sort();
}

const IMPORT =
  /(?:^|\n)\s*(?:import|export)\b[^;"']*?from\s*["']([^"']+)["']|(?:^|\n)\s*import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/g;

/** The specifiers a file imports (static, re-exports, literal dynamic), JSDoc examples left out. */
function importsOf(file: string): string[] {
  const source = Deno.readTextFileSync(new URL(file, LIB))
    .replace(/\/\*\*[\s\S]*?\*\//g, "");
  return [...source.matchAll(IMPORT)].map((m) => m[1] ?? m[2] ?? m[3]);
}

/** A relative specifier resolved to a lib/-relative path; other specifiers as they are. */
function resolve(from: string, specifier: string): string {
  if (!specifier.startsWith(".")) return specifier;
  const url = new URL(specifier, new URL(from, LIB));
  return url.href.startsWith(LIB.href)
    ? url.href.slice(LIB.href.length)
    : `../${url.href.slice(ROOT.href.length)}`;
}

function graph(): Map<string, string[]> {
  return new Map(
    libFiles().map((file) => [
      file,
      importsOf(file).map((specifier) => resolve(file, specifier)),
    ]),
  );
}

/** Every file `entry` reaches through imports (itself included). */
function reach(edges: Map<string, string[]>, entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const next of edges.get(file) ?? []) visit(next);
  };
  visit(entry);
  return seen;
}

Deno.test("lib/ import rules hold", async (t) => {
  const edges = graph();
  await t.step("nothing in lib/ imports routes/, tests/ or main.ts", () => {
    for (const [file, imports] of edges) {
      for (const target of imports) {
        assert.ok(!target.startsWith("../"), `${file} imports ${target}`);
      }
    }
  });
  await t.step("protocol/ imports nothing outside protocol/", () => {
    for (const [file, imports] of edges) {
      if (!file.startsWith("protocol/")) continue;
      for (const target of imports) {
        assert.ok(target.startsWith("protocol/"), `${file} imports ${target}`);
      }
    }
  });
  await t.step("the client imports only protocol/ (web APIs only)", () => {
    for (const target of reach(edges, "client.ts")) {
      assert.ok(
        target === "client.ts" || target.startsWith("protocol/"),
        `client.ts reaches ${target}`,
      );
    }
  });
  await t.step("each npm package is named in one pinning file", () => {
    for (const [file, imports] of edges) {
      for (const target of imports.filter((t) => t.startsWith("npm:"))) {
        const pin = target.startsWith("npm:ioredis@")
          ? "pubsub/_ioredis.ts"
          : target.startsWith("npm:ws@")
          ? "_ws.ts"
          : target.startsWith("npm:jose@")
          ? "auth/_jose.ts"
          : undefined;
        assert.equal(file, pin, `${file} imports ${target}`);
      }
    }
  });
  await t.step(
    "the root entry reaches no Redis engine, JWT library, node transport, env reader, client or kit",
    () => {
      const reached = reach(edges, "mod.ts");
      for (
        const file of [
          "pubsub/_ioredis.ts",
          "pubsub/redis_backplane.ts",
          "auth/_jose.ts",
          "auth/jwt.ts",
          "_ws.ts",
          "node.ts",
          "env.ts",
          "client.ts",
          "testing.ts",
        ]
      ) {
        assert.ok(!reached.has(file), `mod.ts reaches ${file}`);
      }
    },
  );
  await t.step("every package entry exists", () => {
    const config = JSON.parse(
      Deno.readTextFileSync(new URL("deno.json", LIB)),
    );
    for (const target of Object.values<string>(config.exports)) {
      assert.ok(edges.has(target.replace("./", "")), `${target} is missing`);
    }
  });
});

Deno.test("docs/ARCHITECTURE.md maps every lib/ file", () => {
  const map = Deno.readTextFileSync(new URL("docs/ARCHITECTURE.md", ROOT));
  const listed = new Set(
    [...map.matchAll(/^\| `([^`]+\.(?:ts|json))` +\|/gm)].map((m) => m[1]),
  );
  for (const file of [...libFiles(), "deno.json"]) {
    assert.ok(listed.has(file), `${file} is not in the map`);
  }
  for (const file of listed) {
    assert.ok(
      file === "deno.json" || libFiles().includes(file),
      `the map lists ${file}, which does not exist`,
    );
  }
});
