/**
 * What a JWT carries and what `jwtAuth` and `issueToken` take: the
 * algorithms, the claims, and the options with their defaults.
 *
 * @module
 */

import type { AuthOptions, Identity } from "@duplex-ws/duplex";
import type { TokenSource } from "@duplex-ws/duplex/auth";

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
   * The longest a token may live, in seconds: one whose `exp` is further
   * than this from its `iat` (or without `iat`) is refused (`claims`), so a
   * token signed for years cannot be used for them.
   * @default {no limit}
   */
  maxTokenAge?: number;
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
