/**
 * The example app's accounts: `USERS="alice:<hash>,bob:<hash>"`, each hash
 * made by `deno task hash-password` (PBKDF2-SHA-256, 600,000 iterations, a
 * random 16-byte salt: `pbkdf2-sha256$600000$<salt>$<key>` in base64).
 * Checking a password costs the same whether the user exists or not, and
 * compares in constant time.
 *
 * @module
 */

/** The iterations `hashPassword` uses (OWASP's figure for PBKDF2-SHA-256). */
export const PBKDF2_ITERATIONS = 600_000;

const SCHEME = "pbkdf2-sha256";
const encoder = new TextEncoder();

const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
const unbase64 = (text: string) =>
  Uint8Array.from(atob(text), (c) => c.charCodeAt(0));

async function derive(
  password: string,
  salt: Uint8Array<ArrayBuffer>,
  iterations: number,
): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(password),
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt, iterations },
    key,
    256,
  );
  return new Uint8Array(bits);
}

/** A stored hash of `password`, as `USERS` takes it. */
export async function hashPassword(
  password: string,
  iterations = PBKDF2_ITERATIONS,
): Promise<string> {
  const salt = crypto.getRandomValues(new Uint8Array(16));
  const key = await derive(password, salt, iterations);
  return `${SCHEME}$${iterations}$${base64(salt)}$${base64(key)}`;
}

/** A parsed stored hash. */
interface StoredHash {
  readonly iterations: number;
  readonly salt: Uint8Array<ArrayBuffer>;
  readonly key: Uint8Array;
}

/** Parses a stored hash; `undefined` when it is not one. */
export function parseHash(text: string): StoredHash | undefined {
  const [scheme, rounds, salt, key] = text.split("$");
  const iterations = Number(rounds);
  if (scheme !== SCHEME || !Number.isInteger(iterations) || iterations < 1) {
    return undefined;
  }
  try {
    return { iterations, salt: unbase64(salt), key: unbase64(key) };
  } catch {
    return undefined;
  }
}

function equalTime(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ (b[i] ?? 0);
  return diff === 0;
}

/** Accounts by name, with their stored hashes. */
export class Users {
  readonly #hashes: ReadonlyMap<string, StoredHash>;
  /** Checked for unknown names, so they cost what a known one does. */
  readonly #decoy: StoredHash;

  /** Takes `USERS`' parsed entries. */
  constructor(hashes: ReadonlyMap<string, StoredHash>) {
    this.#hashes = hashes;
    const iterations = Math.max(
      PBKDF2_ITERATIONS,
      ...[...hashes.values()].map((hash) => hash.iterations),
    );
    const salt = new Uint8Array(16);
    this.#decoy = { iterations, salt, key: new Uint8Array(32) };
  }

  /** How many accounts there are. */
  get size(): number {
    return this.#hashes.size;
  }

  /** Whether `password` is `name`'s. */
  async verify(name: string, password: string): Promise<boolean> {
    const known = this.#hashes.get(name);
    const stored = known ?? this.#decoy;
    const key = await derive(password, stored.salt, stored.iterations);
    return equalTime(key, stored.key) && known !== undefined;
  }
}
