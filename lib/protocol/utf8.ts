/**
 * UTF-8 sizes of strings without encoding them: what a message, a close
 * reason or a presence entry costs on the wire.
 *
 * @module
 */

/**
 * The UTF-8 length of a string, in bytes.
 *
 * @example
 * ```ts
 * import { utf8Length } from "./utf8.ts";
 * console.assert(utf8Length("a€") === 4);
 * ```
 */
export function utf8Length(text: string): number {
  // Fast path: ASCII-only strings are the common case.
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        i++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}
