/**
 * The library's own `auth.refresh` event: `{token}` in, `{expiresAt?}` out.
 * The server routes it before the app's router when the `auth` option is
 * set; the connection does the verifying (`Connection.refresh`).
 *
 * @module
 */

import type { Route } from "../event_router.ts";
import type { AuthRefreshData, AuthRefreshReply } from "../protocol/auth.ts";
import type { StandardSchemaV1 } from "../standard_schema.ts";
import { MAX_TOKEN_LENGTH } from "./credentials.ts";

/** What the refresh route needs of a connection. */
interface Refreshable {
  refresh(token: string): Promise<AuthRefreshReply>;
}

/** `{token: string}` of 1 to {@linkcode MAX_TOKEN_LENGTH} characters, and nothing else. */
const refreshSchema: StandardSchemaV1<AuthRefreshData> = {
  "~standard": {
    version: 1,
    vendor: "duplex",
    validate(value) {
      const token = (value as Partial<AuthRefreshData> | null)?.token;
      if (
        typeof value !== "object" || value === null ||
        typeof token !== "string" || token.length === 0 ||
        token.length > MAX_TOKEN_LENGTH
      ) {
        return {
          issues: [{
            message:
              `Expected {token}: a string of 1-${MAX_TOKEN_LENGTH} characters`,
            path: ["token"],
          }],
        };
      }
      return { value: { token } };
    },
  },
};

/** The `auth.refresh` route. */
export const refreshRoute: Route = {
  schema: refreshSchema,
  handler: (data, ctx) =>
    (ctx as unknown as Refreshable).refresh((data as AuthRefreshData).token),
};
