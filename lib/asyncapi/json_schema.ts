/**
 * JSON Schema for the AsyncAPI document: a router's Standard Schemas
 * converted by the validator's own Standard JSON Schema support, the
 * envelope around a payload, the reply, and the small builders the
 * library's own messages use.
 *
 * @module
 */

import type { StandardSchemaV1 } from "@duplex-ws/duplex";

/** A JSON Schema object, as the document carries it. */
export type JsonSchema = Record<string, unknown>;

/** A message id: a string or a number. */
export const ID_SCHEMA: JsonSchema = {
  description: "Present when the sender wants exactly one reply.",
  oneOf: [{ type: "string", maxLength: 128 }, { type: "number" }],
};
/** An error as the wire carries it. */
export const WIRE_ERROR: JsonSchema = {
  type: "object",
  properties: { code: { type: "string" }, message: { type: "string" } },
  required: ["code", "message"],
};
/** A string schema. */
export function str(): JsonSchema {
  return { type: "string" };
}

/** An integer schema. */
export function int(): JsonSchema {
  return { type: "integer", minimum: 0 };
}

/** An object schema whose every property is required. */
export function object(properties: Record<string, JsonSchema>): JsonSchema {
  return { type: "object", properties, required: Object.keys(properties) };
}

interface JsonSchemaConverter {
  input(options: { target: string }): JsonSchema;
  output(options: { target: string }): JsonSchema;
}

/** Accepts `undefined` and refuses `null`: a schema for "no payload". */
function onlyUndefined(schema: StandardSchemaV1): boolean {
  try {
    const none = schema["~standard"].validate(undefined);
    const nil = schema["~standard"].validate(null);
    if (none instanceof Promise || nil instanceof Promise) return false;
    return !none.issues && Boolean(nil.issues);
  } catch {
    return false;
  }
}

/**
 * A payload schema as JSON Schema, or `undefined` for "no payload".
 *
 * @param direction `input` for what a client sends, `output` for what the
 * server sends.
 */
export function toJsonSchema(
  schema: StandardSchemaV1,
  direction: "input" | "output",
): JsonSchema | undefined {
  const standard = schema["~standard"] as
    & StandardSchemaV1["~standard"]
    & { jsonSchema?: JsonSchemaConverter };
  try {
    const converted = standard.jsonSchema?.[direction]({ target: "draft-07" });
    if (converted) {
      const { $schema: _, ...rest } = converted;
      return rest;
    }
  } catch {
    // Not expressible: fall through.
  }
  if (onlyUndefined(schema)) return undefined;
  return {
    description:
      `Any JSON: this ${standard.vendor} schema has no JSON Schema form.`,
  };
}

/** The envelope around a payload: `{event, data?, id?}`. */
export function envelope(
  event: string,
  data: JsonSchema | undefined,
  id: "none" | "optional" | "required",
): JsonSchema {
  const properties: Record<string, JsonSchema> = { event: { const: event } };
  const required = ["event"];
  if (data !== undefined) {
    properties.data = data;
    required.push("data");
  }
  if (id === "optional") properties.id = ID_SCHEMA;
  if (id === "required") {
    properties.id = { type: "integer", minimum: 1 };
    required.push("id");
  }
  return { type: "object", properties, required };
}

/**
 * A reply: `{id, data}` or `{id, error}`; each declared error code is its
 * own variant, with its `data`.
 */
export function replyEnvelope(
  data: JsonSchema | undefined,
  errors: Record<string, JsonSchema> = {},
): JsonSchema {
  const declared = Object.entries(errors).map(([code, schema]) =>
    object({
      id: ID_SCHEMA,
      error: object({
        code: { const: code },
        message: { type: "string" },
        data: schema,
      }),
    })
  );
  return {
    oneOf: [
      object({ id: ID_SCHEMA, data: data ?? {} }),
      ...declared,
      object({ id: ID_SCHEMA, error: WIRE_ERROR }),
    ],
  };
}
