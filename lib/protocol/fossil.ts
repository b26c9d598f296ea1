/**
 * Fossil's delta format (https://fossil-scm.org/home/doc/tip/www/delta_format.wiki),
 * written here for ASCII strings (the form deltas are made over, see
 * `delta.ts`), so that the wire and the client need no package: a header
 * with the target's length, then commands that copy a run of the base or
 * insert literal text, then a checksum of the target.
 *
 * ```text
 * 2r\n        the target is 2r (171) characters
 * 1E@0,       copy 1E (78) characters of the base from offset 0
 * 5:hello     insert 5 characters: "hello"
 * 1S@1N,      copy 1S (92) from offset 1N (119)
 * 3Tg2ZR;     the checksum, and the end
 * ```
 *
 * Interoperates with Fossil's own encoder and decoder (the tests check it
 * against the `fossil-delta` package, both ways).
 *
 * @module
 */

const DIGITS =
  "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz~";
const VALUE = new Map([...DIGITS].map((c, i) => [c, i]));

/** Characters a match must share before it is copied rather than inserted. */
const BLOCK = 16;
/** 31^15 (mod 2^32): what the character leaving the rolling hash weighed. */
const OUT_WEIGHT = Array.from({ length: BLOCK - 1 }).reduce<number>(
  (w) => Math.imul(w, 31),
  1,
);

/** A number in Fossil's base 64, most significant digit first. */
function int(n: number): string {
  let out = "";
  do {
    out = DIGITS[n & 63] + out;
    n = Math.floor(n / 64);
  } while (n > 0);
  return out;
}

/** The 32-bit sum of the text as big-endian words, the last zero-padded. */
export function fossilChecksum(text: string): number {
  let sum = 0;
  const whole = text.length - (text.length % 4);
  for (let i = 0; i < whole; i += 4) {
    sum = (sum + ((text.charCodeAt(i) << 24) | (text.charCodeAt(i + 1) << 16) |
      (text.charCodeAt(i + 2) << 8) | text.charCodeAt(i + 3))) >>> 0;
  }
  for (let i = whole, shift = 24; i < text.length; i++, shift -= 8) {
    sum = (sum + (text.charCodeAt(i) << shift >>> 0)) >>> 0;
  }
  return sum;
}

/** The hash of the 16 characters from `at`. */
function hashAt(text: string, at: number): number {
  let h = 0;
  for (let k = 0; k < BLOCK; k++) {
    h = (Math.imul(h, 31) + text.charCodeAt(at + k)) | 0;
  }
  return h;
}

/** The base's 16-character blocks, by hash: a table of chains. */
function blocksOf(base: string) {
  const count = Math.floor(base.length / BLOCK);
  let size = 16;
  while (size < count * 2) size *= 2;
  const heads = new Int32Array(size).fill(-1);
  const chain = new Int32Array(count);
  for (let b = 0; b < count; b++) {
    const slot = hashAt(base, b * BLOCK) & (size - 1);
    chain[b] = heads[slot];
    heads[slot] = b;
  }
  return { heads, chain, mask: size - 1 };
}

/** Where in the base the 16 characters of `target` from `i` are, or -1. */
function find(
  base: string,
  target: string,
  i: number,
  hash: number,
  { heads, chain, mask }: ReturnType<typeof blocksOf>,
): number {
  for (let b = heads[hash & mask], tries = 0; b >= 0 && tries < 8; tries++) {
    const from = b * BLOCK;
    let k = 0;
    while (
      k < BLOCK && base.charCodeAt(from + k) === target.charCodeAt(i + k)
    ) k++;
    if (k === BLOCK) return from;
    b = chain[b];
  }
  return -1;
}

/**
 * A delta that turns `base` into `target` (ASCII strings): the target's
 * runs of at least 16 characters found in the base (by a rolling hash over
 * the base's aligned 16-character blocks) are copied, the rest inserted.
 */
export function createFossilDelta(base: string, target: string): string {
  const blocks = blocksOf(base);
  let out = `${int(target.length)}\n`;
  let literal = 0; // where the text not yet copied starts
  let i = 0;
  let hash = target.length >= BLOCK ? hashAt(target, 0) : 0;
  while (i + BLOCK <= target.length) {
    let from = find(base, target, i, hash, blocks);
    if (from < 0) {
      if (i + BLOCK < target.length) {
        const gone = Math.imul(target.charCodeAt(i), OUT_WEIGHT);
        hash = (Math.imul(hash - gone, 31) + target.charCodeAt(i + BLOCK)) | 0;
      }
      i++;
      continue;
    }
    let start = i;
    while (
      start > literal && from > 0 &&
      target.charCodeAt(start - 1) === base.charCodeAt(from - 1)
    ) {
      start--;
      from--;
    }
    let end = i + BLOCK;
    let upTo = from + (end - start);
    while (
      end < target.length && target.charCodeAt(end) === base.charCodeAt(upTo)
    ) {
      end++;
      upTo++;
    }
    if (start > literal) {
      out += `${int(start - literal)}:${target.slice(literal, start)}`;
    }
    out += `${int(end - start)}@${int(from)},`;
    literal = i = end;
    if (i + BLOCK <= target.length) hash = hashAt(target, i);
  }
  if (literal < target.length) {
    out += `${int(target.length - literal)}:${target.slice(literal)}`;
  }
  return `${out}${int(fossilChecksum(target))};`;
}

/**
 * The target a delta makes of `base`.
 * @throws {SyntaxError} for a malformed delta, one that reaches past the
 * base, or a target whose length or checksum is not the one announced.
 */
export function applyFossilDelta(base: string, delta: string): string {
  let at = 0;
  const number = () => {
    let n = 0;
    const start = at;
    for (
      let v = VALUE.get(delta[at]);
      v !== undefined;
      v = VALUE.get(delta[at])
    ) {
      n = n * 64 + v;
      at++;
    }
    if (at === start) throw new SyntaxError("delta: a number was expected");
    return n;
  };
  const size = number();
  if (delta[at++] !== "\n") throw new SyntaxError("delta: bad header");
  let out = "";
  while (at < delta.length) {
    const n = number();
    const command = delta[at++];
    if (command === "@") {
      const from = number();
      if (delta[at++] !== ",") throw new SyntaxError("delta: bad copy");
      if (from + n > base.length) {
        throw new SyntaxError("delta: copy past base");
      }
      out += base.slice(from, from + n);
    } else if (command === ":") {
      if (at + n > delta.length) {
        throw new SyntaxError("delta: insert past end");
      }
      out += delta.slice(at, at + n);
      at += n;
    } else if (command === ";") {
      if (
        at !== delta.length || out.length !== size || fossilChecksum(out) !== n
      ) {
        throw new SyntaxError("delta: the result is not the target");
      }
      return out;
    } else {
      throw new SyntaxError("delta: unknown command");
    }
    if (out.length > size) throw new SyntaxError("delta: target too long");
  }
  throw new SyntaxError("delta: no checksum");
}
