/**
 * The example app's identity: HS256 JWTs signed with `AUTH_SECRET`, from an
 * `Authorization: Bearer` header or the `duplex.bearer.` subprotocol (the
 * typed client's refreshable access tokens, which the page gets from
 * `POST /auth/token`). `sub` is the user; `exp` is required; `aud`, when
 * present, must be `duplex`: the session cookie's tokens (`aud:
 * duplex-session`) open no socket, and the socket reads no cookie (a page
 * on another site cannot ride one). No token at all: a guest (`guest-…`),
 * public rooms only. A token that is present but bad: 401, never a guest.
 *
 * Private rooms: the rooms of `PRIVATE_ROOMS` are open to their listed
 * users and to tokens whose `rooms` claim names them; every other room is
 * public.
 *
 * @module
 */

import {
  AuthFailure,
  type AuthOptions,
  type Identity,
} from "@duplex-ws/duplex";
import { jwtAuth } from "@duplex-ws/jwt";
import type { Users } from "./users.ts";

/** What every connection of the example app carries. */
export interface UserState {
  /** The verified subject, or `guest-…`. */
  user: string;
  /** The private rooms the token's `rooms` claim opens. */
  rooms: readonly string[];
  /** Whether it came without a token. */
  guest: boolean;
}

/** The example app's identity settings. */
export interface AuthConfig {
  /** The HS256 key (`AUTH_SECRET`): at least 32 bytes. */
  secret: string;
  /**
   * Seconds a login's session cookie lasts (`SESSION_TTL`).
   * @default {86400}
   */
  sessionTtl?: number;
  /**
   * Seconds an access token from `POST /auth/token` lasts (`TOKEN_TTL`).
   * @default {300}
   */
  tokenTtl?: number;
  /**
   * Private rooms and who may enter them besides a `rooms` claim
   * (`PRIVATE_ROOMS="staff=alice,bob;ops=carol"`).
   * @default {none}
   */
  privateRooms?: ReadonlyMap<string, readonly string[]>;
  /**
   * Who may open the admin socket at `/admin` (`ADMIN_USERS="alice,bob"`).
   * @default {nobody}
   */
  admins?: readonly string[];
  /**
   * Accounts with password hashes (`USERS`): `POST /login` then needs the
   * name's password.
   * @default {none}
   */
  users?: Users;
  /**
   * What `POST /login` takes: a name and its password (`"password"`), any
   * name (`"name"`, a demo) or nothing (`"off"`: guests and tokens from
   * elsewhere only).
   * @default {"password" with `users`, else "name"}
   */
  logins?: "password" | "name" | "off";
  /**
   * Whether the session cookie is always `Secure` (production, behind a
   * TLS proxy); otherwise only when the request came over HTTPS.
   * @default {false}
   */
  secureCookie?: boolean;
}

/** The session cookie `POST /login` sets. */
export const SESSION_COOKIE = "duplex_session";
/** The audience of access tokens, which the socket accepts when a token names one. */
export const AUDIENCE = "duplex";
/** The audience of session tokens: `/auth/token` only, never the socket. */
export const SESSION_AUDIENCE = "duplex-session";
/** Defaults of {@linkcode AuthConfig}. */
export const AUTH_DEFAULTS = { sessionTtl: 86_400, tokenTtl: 300 } as const;

const NAME = /^[A-Za-z0-9_-]{1,32}$/;

/** Whether a user name is acceptable (1–32 letters, digits, `_`, `-`; not `guest-…`). */
export function isUserName(name: string): boolean {
  return NAME.test(name) && !name.startsWith("guest-");
}

/** Whether an identity may enter a room. */
export function mayEnter(
  identity: Identity<UserState>,
  room: string,
  privateRooms: ReadonlyMap<string, readonly string[]>,
): boolean {
  const members = privateRooms.get(room);
  if (members === undefined) return true;
  const { user, rooms, guest } = identity.state;
  return !guest && (members.includes(user) || rooms.includes(room));
}

function guestName(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return `guest-${[...bytes].map((b) => (b % 36).toString(36)).join("")}`;
}

/** The claims a token may carry besides `sub`: `rooms`, a list of room names. */
function roomsClaim(claims: Record<string, unknown>): string[] {
  const rooms = claims.rooms;
  return Array.isArray(rooms)
    ? rooms.filter((r): r is string => typeof r === "string").slice(0, 100)
    : [];
}

/** The `auth` option of the example app. */
export function appAuth(config: AuthConfig): AuthOptions<UserState> {
  const privateRooms = config.privateRooms ?? new Map();
  return jwtAuth<UserState>({
    algorithms: ["HS256"],
    key: config.secret,
    audience: AUDIENCE,
    requireAudience: false,
    // `query`: an EventSource's `?access_token=` on the HTTP transport only.
    from: ["bearer", "protocol", "query"],
    state: (claims) => {
      if (!isUserName(claims.sub)) {
        throw new AuthFailure(
          "claims",
          "Token refused: sub must be 1-32 letters, digits, _ or - (not guest-)",
        );
      }
      return { user: claims.sub, rooms: roomsClaim(claims), guest: false };
    },
    guest: () => {
      const user = guestName();
      return {
        subject: user,
        state: { user, rooms: [], guest: true },
        guest: true,
      };
    },
    authorize: (identity, room) => mayEnter(identity, room, privateRooms),
  });
}
