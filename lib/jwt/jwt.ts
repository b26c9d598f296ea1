/**
 * Signed tokens for `createServer({ auth })`: `jwtAuth` verifies JWTs at the
 * handshake and on `auth.refresh` with an algorithm allowlist fixed by
 * configuration (never read from the token), checks `exp`, `nbf`, `iss` and
 * `aud` with a small clock skew, and maps every refusal to a reason.
 * `issueToken` signs one (a login route's job).
 *
 * @module
 */

import { jose, type JWK } from "./_jose.ts";
import { AuthFailure, type AuthOptions } from "@duplex-ws/duplex";
import { readToken } from "@duplex-ws/duplex/auth";
import { secretBytes, verificationKey } from "./keys.ts";
import { verify } from "./verify.ts";
import type {
  IssueTokenOptions,
  JwtAuthOptions,
  JwtPayload,
} from "./jwt_options.ts";

export type {
  IssueTokenOptions,
  JwtAlgorithm,
  JwtAuthOptions,
  JwtClaims,
  JwtPayload,
} from "./jwt_options.ts";

/**
 * `AuthOptions` for signed JWTs: the token from the handshake (in the order
 * of `from`), verified; a guest when there is none and `guest` is given; a
 * refresh verified the same way.
 *
 * @throws {TypeError} at once for a missing or unusable key (a secret under
 * 32 bytes, a secret for an asymmetric algorithm).
 *
 * @example
 * ```ts
 * import { issueToken, jwtAuth } from "./jwt.ts";
 * const secret = "a secret of at least thirty-two bytes!";
 * const auth = jwtAuth({
 *   algorithms: ["HS256"],
 *   key: secret,
 *   state: (claims) => ({ user: claims.sub }),
 * });
 * const token = await issueToken({ sub: "ada" }, { key: secret, expiresIn: 60 });
 * const identity = await auth.authenticate(
 *   new Request("http://x/", { headers: { authorization: `Bearer ${token}` } }),
 *   undefined,
 * );
 * console.assert(!(identity instanceof Response) && "subject" in identity && identity.subject === "ada");
 * ```
 */
export function jwtAuth<State>(
  options: JwtAuthOptions<State>,
): AuthOptions<State> {
  const key = verificationKey(options as JwtAuthOptions<unknown>);
  const from = options.from ?? ["bearer", "protocol"];
  return {
    authenticate(request) {
      const token = readToken(request, from);
      if (token === null) {
        return new AuthFailure("malformed", "Token refused: malformed");
      }
      if (token === undefined) {
        return options.guest?.(request) ??
          new AuthFailure("missing", "A token is required");
      }
      return verify(token, options, key);
    },
    refresh(token) {
      return verify(token, options, key);
    },
    authorize: options.authorize,
  };
}

/**
 * Signs a JWT with `claims` (which should have `sub`), `iat` and `exp`.
 *
 * @example
 * ```ts
 * import { issueToken } from "./jwt.ts";
 * const token = await issueToken({ sub: "ada", rooms: ["ops"] }, {
 *   key: "a secret of at least thirty-two bytes!",
 *   expiresIn: 3600,
 * });
 * console.assert(token.split(".").length === 3);
 * ```
 */
export async function issueToken(
  claims: JwtPayload,
  options: IssueTokenOptions,
): Promise<string> {
  const algorithm = options.algorithm ?? "HS256";
  const { importJWK, SignJWT } = await jose();
  const key = typeof options.key === "string" ||
      options.key instanceof Uint8Array
    ? secretBytes(options.key)
    : typeof CryptoKey !== "undefined" && options.key instanceof CryptoKey
    ? options.key
    : await importJWK(options.key as JWK, algorithm) as CryptoKey | Uint8Array;
  let jwt = new SignJWT(claims)
    .setProtectedHeader(
      options.keyId
        ? { alg: algorithm, kid: options.keyId }
        : { alg: algorithm },
    )
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + options.expiresIn);
  if (options.issuer) jwt = jwt.setIssuer(options.issuer);
  if (options.audience) jwt = jwt.setAudience(options.audience);
  return await jwt.sign(key);
}
