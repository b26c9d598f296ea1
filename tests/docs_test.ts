/**
 * The README is for the app author and stays short; what it shows runs:
 * its quickstart is `examples/quickstart/` word for word (whose test runs in
 * the suite), every page it links exists, and the guide's import map names
 * every entry of every package at a path that exists.
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const read = (path: string) => Deno.readTextFileSync(new URL(path, ROOT));
const readme = read("README.md");

/** The README's length budget, in lines: read in one sitting. */
const README_LINES = 220;

Deno.test(`README.md is at most ${README_LINES} lines`, () => {
  const lines = readme.split("\n").length;
  assert.ok(lines <= README_LINES, `${lines} lines`);
});

Deno.test("the README's quickstart is examples/quickstart/, word for word", () => {
  const blocks = [...readme.matchAll(/```(?:ts ignore|html)\n([\s\S]*?)```/g)]
    .map((match) => match[1]);
  for (const file of ["server.ts", "index.html", "app_test.ts"]) {
    const text = read(`examples/quickstart/${file}`);
    assert.ok(blocks.includes(text), `README shows ${file} as it is`);
  }
});

Deno.test("every page the README links exists", () => {
  const links = [...readme.matchAll(/\]\(((?:docs\/)?[A-Z_]+\.md)\)/g)]
    .map((match) => match[1]);
  assert.ok(links.length >= 10);
  for (const link of links) {
    assert.ok(Deno.statSync(new URL(link, ROOT)).isFile, link);
  }
});

Deno.test("the guide's import map names every entry of every package, at paths that exist", () => {
  const guide = read("docs/GUIDE.md");
  const sample = /```json\n(\{\n {2}"imports"[\s\S]*?)```/.exec(guide);
  assert.ok(sample, "docs/GUIDE.md has an import map");
  const { imports } = JSON.parse(sample[1]) as {
    imports: Record<string, string>;
  };
  const workspace = JSON.parse(read("deno.json")).workspace as string[];
  for (const member of workspace) {
    const config = JSON.parse(read(`${member}/deno.json`));
    for (const [entry, file] of Object.entries<string>(config.exports)) {
      const name = config.name + (entry === "." ? "" : entry.slice(1));
      const path = imports[name];
      assert.ok(path, `${name} is in the map`);
      // The sample sits beside a checkout named duplex.
      assert.equal(
        path,
        `../duplex/${member.replace("./", "")}/${file.replace("./", "")}`,
      );
      assert.ok(Deno.statSync(new URL(path.replace("../duplex/", ""), ROOT)));
    }
  }
});

Deno.test("deno task doc documents every entry of every package", () => {
  const root = JSON.parse(read("deno.json"));
  const documented = new Set((root.tasks.doc as string).split(/\s+/));
  for (const member of root.workspace as string[]) {
    const config = JSON.parse(read(`${member}/deno.json`));
    for (const file of Object.values<string>(config.exports)) {
      const path = `${member.replace("./", "")}/${file.replace("./", "")}`;
      assert.ok(documented.has(path), `${path} is in the doc task`);
    }
  }
});
