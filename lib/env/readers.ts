/**
 * How a variable is read: text, integers in a range, booleans, one of a
 * list; a bad value is a {@linkcode ConfigError} naming the variable.
 *
 * @module
 */

import { assertInteger } from "@duplex-ws/duplex/options";

/** Reads one environment variable. */
export type EnvGetter = (name: string) => string | undefined;

/** A configuration value that cannot be used. */
export class ConfigError extends Error {
  /** The variable at fault. */
  readonly variable: string;

  /**
   * Makes the error; its message names the variable.
   * @param variable The variable.
   * @param message What is wrong with it.
   */
  constructor(variable: string, message: string) {
    super(`Invalid configuration: ${variable} ${message}`);
    this.name = "ConfigError";
    this.variable = variable;
  }
}

/** A variable's value, trimmed; `undefined` when unset or blank. */
export function text(get: EnvGetter, name: string): string | undefined {
  return get(name)?.trim() || undefined;
}

/** A variable as an integer from `min` to `max`; `undefined` when unset. */
export function integer(
  get: EnvGetter,
  name: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  const raw = text(get, name);
  if (raw === undefined) return undefined;
  const value = Number(raw);
  try {
    if (!/^\d+$/.test(raw) || value > max) throw new RangeError();
    assertInteger(name, value, min);
  } catch {
    throw new ConfigError(
      name,
      `must be an integer from ${min} to ${max}, got "${raw}"`,
    );
  }
  return value;
}

/** A variable as a boolean (`1`/`true`/`yes`, `0`/`false`/`no`); `undefined` when unset. */
export function boolean(get: EnvGetter, name: string): boolean | undefined {
  const raw = text(get, name)?.toLowerCase();
  if (raw === undefined) return undefined;
  if (["1", "true", "yes"].includes(raw)) return true;
  if (["0", "false", "no"].includes(raw)) return false;
  throw new ConfigError(name, `must be true or false, got "${raw}"`);
}

/** A variable as one of `allowed`; `undefined` when unset. */
export function oneOf<T extends string>(
  get: EnvGetter,
  name: string,
  allowed: readonly T[],
): T | undefined {
  const raw = text(get, name);
  if (raw === undefined || allowed.includes(raw as T)) return raw as T;
  throw new ConfigError(
    name,
    `must be one of ${allowed.join(", ")}, got "${raw}"`,
  );
}
