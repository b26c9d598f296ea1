/**
 * `deno task size`: every package's size, from its sources: files, lines,
 * and the lines that are code (not comments, not blank). The core's is the
 * number to keep small.
 *
 *   deno task size          a Markdown table
 *   deno task size --json   the same as JSON
 */

const ROOT = new URL("../", import.meta.url);

/** Lines of a source file, and those that are code. */
export function measure(text: string): { lines: number; code: number } {
  let code = 0;
  let inComment = false;
  const lines = text.split("\n");
  for (const raw of lines) {
    const line = raw.trim();
    if (inComment) {
      if (line.includes("*/")) inComment = false;
      continue;
    }
    if (line === "" || line.startsWith("//")) continue;
    if (line.startsWith("/*")) {
      inComment = !line.includes("*/");
      continue;
    }
    code++;
  }
  return { lines: lines.at(-1) === "" ? lines.length - 1 : lines.length, code };
}

function sources(dir: URL): URL[] {
  const found: URL[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const url = new URL(entry.name + (entry.isDirectory ? "/" : ""), dir);
    if (entry.isDirectory) found.push(...sources(url));
    else if (entry.name.endsWith(".ts")) found.push(url);
  }
  return found;
}

/** Every package of the workspace with its size. */
export function packageSizes(): {
  name: string;
  folder: string;
  files: number;
  lines: number;
  code: number;
}[] {
  const root = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT)));
  return (root.workspace as string[]).map((member) => {
    const dir = new URL(`${member.replace(/^\.\//, "")}/`, ROOT);
    const { name } = JSON.parse(
      Deno.readTextFileSync(new URL("deno.json", dir)),
    );
    let lines = 0;
    let code = 0;
    const files = sources(dir);
    for (const file of files) {
      const size = measure(Deno.readTextFileSync(file));
      lines += size.lines;
      code += size.code;
    }
    return { name, folder: member.slice(2), files: files.length, lines, code };
  });
}

if (import.meta.main) {
  const sizes = packageSizes();
  if (Deno.args.includes("--json")) {
    console.log(JSON.stringify(sizes, null, 2));
  } else {
    console.log("| Package | Folder | Files | Lines | Code lines |");
    console.log("| --- | --- | ---: | ---: | ---: |");
    for (const p of sizes) {
      console.log(
        `| \`${p.name}\` | \`${p.folder}\` | ${p.files} | ${p.lines} | ${p.code} |`,
      );
    }
    const total = sizes.reduce((sum, p) => sum + p.lines, 0);
    const code = sizes.reduce((sum, p) => sum + p.code, 0);
    console.log(
      `| all | \`lib/\` | ${
        sizes.reduce((s, p) => s + p.files, 0)
      } | ${total} | ${code} |`,
    );
  }
}
