/**
 * One token verified with jose: the algorithm allowlist, `exp`, `nbf`,
 * `iss`, `aud` with the clock skew, `sub` present; jose's errors mapped to
 * the reasons a 401 gives, and keys that cannot be fetched to a 503.
 *
 * @module
 */

import type { AuthFailureReason } from "@duplex-ws/protocol";
import { AuthFailure, type Identity } from "@duplex-ws/duplex";
import { AuthUnavailableError } from "@duplex-ws/duplex/auth";
import { jose, type JWTVerifyGetKey } from "./_jose.ts";
import type { JwtAuthOptions, JwtClaims, JwtPayload } from "./jwt_options.ts";

/** A jose error → why the token was refused (or: the keys are unavailable). */
function failureOf(error: unknown): AuthFailure | AuthUnavailableError {
  const code = (error as { code?: string })?.code;
  const claim = (error as { claim?: string })?.claim;
  const reasons: Record<string, AuthFailureReason> = {
    ERR_JWT_EXPIRED: "expired",
    ERR_JOSE_ALG_NOT_ALLOWED: "algorithm",
    ERR_JOSE_NOT_SUPPORTED: "algorithm",
    ERR_JWS_SIGNATURE_VERIFICATION_FAILED: "signature",
    ERR_JWKS_NO_MATCHING_KEY: "signature",
    ERR_JWKS_MULTIPLE_MATCHING_KEYS: "signature",
    ERR_JWS_INVALID: "malformed",
    ERR_JWT_INVALID: "malformed",
  };
  if (code === "ERR_JWT_CLAIM_VALIDATION_FAILED") {
    const reason: AuthFailureReason = claim === "nbf"
      ? "not_yet_valid"
      : claim === "aud"
      ? "audience"
      : claim === "iss"
      ? "issuer"
      : "claims";
    return new AuthFailure(reason, `Token refused: ${reason}`);
  }
  if (code !== undefined && code in reasons) {
    return new AuthFailure(reasons[code], `Token refused: ${reasons[code]}`);
  }
  if (code === "ERR_JWKS_TIMEOUT" || code === "ERR_JWKS_INVALID") {
    return new AuthUnavailableError("The token keys cannot be fetched now");
  }
  if (error instanceof TypeError && code === undefined) {
    // A fetch of the key set that failed, or a key of the wrong type for
    // the token's algorithm (jose checks the key against the header).
    return /fetch|network|connect/i.test(error.message)
      ? new AuthUnavailableError("The token keys cannot be fetched now")
      : new AuthFailure("algorithm", "Token refused: algorithm");
  }
  return new AuthFailure("malformed", "Token refused: malformed");
}

/** A token's `aud` (absent, or one of) against the audiences accepted. */
function audienceAllowed(
  aud: string | string[] | undefined,
  accepted: string | string[] | undefined,
): boolean {
  if (accepted === undefined || aud === undefined) return true;
  const allowed = new Set([accepted].flat());
  return [aud].flat().some((a) => allowed.has(a));
}

/**
 * Verifies one token: its identity, or why not.
 * @throws {AuthUnavailableError} when the keys cannot be fetched.
 */
export async function verify<State>(
  token: string,
  options: JwtAuthOptions<State>,
  key: () => Promise<Uint8Array | CryptoKey | JWTVerifyGetKey>,
): Promise<Identity<State> | AuthFailure> {
  const requireExpiry = options.requireExpiry ?? true;
  let payload: JwtPayload;
  try {
    const [k, { jwtVerify }] = await Promise.all([key(), jose()]);
    const strictAudience = options.requireAudience ?? true;
    const verifyOptions = {
      algorithms: [...options.algorithms],
      issuer: options.issuer,
      audience: strictAudience ? options.audience : undefined,
      clockTolerance: options.clockTolerance ?? 5,
      requiredClaims: requireExpiry ? ["sub", "exp"] : ["sub"],
    };
    ({ payload } = typeof k === "function"
      ? await jwtVerify(token, k, verifyOptions)
      : await jwtVerify(token, k, verifyOptions));
  } catch (error) {
    const failure = failureOf(error);
    if (failure instanceof AuthUnavailableError) throw failure;
    return failure;
  }
  if (typeof payload.sub !== "string" || payload.sub.length === 0) {
    return new AuthFailure("claims", "Token refused: claims");
  }
  if (!audienceAllowed(payload.aud, options.audience)) {
    return new AuthFailure("audience", "Token refused: audience");
  }
  const { maxTokenAge } = options;
  if (
    maxTokenAge !== undefined &&
    !(typeof payload.iat === "number" && typeof payload.exp === "number" &&
      payload.exp - payload.iat <= maxTokenAge)
  ) {
    return new AuthFailure("claims", "Token refused: lives too long");
  }
  const claims = payload as JwtClaims;
  let state: State;
  try {
    state = options.state(claims);
  } catch (error) {
    if (error instanceof AuthFailure) return error;
    throw error;
  }
  return {
    subject: claims.sub,
    state,
    expiresAt: claims.exp === undefined ? undefined : claims.exp * 1000,
    issuedAt: claims.iat === undefined ? undefined : claims.iat * 1000,
  };
}
