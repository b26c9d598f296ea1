/**
 * Topic names on the wire: what a client may name in a join or a publish,
 * and what an engine may carry (`BAD_TOPIC` answers anything else).
 *
 * @module
 */

/** The most characters a topic name may have. */
export const MAX_TOPIC_LENGTH = 128;

const TOPIC_PATTERN = /^[A-Za-z0-9_.:\-]+$/;

/**
 * Whether a topic name is valid: 1–128 characters of `A-Z a-z 0-9 _ . : -`.
 *
 * @example
 * ```ts
 * import { isValidTopic } from "./topic.ts";
 * console.assert(isValidTopic("chat:lobby") && !isValidTopic("a b"));
 * ```
 */
export function isValidTopic(topic: unknown): topic is string {
  return typeof topic === "string" && topic.length > 0 &&
    topic.length <= MAX_TOPIC_LENGTH && TOPIC_PATTERN.test(topic);
}
