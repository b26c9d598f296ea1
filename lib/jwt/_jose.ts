/**
 * The one place the JWT library is named and pinned: panva's `jose`
 * (Web Crypto, no dependencies, runs on Deno and Deno Deploy; an algorithm
 * allowlist, key-type checks, `alg: none` only through a separate API).
 *
 * @module
 */

export {
  createRemoteJWKSet,
  importJWK,
  jwtVerify,
  SignJWT,
} from "npm:jose@6.2.18";
export type { JWK, JWTPayload, JWTVerifyGetKey } from "npm:jose@6.2.18";
