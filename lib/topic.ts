/**
 * Topic names: what a connection may `join` and the server may `publish` to.
 *
 * @module
 */

import { EventError } from "./event_error.ts";

/** The most characters a topic name may have. */
export const MAX_TOPIC_LENGTH = 128;

const TOPIC_PATTERN = /^[A-Za-z0-9_.:\-]+$/;

/** Error codes of topic operations, sent in error envelopes. */
export const TopicErrorCode = {
  /** The topic name is empty, too long, or has characters outside `A-Z a-z 0-9 _ . : -`. */
  BAD_TOPIC: "BAD_TOPIC",
  /** The connection is already in as many topics as allowed. */
  TOO_MANY_TOPICS: "TOO_MANY_TOPICS",
} as const;

/** Whether a topic name is valid: 1–128 characters of `A-Z a-z 0-9 _ . : -`. */
export function isValidTopic(topic: unknown): topic is string {
  return typeof topic === "string" && topic.length > 0 &&
    topic.length <= MAX_TOPIC_LENGTH && TOPIC_PATTERN.test(topic);
}

/**
 * Checks a topic name.
 *
 * @throws {EventError} `BAD_TOPIC`, which a handler lets through to the client.
 */
export function assertTopic(topic: unknown): asserts topic is string {
  if (!isValidTopic(topic)) {
    throw new EventError(
      TopicErrorCode.BAD_TOPIC,
      `Topic must be 1-${MAX_TOPIC_LENGTH} characters of A-Z, a-z, 0-9, _, ., : and -`,
    );
  }
}
