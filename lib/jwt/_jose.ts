/**
 * The one place the JWT library is named and pinned: panva's `jose`
 * (Web Crypto, no dependencies, runs on Deno and Deno Deploy; an algorithm
 * allowlist, key-type checks, `alg: none` only through a separate API).
 * Loaded on first use, not at start: a server's first upgrade without a
 * token does not wait for it (about 9 ms).
 *
 * @module
 */

export type { JWK, JWTPayload, JWTVerifyGetKey } from "npm:jose@6.2.18";

type Jose = typeof import("npm:jose@6.2.18");
let loading: Promise<Jose> | undefined;

/** `jose`, loaded once. */
export function jose(): Promise<Jose> {
  return loading ??= import("npm:jose@6.2.18");
}
