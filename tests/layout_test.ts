/**
 * The shape of lib/, read from the sources themselves: the packages of the
 * workspace and which may import which, the import rules inside them, no
 * import loop (type-only imports included), the size budgets (files,
 * functions, classes, measured on the TypeScript syntax tree), the size of
 * the root entry, and the map in docs/ARCHITECTURE.md. A failure says what
 * to split or move.
 */

import assert from "node:assert/strict";
import ts from "npm:typescript@5.9.3";
import { packageSizes } from "../scripts/size.ts";

const ROOT = new URL("../", import.meta.url);
const LIB = new URL("lib/", ROOT);

/** The budgets: a file, a function (or method), a class, the root entry. */
const BUDGET = { fileLines: 350, functionLines: 80, classLines: 300 };
const ROOT_ENTRY_NAMES = 60;
/**
 * Lines of code (not comments, not blank: `deno task size`) each package may
 * hold: what it holds now, with about 1 % to spare. A capability that does
 * not fit deletes or moves code first, or lands as a package of its own; the
 * core's figure is the one the README states.
 */
const PACKAGE_CODE_LINES: Record<string, number> = {
  "@duplex-ws/protocol": 1_040,
  "@duplex-ws/duplex": 8_000,
  "@duplex-ws/client": 2_170,
  "@duplex-ws/redis": 1_220,
  "@duplex-ws/postgres": 885,
  "@duplex-ws/jwt": 295,
  "@duplex-ws/node": 475,
  "@duplex-ws/http-transport": 300,
  "@duplex-ws/api": 200,
  "@duplex-ws/testing": 480,
  "@duplex-ws/env": 385,
  "@duplex-ws/asyncapi": 520,
};

/**
 * Which package may import which (by name): anything else is a layering
 * error. The core reaches only the wire; engines, transports and the kit
 * build on the core; nothing builds on the example app.
 */
const MAY_IMPORT: Record<string, string[]> = {
  "@duplex-ws/protocol": [],
  "@duplex-ws/duplex": ["@duplex-ws/protocol"],
  "@duplex-ws/client": ["@duplex-ws/protocol"],
  "@duplex-ws/redis": ["@duplex-ws/duplex", "@duplex-ws/protocol"],
  "@duplex-ws/postgres": ["@duplex-ws/duplex", "@duplex-ws/protocol"],
  "@duplex-ws/jwt": ["@duplex-ws/duplex", "@duplex-ws/protocol"],
  "@duplex-ws/node": ["@duplex-ws/duplex", "@duplex-ws/protocol"],
  "@duplex-ws/http-transport": ["@duplex-ws/duplex", "@duplex-ws/protocol"],
  "@duplex-ws/api": ["@duplex-ws/duplex"],
  "@duplex-ws/asyncapi": ["@duplex-ws/duplex", "@duplex-ws/protocol"],
  "@duplex-ws/admin": [
    "@duplex-ws/duplex",
    "@duplex-ws/protocol",
    "@duplex-ws/client",
  ],
  "@duplex-ws/env": [
    "@duplex-ws/duplex",
    "@duplex-ws/redis",
    "@duplex-ws/postgres",
  ],
  "@duplex-ws/testing": [
    "@duplex-ws/duplex",
    "@duplex-ws/client",
    "@duplex-ws/protocol",
  ],
};

/** The one file allowed to name each npm package (pinned there). */
const NPM_PINS: Record<string, string> = {
  "npm:ioredis@": "redis/_ioredis.ts",
  "npm:ws@": "node/_ws.ts",
  "npm:jose@": "jwt/_jose.ts",
  "npm:postgres@": "postgres/_postgres.ts",
};

interface Package {
  name: string;
  /** Its folder under lib/, with a slash ("core/"). */
  dir: string;
  /** Entry ("." or "./engine") → file under lib/ ("core/engine.ts"). */
  exports: Record<string, string>;
}

function packages(): Package[] {
  const root = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT)));
  return (root.workspace as string[]).map((member) => {
    const dir = member.replace(/^\.\/lib\//, "").replace(/\/?$/, "/");
    const config = JSON.parse(
      Deno.readTextFileSync(new URL(`${dir}deno.json`, LIB)),
    );
    const exports = typeof config.exports === "string"
      ? { ".": config.exports }
      : config.exports;
    return {
      name: config.name,
      dir,
      exports: Object.fromEntries(
        Object.entries<string>(exports).map(([entry, file]) => [
          entry,
          dir + file.replace(/^\.\//, ""),
        ]),
      ),
    };
  });
}

/** Every .ts file under lib/, relative to lib/ ("core/session.ts"). */
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

function parse(file: string): ts.SourceFile {
  return ts.createSourceFile(
    file,
    Deno.readTextFileSync(new URL(file, LIB)),
    ts.ScriptTarget.Latest,
    true,
  );
}

/** The specifiers a file imports: static, type-only, re-exports, literal dynamic imports. */
function importsOf(source: ts.SourceFile): string[] {
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if (
      (ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) &&
      node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)
    ) {
      found.push(node.moduleSpecifier.text);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments[0] && ts.isStringLiteral(node.arguments[0])
    ) {
      found.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/**
 * A specifier resolved to a lib/-relative file: relative paths as they
 * are, package names through the workspace's exports; others (npm:, node:)
 * unchanged, and relative paths out of lib/ as `../…`.
 */
function resolver(pkgs: Package[]): (from: string, spec: string) => string {
  const byEntry = new Map<string, string>();
  for (const pkg of pkgs) {
    for (const [entry, file] of Object.entries(pkg.exports)) {
      byEntry.set(entry === "." ? pkg.name : pkg.name + entry.slice(1), file);
    }
  }
  return (from, spec) => {
    if (spec.startsWith(".")) {
      const url = new URL(spec, new URL(from, LIB));
      return url.href.startsWith(LIB.href)
        ? url.href.slice(LIB.href.length)
        : `../${url.href.slice(ROOT.href.length)}`;
    }
    return byEntry.get(spec) ?? spec;
  };
}

const PKGS = packages();
const SOURCES = new Map(libFiles().map((file) => [file, parse(file)]));
const resolve = resolver(PKGS);
const EDGES = new Map(
  [...SOURCES].map(([file, source]) => [file, importsOf(source)]),
);

function packageOf(file: string): Package | undefined {
  return PKGS.find((pkg) => file.startsWith(pkg.dir));
}

/** Every file `entry` reaches through imports (itself included). */
function reach(entry: string): Set<string> {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const spec of EDGES.get(file) ?? []) visit(resolve(file, spec));
  };
  visit(entry);
  return seen;
}

Deno.test("lib/ is a workspace of packages that import each other only as allowed", async (t) => {
  await t.step("every lib/ file belongs to a package", () => {
    for (const file of SOURCES.keys()) {
      assert.ok(packageOf(file), `${file} is in no workspace package`);
    }
  });
  await t.step("every package entry exists and has a README", () => {
    for (const pkg of PKGS) {
      for (const file of Object.values(pkg.exports)) {
        assert.ok(SOURCES.has(file), `${pkg.name}: ${file} is missing`);
      }
      const readme = new URL(`${pkg.dir}README.md`, LIB);
      assert.ok(Deno.statSync(readme).isFile, `${pkg.name} has no README`);
    }
  });
  await t.step(
    "packages import each other by name, as the table allows",
    () => {
      for (const [file, specs] of EDGES) {
        const pkg = packageOf(file)!;
        for (const spec of specs) {
          if (spec.startsWith(".")) {
            const target = resolve(file, spec);
            assert.ok(
              !target.startsWith("../"),
              `${file} imports ${target}: lib/ never imports routes/, tests/ or main.ts`,
            );
            assert.ok(
              target.startsWith(pkg.dir),
              `${file} imports ${target} by path: import another package by its name`,
            );
            continue;
          }
          const name = spec.match(/^@duplex-ws\/[a-z]+/)?.[0];
          if (!name || name === pkg.name) continue;
          assert.ok(
            MAY_IMPORT[pkg.name]?.includes(name),
            `${file} (${pkg.name}) imports ${spec}: ${pkg.name} may import only ${
              MAY_IMPORT[pkg.name]?.join(", ") || "nothing"
            }`,
          );
        }
      }
    },
  );
  await t.step("each npm package is named in one pinning file", () => {
    for (const [file, specs] of EDGES) {
      for (const spec of specs.filter((s) => s.startsWith("npm:"))) {
        const pin = Object.entries(NPM_PINS).find(([prefix]) =>
          spec.startsWith(prefix)
        );
        assert.equal(file, pin?.[1], `${file} imports ${spec}`);
      }
    }
  });
  await t.step("the wire and the client use web APIs only", () => {
    for (const pkg of ["@duplex-ws/protocol", "@duplex-ws/client"]) {
      const { exports } = PKGS.find((p) => p.name === pkg)!;
      for (const entry of Object.values(exports)) {
        for (const file of reach(entry)) {
          assert.ok(
            file.startsWith("protocol/") || file.startsWith("client/"),
            `${pkg} reaches ${file}`,
          );
        }
      }
    }
  });
  await t.step(
    "the core's root entry loads no npm package and no other package but the wire",
    () => {
      for (const file of reach("core/mod.ts")) {
        assert.ok(
          file.startsWith("core/") || file.startsWith("protocol/") ||
            file.startsWith("node:"),
          `@duplex-ws/duplex reaches ${file}`,
        );
      }
    },
  );
});

Deno.test("lib/ has no import loop, type-only imports included", () => {
  // Tarjan's strongly connected components over the file graph.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const loops: string[][] = [];
  let next = 0;
  const connect = (file: string) => {
    index.set(file, next);
    low.set(file, next++);
    stack.push(file);
    onStack.add(file);
    for (const spec of EDGES.get(file) ?? []) {
      const target = resolve(file, spec);
      if (!SOURCES.has(target)) continue;
      if (!index.has(target)) {
        connect(target);
        low.set(file, Math.min(low.get(file)!, low.get(target)!));
      } else if (onStack.has(target)) {
        low.set(file, Math.min(low.get(file)!, index.get(target)!));
      }
    }
    if (low.get(file) !== index.get(file)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== file);
    if (component.length > 1) loops.push(component);
  };
  for (const file of SOURCES.keys()) if (!index.has(file)) connect(file);
  assert.deepEqual(
    loops,
    [],
    `import loops (move the shared types down into a module both can import): ${
      loops.map((loop) => loop.join(" → ")).join("; ")
    }`,
  );
});

/** A function's or class's name as a person would look for it. */
function nameOf(node: ts.Node, source: ts.SourceFile): string {
  const named = node as { name?: ts.Node };
  if (named.name) return named.name.getText(source);
  if (ts.isConstructorDeclaration(node)) return "constructor";
  const parent = node.parent;
  if (ts.isVariableDeclaration(parent) || ts.isPropertyAssignment(parent)) {
    return parent.name.getText(source);
  }
  return "(anonymous)";
}

function lines(node: ts.Node, source: ts.SourceFile): number {
  const start = source.getLineAndCharacterOfPosition(node.getStart(source));
  const end = source.getLineAndCharacterOfPosition(node.getEnd());
  return end.line - start.line + 1;
}

/** Every budget a file breaks, as sentences that say what to split. */
function overBudget(file: string, source: ts.SourceFile): string[] {
  const found: string[] = [];
  const total = source.getLineAndCharacterOfPosition(source.getEnd()).line;
  if (total > BUDGET.fileLines) {
    found.push(
      `${file} is ${total} lines (budget ${BUDGET.fileLines}): split it along a concept into files of their own`,
    );
  }
  const visit = (node: ts.Node) => {
    const isClass = ts.isClassDeclaration(node) || ts.isClassExpression(node);
    const isFunction = ts.isFunctionDeclaration(node) ||
      ts.isMethodDeclaration(node) || ts.isArrowFunction(node) ||
      ts.isFunctionExpression(node) || ts.isConstructorDeclaration(node) ||
      ts.isGetAccessorDeclaration(node) || ts.isSetAccessorDeclaration(node);
    if (isClass || isFunction) {
      const size = lines(node, source);
      const budget = isClass ? BUDGET.classLines : BUDGET.functionLines;
      if (size > budget) {
        const line = source.getLineAndCharacterOfPosition(node.getStart()).line;
        found.push(
          `${file}:${line + 1} ${isClass ? "class" : "function"} ${
            nameOf(node, source)
          } is ${size} lines (budget ${budget}): ${
            isClass
              ? "move a concern into a class or module of its own"
              : "split it into named steps"
          }`,
        );
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

Deno.test("lib/ keeps its size budgets: files, functions, classes", () => {
  const broken = [...SOURCES].flatMap(([file, source]) =>
    overBudget(file, source)
  );
  assert.deepEqual(broken, [], broken.join("\n"));
});

Deno.test("each package stays within its lines of code", () => {
  const sizes = packageSizes();
  assert.deepEqual(
    sizes.map(({ name }) => name).sort(),
    Object.keys(PACKAGE_CODE_LINES).sort(),
    "every package has a budget in PACKAGE_CODE_LINES",
  );
  const over = sizes.filter(({ name, code }) => code > PACKAGE_CODE_LINES[name])
    .map(({ name, code }) =>
      `${name} is ${code} lines of code (budget ${
        PACKAGE_CODE_LINES[name]
      }): delete what is not needed, or move a capability to a package of its own`
    );
  assert.deepEqual(over, [], over.join("\n"));
  const core = PACKAGE_CODE_LINES["@duplex-ws/duplex"].toLocaleString("en");
  assert.match(
    Deno.readTextFileSync(new URL("README.md", ROOT)).replaceAll("\n", " "),
    new RegExp(`core package under ${core} lines of code`),
    "README.md states the core's budget",
  );
});

/** The names an entry exports (it must export them by name, never `*`). */
function entryNames(file: string): string[] {
  const names: string[] = [];
  for (const statement of SOURCES.get(file)!.statements) {
    if (ts.isExportDeclaration(statement)) {
      const clause = statement.exportClause;
      assert.ok(
        clause && ts.isNamedExports(clause),
        `${file} uses export *: export each name on purpose`,
      );
      for (const element of clause.elements) names.push(element.name.text);
    } else if (
      ts.canHaveModifiers(statement) &&
      ts.getModifiers(statement)?.some((m) =>
        m.kind === ts.SyntaxKind.ExportKeyword
      )
    ) {
      const named = statement as { name?: ts.Identifier };
      if (named.name) names.push(named.name.text);
    }
  }
  return names;
}

Deno.test("the core's root entry names at most 60 things, each once", () => {
  const names = entryNames("core/mod.ts");
  assert.equal(new Set(names).size, names.length, "a name is exported twice");
  assert.ok(
    names.length <= ROOT_ENTRY_NAMES,
    `@duplex-ws/duplex exports ${names.length} names (budget ${ROOT_ENTRY_NAMES}): move what only engine, transport or configuration authors need to their entries`,
  );
  for (const pkg of PKGS) {
    for (const file of Object.values(pkg.exports)) entryNames(file);
  }
});

Deno.test("docs/ARCHITECTURE.md maps every lib/ file", () => {
  const map = Deno.readTextFileSync(new URL("docs/ARCHITECTURE.md", ROOT));
  const listed = new Set(
    [...map.matchAll(/^\| `([^`]+\.(?:ts|json))` +\|/gm)].map((m) => m[1]),
  );
  for (const file of SOURCES.keys()) {
    assert.ok(listed.has(file), `${file} is not in the map`);
  }
  for (const file of listed) {
    assert.ok(
      SOURCES.has(file) || file.endsWith("deno.json"),
      `the map lists ${file}, which does not exist`,
    );
  }
});
