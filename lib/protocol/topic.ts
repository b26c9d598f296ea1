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

/**
 * The handshake's query parameter (`?push_topics=1`) by which a connection
 * asks that every push of a topic name its topic on the envelope, and that
 * a leave it asked for be told with {@linkcode TOPIC_EXIT}: what a client
 * that shares one connection among several tabs routes by (docs/PROTOCOL.md
 * §3, "Connections that name topics").
 */
export const PUSH_TOPICS_PARAM = "push_topics";

/**
 * The push that tells a connection which asked for `push_topics` that it
 * left a topic at its own request: `{"event":"topic.exit","topic":T,"data":{"topic":T}}`.
 */
export const TOPIC_EXIT = "topic.exit";

let lastText = "";
let lastTopic = "";
let lastNamed = "";

/**
 * A topic's push with its topic on the envelope (`{"event":…,"topic":…,…}`);
 * a push that names one already, or text that is not a push, as it is.
 * The last answer is kept, so a delivery names its text once, not once per
 * member.
 *
 * @example
 * ```ts
 * import { nameTopic } from "./topic.ts";
 * console.assert(
 *   nameTopic('{"event":"hi","data":1}', "room") ===
 *     '{"event":"hi","topic":"room","data":1}',
 * );
 * ```
 */
export function nameTopic(text: string, topic: string): string {
  if (text === lastText && topic === lastTopic) return lastNamed;
  let named = text;
  try {
    const push = JSON.parse(text);
    if (typeof push?.event === "string" && push.topic === undefined) {
      named = JSON.stringify({ event: push.event, topic, ...push });
    }
  } catch { /* not JSON: as it is */ }
  lastText = text;
  lastTopic = topic;
  return lastNamed = named;
}
