/**
 * Identities for the suite: the example app is started with
 * {@linkcode TEST_SECRET} (in-process with `identity`, as a process with
 * `AUTH_SECRET`), and a test user is a token signed with it.
 */

import { issueToken } from "@duplex-ws/jwt";
import { bearerProtocols } from "@duplex-ws/protocol";

/** The suite's HS256 key. */
export const TEST_SECRET = "duplex test secret: 32 bytes or more, not for prod";

/** The example app's identity settings for tests. */
export const TEST_IDENTITY = { secret: TEST_SECRET };

/** A token for `user`, valid for `seconds` (default an hour), with extra claims. */
export function tokenFor(
  user: string,
  claims: Record<string, unknown> = {},
  seconds = 3600,
): Promise<string> {
  return issueToken({ sub: user, ...claims }, {
    key: TEST_SECRET,
    expiresIn: seconds,
  });
}

/** The subprotocols that carry `user`'s token, for `new WebSocket(url, protocols)`. */
export async function asUser(user: string): Promise<string[]> {
  return bearerProtocols(await tokenFor(user));
}
