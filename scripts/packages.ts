/**
 * Checks every package of the workspace on its own, as CI does and as JSR
 * would: `deno doc --lint` on its entries (with the entries of the packages
 * it builds on, so a type it names from them counts as public),
 * `deno publish --dry-run` in its folder (which must ship its folder and
 * nothing else), and its size.
 *
 *   deno run -A scripts/packages.ts [--allow-dirty]
 */

import { packageSizes } from "./size.ts";

const ROOT = new URL("../", import.meta.url);
const deno = Deno.execPath();
const decoder = new TextDecoder();
// deno-lint-ignore no-control-regex
const plain = (text: string) => text.replace(/\x1b\[[0-9;]*m/g, "");

interface Member {
  name: string;
  dir: string;
  entries: string[];
  imports: Set<string>;
}

function members(): Member[] {
  const root = JSON.parse(Deno.readTextFileSync(new URL("deno.json", ROOT)));
  return (root.workspace as string[]).map((member) => {
    const dir = member.replace(/^\.\//, "");
    const config = JSON.parse(
      Deno.readTextFileSync(new URL(`${dir}/deno.json`, ROOT)),
    );
    const imports = new Set<string>();
    const walk = (folder: string) => {
      for (const entry of Deno.readDirSync(new URL(folder, ROOT))) {
        const path = `${folder}/${entry.name}`;
        if (entry.isDirectory) walk(path);
        else if (entry.name.endsWith(".ts")) {
          const text = Deno.readTextFileSync(new URL(path, ROOT));
          for (const [, name] of text.matchAll(/from "(@duplex-ws\/[a-z]+)/g)) {
            imports.add(name);
          }
        }
      }
    };
    walk(dir);
    imports.delete(config.name);
    const entries = Object.values<string>(config.exports).map((file) =>
      `${dir}/${file.replace(/^\.\//, "")}`
    );
    return { name: config.name, dir, entries, imports };
  });
}

function run(args: string[], cwd = ROOT.pathname) {
  const out = new Deno.Command(deno, {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  })
    .outputSync();
  return {
    ok: out.success,
    text: plain(decoder.decode(out.stdout) + decoder.decode(out.stderr)),
  };
}

const all = members();
const byName = new Map(all.map((m) => [m.name, m]));
const sizes = new Map(packageSizes().map((s) => [s.name, s]));
let failed = false;
for (const member of all) {
  // The packages it builds on, transitively.
  const deps = new Set<string>();
  const add = (name: string) => {
    for (const dep of byName.get(name)?.imports ?? []) {
      if (!deps.has(dep)) deps.add(dep) && add(dep);
    }
  };
  add(member.name);
  const scope = [...deps].flatMap((dep) => byName.get(dep)?.entries ?? []);
  const lint = run(["doc", "--lint", ...member.entries, ...scope]);
  const publishArgs = ["publish", "--dry-run"];
  if (Deno.args.includes("--allow-dirty")) publishArgs.push("--allow-dirty");
  const publish = run(publishArgs, new URL(member.dir + "/", ROOT).pathname);
  const files = [...publish.text.matchAll(/file:\/\/(\S+)/g)].map((m) => m[1]);
  const outside = files.filter((file) =>
    !file.startsWith(new URL(member.dir + "/", ROOT).pathname)
  );
  const size = sizes.get(member.name)!;
  const ok = lint.ok && publish.ok && files.length > 0 && outside.length === 0;
  console.log(
    `${ok ? "ok    " : "FAILED"} ${member.name.padEnd(22)} ${
      String(size.lines).padStart(6)
    } lines, ${String(files.length).padStart(3)} files published`,
  );
  if (!lint.ok) console.log(lint.text);
  if (!publish.ok) console.log(publish.text);
  if (outside.length) {
    console.log(`ships files outside ${member.dir}: ${outside.join(", ")}`);
  }
  failed ||= !ok;
}
if (failed) Deno.exit(1);
