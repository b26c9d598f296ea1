/**
 * The duplex wire contract (docs/PROTOCOL.md in the repository), shared byte
 * for byte by the server (`@duplex-ws/duplex`) and the typed client
 * (`@duplex-ws/client`): the JSON envelope both ways, every error code, every
 * close code and the closes the library decides, topic names, stream
 * positions, presence pushes, identity on the wire, and the table of requests
 * awaiting replies. Web APIs only: it runs in browsers, Deno and Node.
 *
 * @example
 * ```ts
 * import { encodeEvent, parseServerMessage } from "@duplex-ws/protocol";
 * console.assert(encodeEvent("echo", "hi", 1) === '{"event":"echo","data":"hi","id":1}');
 * console.assert(parseServerMessage('{"id":1,"data":"hi"}')?.kind === "reply");
 * ```
 *
 * @module
 */

export {
  type ClientEnvelope,
  type ClientReplyEnvelope,
  encodeError,
  encodeEvent,
  encodePush,
  encodeReply,
  type EnvelopeProblem,
  type LibraryPushes,
  MAX_EVENT_LENGTH,
  MAX_ID_LENGTH,
  type MessageId,
  type ParsedEnvelope,
  parseEnvelope,
  parseServerMessage,
  type ServerMessage,
  type WireError,
} from "./envelope.ts";
export {
  ClientErrorCode,
  ErrorCode,
  isErrorCode,
  NoReplyCode,
  TEMPORARY_ERROR_CODES,
} from "./error_code.ts";
export {
  assertApplicationClose,
  assertCloseReason,
  CloseCode,
  type CloseInfo,
  isApplicationCloseCode,
  isWireCloseCode,
  LibraryClose,
  type LibraryCloseInfo,
  type LibraryCloseKind,
  MAX_CLOSE_REASON_BYTES,
  normalizeCloseInfo,
  ReadyState,
  shouldReconnect,
  truncateCloseReason,
} from "./close_code.ts";
export { utf8Length } from "./utf8.ts";
export {
  applyDeltaPush,
  asciiJson,
  type DeltaEncoding,
  deltaPush,
  TOPIC_DELTA,
  type TopicDelta,
  topicDelta,
} from "./delta.ts";
export {
  isValidTopic,
  MAX_TOPIC_LENGTH,
  nameTopic,
  PUSH_TOPICS_PARAM,
  TOPIC_EXIT,
} from "./topic.ts";
export {
  AUTH_FAILURES,
  AUTH_PROTOCOL,
  AUTH_REFRESH,
  type AuthFailureReason,
  type AuthRefreshData,
  type AuthRefreshReply,
  type AuthRefreshRequest,
  BEARER_PROTOCOL_PREFIX,
  bearerProtocols,
  TOPIC_JOINED,
  TOPIC_LEFT,
  type TopicJoined,
  type TopicLeft,
} from "./auth.ts";
export {
  applyPresence,
  PRESENCE_DIFF,
  PRESENCE_STATE,
  type PresenceDiff,
  type PresenceMembers,
  type PresenceState,
} from "./presence.ts";
export {
  isStreamPosition,
  positionedHead,
  pushPosition,
  STREAM_RESET,
  type StreamPosition,
  type StreamReset,
  streamStep,
  withPosition,
} from "./stream.ts";
export { type Pending, PendingTable } from "./pending.ts";
export {
  isStreamId,
  isStreamOpening,
  STREAM_CANCEL,
  STREAM_CHUNK,
  STREAM_END,
  STREAM_ERROR,
  STREAM_RESUME,
  STREAM_TOPIC_PREFIX,
  type StreamChunk,
  type StreamedReply,
  type StreamEnd,
  type StreamFailure,
  type StreamOpening,
  type StreamResume,
  streamTopic,
} from "./reply_stream.ts";
export {
  SESSION_HEADER,
  SSE_BINARY,
  SSE_CLOSE,
  type SseEvent,
  SseReader,
  STREAM_WELCOME,
} from "./http_stream.ts";
