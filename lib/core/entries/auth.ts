/**
 * Helpers for custom authentication (the `auth` option's types are in the
 * root entry): where a handshake's token is, topic rules, the 401 answer,
 * and the error that says credentials cannot be checked now.
 *
 * @module
 */

export {
  allowTopics,
  type Authenticate,
  type AuthResult,
  AuthUnavailableError,
  type Awaitable,
  matchesTopic,
  type TopicAction,
  unauthorizedResponse,
} from "../auth/identity.ts";
export {
  MAX_TOKEN_LENGTH,
  readCookie,
  readToken,
  tokenFromProtocols,
  type TokenSource,
} from "../auth/credentials.ts";
