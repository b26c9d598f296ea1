/**
 * The key a `jwtAuth` verifies with, made once from its options: an HMAC
 * secret (at least 32 bytes), a public key (a `CryptoKey` or a JWK) or a
 * JWKS URL (fetched with a timeout and a cooldown); a key that does not fit
 * the algorithms is refused at start.
 *
 * @module
 */

import { jose, type JWK, type JWTVerifyGetKey } from "./_jose.ts";
import type { JwtAlgorithm, JwtAuthOptions } from "./jwt_options.ts";

/** The fewest bytes an HMAC secret may have. */
export const MIN_SECRET_BYTES = 32;

/** A secret as bytes, refused when shorter than 32 bytes. */
export function secretBytes(key: string | Uint8Array): Uint8Array {
  const bytes = typeof key === "string" ? new TextEncoder().encode(key) : key;
  if (bytes.length < MIN_SECRET_BYTES) {
    throw new TypeError(
      `An HMAC secret must have at least ${MIN_SECRET_BYTES} bytes (got ${bytes.length}): use 32 random bytes, such as the output of "openssl rand -base64 32"`,
    );
  }
  return bytes;
}

function isHmac(algorithms: readonly JwtAlgorithm[]): boolean {
  return algorithms.every((alg) => alg.startsWith("HS"));
}

/** The key (or key set) to verify with, made once. */
export function verificationKey(
  options: JwtAuthOptions<unknown>,
): () => Promise<Uint8Array | CryptoKey | JWTVerifyGetKey> {
  const { key, jwksUrl, algorithms } = options;
  if ((key === undefined) === (jwksUrl === undefined)) {
    throw new TypeError("jwtAuth needs exactly one of key and jwksUrl");
  }
  if (algorithms.length === 0) {
    throw new TypeError("jwtAuth needs at least one algorithm");
  }
  if (jwksUrl !== undefined) {
    const url = new URL(jwksUrl);
    let set: Promise<JWTVerifyGetKey> | undefined;
    return () =>
      set ??= jose().then(({ createRemoteJWKSet }) =>
        createRemoteJWKSet(url, {
          timeoutDuration: 5_000,
          cooldownDuration: 30_000,
        })
      );
  }
  if (typeof key === "string" || key instanceof Uint8Array) {
    if (!isHmac(algorithms)) {
      throw new TypeError(
        "A secret is a key for HS256/384/512 only: give a public key for other algorithms",
      );
    }
    const bytes = secretBytes(key);
    return () => Promise.resolve(bytes);
  }
  if (isHmac(algorithms)) {
    throw new TypeError("HS256/384/512 need a secret, not a public key");
  }
  if (typeof CryptoKey !== "undefined" && key instanceof CryptoKey) {
    return () => Promise.resolve(key);
  }
  const jwk = key as JWK;
  let imported: Promise<CryptoKey | Uint8Array> | undefined;
  // jose types its keys with node's Web Crypto types: the same objects.
  return () =>
    imported ??= jose().then(({ importJWK }) =>
      importJWK(jwk, jwk.alg ?? algorithms[0]) as Promise<
        CryptoKey | Uint8Array
      >
    );
}
