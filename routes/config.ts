/**
 * The example app's own environment variables (the library's are read by
 * `@duplex-ws/env`): `AUTH_SECRET`, `APP_ENV`, `USERS`, `SESSION_TTL`,
 * `TOKEN_TTL`, `PRIVATE_ROOMS`, `ADMIN_USERS`.
 *
 * `ADMIN_USERS` and `PRIVATE_ROOMS` trust a login's name, so they need
 * `USERS` (names with password hashes) unless `APP_ENV=development`, where
 * any name logs in without a password. In production without `USERS`
 * there are no logins at all: guests and tokens from elsewhere only.
 *
 * @module
 */

import { LISTEN_DEFAULTS } from "@duplex-ws/duplex/options";
import { ConfigError, type EnvGetter } from "@duplex-ws/env";
import type { AuthConfig } from "./auth.ts";
import { randomSecret } from "./app.ts";
import { parseHash, Users } from "./users.ts";

/** What {@linkcode readAppEnv} found. */
export interface AppEnv {
  /** The identity settings for `createApp({ identity })`. */
  identity: AuthConfig;
  /** Whether `AUTH_SECRET` was missing and a random one was made (development only). */
  generatedSecret: boolean;
}

const ROOM = /^[A-Za-z0-9_.:-]{1,128}$/;
const USER = /^[A-Za-z0-9_-]{1,32}$/;

/** `alice:<hash>,bob:<hash>` → the accounts. */
function users(raw: string): Users {
  const hashes = new Map();
  for (const entry of raw.split(",").map((e) => e.trim()).filter(Boolean)) {
    const at = entry.indexOf(":");
    const name = entry.slice(0, at);
    const hash = at > 0 ? parseHash(entry.slice(at + 1)) : undefined;
    if (!USER.test(name) || hash === undefined) {
      throw new ConfigError(
        "USERS",
        `must be name:hash pairs separated by commas, each hash from \`deno task hash-password\`; "${
          entry.slice(0, 40)
        }…" is not one`,
      );
    }
    hashes.set(name, hash);
  }
  return new Users(hashes);
}

/** `AUTH_SECRET` checked for length and variety (a placeholder is refused). */
function checkSecret(secret: string): void {
  const problem = secret.length < 32
    ? "must be at least 32 characters"
    : new Set(secret).size < 10
    ? "looks like a placeholder (fewer than 10 distinct characters)"
    : undefined;
  if (problem) {
    throw new ConfigError(
      "AUTH_SECRET",
      `${problem}: use \`openssl rand -base64 32\``,
    );
  }
}

/** `staff=alice,bob;ops=carol` → room → users. */
function privateRooms(raw: string): Map<string, string[]> {
  const rooms = new Map<string, string[]>();
  for (const entry of raw.split(";").map((e) => e.trim()).filter(Boolean)) {
    const [room, users = ""] = entry.split("=");
    const members = users.split(",").map((u) => u.trim()).filter(Boolean);
    if (!ROOM.test(room.trim()) || !members.every((u) => USER.test(u))) {
      throw new ConfigError(
        "PRIVATE_ROOMS",
        `must look like "staff=alice,bob;ops=carol", got "${entry}"`,
      );
    }
    rooms.set(room.trim(), members);
  }
  return rooms;
}

function seconds(get: EnvGetter, name: string): number | undefined {
  const raw = get(name)?.trim();
  if (!raw) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) {
    throw new ConfigError(
      name,
      `must be a whole number of seconds, got "${raw}"`,
    );
  }
  return Number(raw);
}

/**
 * Reads the app's variables. In production (`APP_ENV=production`, or on
 * Deno Deploy) a missing `AUTH_SECRET` is an error; in development a random
 * one is made for this process.
 *
 * @throws {ConfigError} naming the variable at fault.
 */
export function readAppEnv(get: EnvGetter): AppEnv {
  const mode = get("APP_ENV")?.trim();
  const production = mode === "production" ||
    get("DENO_DEPLOYMENT_ID") !== undefined;
  const secret = get("AUTH_SECRET")?.trim();
  if (secret) checkSecret(secret);
  if (!secret && production) {
    throw new ConfigError(
      "AUTH_SECRET",
      "is required in production (APP_ENV=production or Deno Deploy): set it to 32+ random characters, such as the output of `openssl rand -base64 32`, the same on every node",
    );
  }
  const accounts = get("USERS")?.trim();
  const rooms = get("PRIVATE_ROOMS")?.trim();
  const admins = get("ADMIN_USERS")?.split(",").map((u) => u.trim())
    .filter(Boolean);
  if (admins && !admins.every((u) => USER.test(u))) {
    throw new ConfigError(
      "ADMIN_USERS",
      `must be user names separated by commas, got "${get("ADMIN_USERS")}"`,
    );
  }
  for (
    const [name, set] of [["ADMIN_USERS", admins], ["PRIVATE_ROOMS", rooms]]
  ) {
    if (set && set.length > 0 && !accounts && mode !== "development") {
      throw new ConfigError(
        name as string,
        "trusts login names: set USERS (name:hash pairs from `deno task hash-password`), or APP_ENV=development for a demo where any name logs in",
      );
    }
  }
  return {
    identity: {
      secret: secret || randomSecret(),
      sessionTtl: seconds(get, "SESSION_TTL"),
      tokenTtl: seconds(get, "TOKEN_TTL"),
      privateRooms: rooms ? privateRooms(rooms) : undefined,
      admins,
      users: accounts ? users(accounts) : undefined,
      logins: accounts ? "password" : production ? "off" : "name",
      secureCookie: production,
    },
    generatedSecret: !secret,
  };
}

/**
 * `DENO_SERVE_ADDRESS` for `deno serve` from `PORT` and `HOSTNAME` (the one
 * not set takes `listen`'s default; an IPv6 host in brackets), or undefined
 * when neither is set.
 */
export function serveAddress(
  listen: { port?: number; hostname?: string },
): string | undefined {
  const { port, hostname } = listen;
  if (port === undefined && hostname === undefined) return undefined;
  const host = hostname ?? LISTEN_DEFAULTS.hostname;
  return `tcp:${host.includes(":") ? `[${host}]` : host}:${
    port ?? LISTEN_DEFAULTS.port
  }`;
}
