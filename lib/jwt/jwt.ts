/**
 * Signed tokens for `createServer({ auth })`: `jwtAuth` verifies JWTs at the
 * handshake and on `auth.refresh` with an algorithm allowlist fixed by
 * configuration (never read from the token), checks `exp`, `nbf`, `iss` and
 * `aud` with a small clock skew, and maps every refusal to a reason.
 * `issueToken` signs one (a login route's job).
 *
 * @module
 */

import {
  createRemoteJWKSet,
  importJWK,
  type JWK,
  jwtVerify,
  type JWTVerifyGetKey,
  SignJWT,
} from "./_jose.ts";
import type { AuthFailureReason } from "@duplex-ws/protocol";
import {
  AuthFailure,
  type AuthOptions,
  type Identity,
} from "@duplex-ws/duplex";
import {
  AuthUnavailableError,
  readToken,
  type TokenSource,
} from "@duplex-ws/duplex/auth";

/** Algorithms `jwtAuth` accepts: HMAC, ECDSA, EdDSA, RSA-PSS and RSA. */
export type JwtAlgorithm =
  | "HS256"
  | "HS384"
  | "HS512"
  | "ES256"
  | "ES384"
  | "EdDSA"
  | "PS256"
  | "RS256";

/** A JWT's claims (RFC 7519 §4): the registered ones and any others. */
export interface JwtPayload {
  /** Issuer. */
  iss?: string;
  /** Subject: who the token is about. */
  sub?: string;
  /** Audience: who the token is for. */
  aud?: string | string[];
  /** Expiry, in seconds since the epoch. */
  exp?: number;
  /** Not before, in seconds since the epoch. */
  nbf?: number;
  /** Issued at, in seconds since the epoch. */
  iat?: number;
  /** The token's id. */
  jti?: string;
  /** Any other claim. */
  [claim: string]: unknown;
}

/** A verified token's claims: `sub` is always there. */
export type JwtClaims = JwtPayload & { sub: string };

/** Options of {@linkcode jwtAuth}. */
export interface JwtAuthOptions<State> {
  /** The algorithms accepted: a token signed otherwise is refused (`algorithm`). */
  algorithms: readonly JwtAlgorithm[];
  /**
   * The verification key: an HMAC secret (at least 32 bytes), a public
   * key as a `CryptoKey` or a JWK. Exactly one of `key` and `jwksUrl`.
   */
  key?: string | Uint8Array | CryptoKey | JsonWebKey;
  /** A JWKS URL: keys are fetched, cached and picked by `kid`. */
  jwksUrl?: string | URL;
  /** The `iss` required, if any. */
  issuer?: string | string[];
  /** The `aud` required (one of them), if any. */
  audience?: string | string[];
  /**
   * Whether a token without `aud` is refused when `audience` is set. With
   * `false`, a token may leave `aud` out, but one that names another
   * audience is still refused.
   * @default {true}
   */
  requireAudience?: boolean;
  /**
   * Seconds of clock skew allowed on `exp` and `nbf`.
   * @default {5}
   */
  clockTolerance?: number;
  /**
   * Whether a token must have an `exp`.
   * @default {true}
   */
  requireExpiry?: boolean;
  /**
   * Where a handshake's token is read, in order.
   * @default {["bearer", "protocol"]}
   */
  from?: readonly TokenSource[];
  /**
   * The connection's state, from the verified claims. Throw an
   * `AuthFailure` (`claims`) to refuse a token whose claims the app cannot
   * use.
   */
  state(claims: JwtClaims): State;
  /**
   * The identity of a handshake without any token. Omit it and such a
   * handshake is refused with 401 (`missing`). Never used for a token that
   * is present but bad: that is refused, not downgraded.
   */
  guest?(request: Request): Identity<State>;
  /** Passed on as `AuthOptions.authorize`. */
  authorize?: AuthOptions<State>["authorize"];
}

/** Options of {@linkcode issueToken}. */
export interface IssueTokenOptions {
  /** The signing key: an HMAC secret, or a private `CryptoKey` or JWK. */
  key: string | Uint8Array | CryptoKey | JsonWebKey;
  /**
   * The algorithm.
   * @default {"HS256"}
   */
  algorithm?: JwtAlgorithm;
  /** Seconds until `exp`. */
  expiresIn: number;
  /** `iss`, if any. */
  issuer?: string;
  /** `aud`, if any. */
  audience?: string | string[];
  /** A `kid` header, for JWKS. */
  keyId?: string;
}

const MIN_SECRET_BYTES = 32;

function secretBytes(key: string | Uint8Array): Uint8Array {
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
function verificationKey(
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
    const set = createRemoteJWKSet(new URL(jwksUrl), {
      timeoutDuration: 5_000,
      cooldownDuration: 30_000,
    });
    return () => Promise.resolve(set);
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
    imported ??= importJWK(jwk, jwk.alg ?? algorithms[0]) as Promise<
      CryptoKey | Uint8Array
    >;
}

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
async function verify<State>(
  token: string,
  options: JwtAuthOptions<State>,
  key: () => Promise<Uint8Array | CryptoKey | JWTVerifyGetKey>,
): Promise<Identity<State> | AuthFailure> {
  const requireExpiry = options.requireExpiry ?? true;
  let payload: JwtPayload;
  try {
    const k = await key();
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
  };
}

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
