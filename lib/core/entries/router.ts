/**
 * The router's type vocabulary, for code that wraps or documents an
 * `EventRouter` (the app itself rarely names these): handler and hook
 * types, definitions, the Standard Schema interface, and
 * {@linkcode describeRouter}, what a router says about itself (the AsyncAPI
 * generator reads it).
 *
 * @module
 */

export {
  type BinaryHandler,
  type CloseHandler,
  describeRouter,
  type EventDefinition,
  type EventDefinitions,
  type EventDocs,
  type EventHandler,
  type EventOptions,
  type OpenHandler,
  type PushDocs,
  type RequestDefinitions,
  type RouterDescription,
} from "../event_router.ts";
export type { ErrorSchemas, ErrorTypes } from "../event_types.ts";
export type { ReplyStream, StreamProducer } from "../reply_stream.ts";
export type {
  DefineRequestOptions,
  ServerRequestOptions,
} from "../server_request.ts";
export type {
  InferInput,
  InferOutput,
  StandardSchemaIssue,
  StandardSchemaProps,
  StandardSchemaResult,
} from "../standard_schema.ts";
