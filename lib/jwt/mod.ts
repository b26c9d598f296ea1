/**
 * The `@duplex-ws/jwt` package: signed tokens for `createServer({ auth })`, on npm's
 * `jose` (Web Crypto underneath, so it runs on Deno and Deno Deploy).
 *
 * @example
 * ```ts ignore
 * import { createServer } from "@duplex-ws/duplex";
 * import { jwtAuth } from "@duplex-ws/jwt";
 *
 * const server = createServer({
 *   router,
 *   auth: jwtAuth({
 *     algorithms: ["ES256"],
 *     jwksUrl: "https://auth.example.com/.well-known/jwks.json",
 *     issuer: "https://auth.example.com/",
 *     audience: "chat",
 *     state: (claims) => ({ user: claims.sub }),
 *   }),
 * });
 * ```
 *
 * @module
 */

export {
  issueToken,
  type IssueTokenOptions,
  type JwtAlgorithm,
  jwtAuth,
  type JwtAuthOptions,
  type JwtClaims,
  type JwtPayload,
} from "./jwt.ts";
