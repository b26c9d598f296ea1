/**
 * `deno task hash-password NAME`: reads a password (typed without echo, or
 * piped on stdin) and prints `NAME:<hash>` for the example app's `USERS`.
 *
 * @module
 */

import { hashPassword } from "../routes/users.ts";
import { isUserName } from "../routes/auth.ts";

async function readPassword(): Promise<string> {
  if (!Deno.stdin.isTerminal()) {
    return (await new Response(Deno.stdin.readable).text()).replace(
      /\r?\n$/,
      "",
    );
  }
  await Deno.stderr.write(new TextEncoder().encode("Password: "));
  Deno.stdin.setRaw(true);
  const typed: number[] = [];
  const buffer = new Uint8Array(1);
  try {
    while (await Deno.stdin.read(buffer) === 1) {
      const [byte] = buffer;
      if (byte === 3) Deno.exit(130); // Ctrl-C
      if (byte === 13 || byte === 10) break;
      if (byte === 127) typed.pop();
      else typed.push(byte);
    }
  } finally {
    Deno.stdin.setRaw(false);
    await Deno.stderr.write(new TextEncoder().encode("\n"));
  }
  return new TextDecoder().decode(new Uint8Array(typed));
}

const [name] = Deno.args;
if (name === undefined || !isUserName(name)) {
  console.error(
    "usage: deno task hash-password NAME (1-32 letters, digits, _ or -)",
  );
  Deno.exit(2);
}
const password = await readPassword();
if (password.length < 8) {
  console.error("the password must be at least 8 characters");
  Deno.exit(2);
}
console.log(`${name}:${await hashPassword(password)}`);
