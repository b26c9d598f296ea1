/**
 * A live connection's identity, renewed in place: when the server asks
 * (`auth.refresh`), the client gets a token from `getToken` and sends it
 * back on the same connection until it is taken or the deadline passes, so
 * the connection keeps its topics and pending requests.
 *
 * @module
 */

import {
  AUTH_REFRESH,
  type AuthRefreshRequest,
  ClientErrorCode,
  ErrorCode,
} from "@duplex-ws/protocol";
import { RequestError } from "./errors.ts";
import type { Call } from "./requests.ts";

/** What refreshing needs of the client. */
export interface RefreshPort {
  /** `getToken`'s next token (`undefined`: none to give). */
  token(): Promise<string | undefined>;
  /** Sends a request before everything else. */
  readonly call: Call;
  /** Whether the connection the request came on is still the current one. */
  current(): boolean;
  /** Records a failure the app can read (`authError`). */
  failed(error: Error): void;
  /** Waits, unless the connection closes first (then it never settles). */
  sleep(ms: number): Promise<void>;
}

/**
 * Answers the server's `auth.refresh`: a refused token is asked for again a
 * second later; another subject (`FORBIDDEN`) or a lost connection ends it.
 */
export async function refreshToken(
  port: RefreshPort,
  request: AuthRefreshRequest,
): Promise<void> {
  const deadline = typeof request?.deadline === "number"
    ? request.deadline
    : Date.now() + 10_000;
  while (Date.now() < deadline && port.current()) {
    try {
      const token = await port.token();
      if (token === undefined) return;
      await port.call(AUTH_REFRESH, { token }, {
        timeout: Math.max(1, deadline - Date.now()),
      }, true);
      return;
    } catch (error) {
      const code = (error as RequestError).code;
      if (code === ErrorCode.FORBIDDEN) return port.failed(error as Error);
      if (code === ClientErrorCode.CONNECTION_LOST) return;
      if (!(error instanceof RequestError)) port.failed(error as Error);
      await port.sleep(1000);
    }
  }
}
