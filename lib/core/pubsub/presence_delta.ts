/**
 * A presence delta as another node sent it, checked: what every engine
 * that carries presence with members reads before the node believes it.
 *
 * @module
 */

import {
  MAX_PRESENCE_KEY_LENGTH,
  MAX_PRESENCE_META_BYTES,
  type PresenceDelta,
} from "./presence.ts";

/** The most entries one presence delta may carry. */
const MAX_DELTA_ENTRIES = 10_000;

/** Parses a presence delta body; `undefined` when it is not one. */
export function parsePresenceDelta(body: string): PresenceDelta | undefined {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return undefined;
  }
  const entries = Object.entries(value);
  if (entries.length > MAX_DELTA_ENTRIES) return undefined;
  // No prototype: a key such as "__proto__" stays a plain key.
  const delta: PresenceDelta = Object.create(null);
  for (const [key, entry] of entries) {
    if (key.length === 0 || key.length > MAX_PRESENCE_KEY_LENGTH) {
      return undefined;
    }
    if (entry === null) {
      delta[key] = null;
      continue;
    }
    if (
      typeof entry !== "object" || typeof entry.at !== "number" ||
      !Number.isFinite(entry.at) ||
      JSON.stringify(entry.meta ?? null).length > MAX_PRESENCE_META_BYTES
    ) {
      return undefined;
    }
    delta[key] = { meta: entry.meta ?? null, at: entry.at };
  }
  return delta;
}
