/**
 * The library's own `auth.refresh` event: `{token}` in, `{expiresAt?}` out.
 * The server routes it before the app's router when the `auth` option is
 * set; the session does the verifying (`auth/refresh.ts`).
 *
 * @module
 */

import type { LibraryRoute } from "../dispatch.ts";
import type { AuthRefreshData } from "@duplex-ws/protocol";
import type { StandardSchemaV1 } from "../standard_schema.ts";
import { MAX_TOKEN_LENGTH } from "./credentials.ts";

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
export const refreshRoute: LibraryRoute = {
  schema: refreshSchema,
  handler: (data, target) => target.refresh((data as AuthRefreshData).token),
};
