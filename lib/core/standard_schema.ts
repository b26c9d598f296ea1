/**
 * The Standard Schema v1 interface (https://standardschema.dev), so payloads
 * can be validated by Zod, Valibot, ArkType or any other library that
 * implements it, without duplex depending on one of them.
 *
 * @module
 */

/** A schema that implements Standard Schema v1. */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  /** The Standard Schema properties. */
  readonly "~standard": StandardSchemaProps<Input, Output>;
}

/** The properties under a schema's `~standard` key. */
export interface StandardSchemaProps<Input = unknown, Output = Input> {
  /** The version of the interface: 1. */
  readonly version: 1;
  /** The library that made the schema. */
  readonly vendor: string;
  /** Validates a value, synchronously or not. */
  readonly validate: (
    value: unknown,
  ) => StandardSchemaResult<Output> | Promise<StandardSchemaResult<Output>>;
  /** Type-only: the schema's input and output types. */
  readonly types?:
    | { readonly input: Input; readonly output: Output }
    | undefined;
}

/** The outcome of a validation. */
export type StandardSchemaResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<StandardSchemaIssue> };

/** One problem a schema found. */
export interface StandardSchemaIssue {
  /** What is wrong, in words. */
  readonly message: string;
  /** Where it is wrong: keys, or segments holding a key. */
  readonly path?:
    | ReadonlyArray<PropertyKey | { readonly key: PropertyKey }>
    | undefined;
}

/** The type a schema accepts. */
export type InferInput<S extends StandardSchemaV1> = NonNullable<
  S["~standard"]["types"]
>["input"];

/** The type a schema produces. */
export type InferOutput<S extends StandardSchemaV1> = NonNullable<
  S["~standard"]["types"]
>["output"];

/**
 * Renders a schema's issues as one short line, path first:
 * `room: Too small: expected string to have >=1 characters`.
 */
export function formatIssues(
  issues: ReadonlyArray<StandardSchemaIssue>,
  limit = 3,
): string {
  return issues.slice(0, limit).map((issue) => {
    const path = (issue.path ?? []).map((segment) =>
      typeof segment === "object" ? String(segment.key) : String(segment)
    ).join(".");
    return path ? `${path}: ${issue.message}` : issue.message;
  }).join("; ");
}

/** Whether a value implements Standard Schema v1. */
export function isStandardSchema(value: unknown): value is StandardSchemaV1 {
  if (
    value === null || (typeof value !== "object" && typeof value !== "function")
  ) {
    return false;
  }
  const props = (value as Record<string, unknown>)["~standard"] as
    | Record<string, unknown>
    | undefined;
  return typeof props === "object" && props !== null && props.version === 1 &&
    typeof props.validate === "function";
}
