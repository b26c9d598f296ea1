/**
 * The example app's own environment variables (the library's are read by
 * `@duplex-ws/env`): `AUTH_SECRET`, `APP_ENV`, `SESSION_TTL`,
 * `TOKEN_TTL`, `PRIVATE_ROOMS`, `ADMIN_USERS`.
 *
 * @module
 */

import { ConfigError, type EnvGetter } from "@duplex-ws/env";
import type { AuthConfig } from "./auth.ts";
import { randomSecret } from "./app.ts";

/** What {@linkcode readAppEnv} found. */
export interface AppEnv {
  /** The identity settings for `createApp({ identity })`. */
  identity: AuthConfig;
  /** Whether `AUTH_SECRET` was missing and a random one was made (development only). */
  generatedSecret: boolean;
}

const ROOM = /^[A-Za-z0-9_.:-]{1,128}$/;
const USER = /^[A-Za-z0-9_-]{1,32}$/;

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
  const production = get("APP_ENV")?.trim() === "production" ||
    get("DENO_DEPLOYMENT_ID") !== undefined;
  const secret = get("AUTH_SECRET")?.trim();
  if (secret !== undefined && secret !== "" && secret.length < 32) {
    throw new ConfigError(
      "AUTH_SECRET",
      "must be at least 32 characters: use `openssl rand -base64 32`",
    );
  }
  if (!secret && production) {
    throw new ConfigError(
      "AUTH_SECRET",
      "is required in production (APP_ENV=production or Deno Deploy): set it to 32+ random characters, such as the output of `openssl rand -base64 32`, the same on every node",
    );
  }
  const rooms = get("PRIVATE_ROOMS")?.trim();
  const admins = get("ADMIN_USERS")?.split(",").map((u) => u.trim())
    .filter(Boolean);
  if (admins && !admins.every((u) => USER.test(u))) {
    throw new ConfigError(
      "ADMIN_USERS",
      `must be user names separated by commas, got "${get("ADMIN_USERS")}"`,
    );
  }
  return {
    identity: {
      secret: secret || randomSecret(),
      sessionTtl: seconds(get, "SESSION_TTL"),
      tokenTtl: seconds(get, "TOKEN_TTL"),
      privateRooms: rooms ? privateRooms(rooms) : undefined,
      admins,
    },
    generatedSecret: !secret,
  };
}
