/**
 * Reading an HTTP request's body with a bound: a body (declared or
 * streamed) past `maxBytes` is a 413 before it is held, malformed JSON a
 * 400. A handler lets the {@linkcode HttpError} escape and
 * {@linkcode HttpRouter} answers it as JSON.
 *
 * @module
 */

/** An HTTP answer a handler gives by throwing: the router sends it as JSON. */
export class HttpError extends Error {
  /**
   * Makes the error.
   * @param status The HTTP status.
   * @param code A short machine-readable code (`body_too_large`…).
   * @param message What the client did wrong.
   */
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "HttpError";
  }
}

/** The body size {@linkcode readJson} takes when not told. */
export const DEFAULT_MAX_BODY = 65_536;

function tooLarge(maxBytes: number): HttpError {
  return new HttpError(
    413,
    "body_too_large",
    `The body must be at most ${maxBytes} bytes`,
  );
}

/**
 * Reads a request's body, at most `maxBytes` of it.
 * @throws {HttpError} 413 when it declares or sends more.
 */
export async function readBody(
  request: Request,
  maxBytes: number,
): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > maxBytes) {
    await request.body?.cancel();
    throw tooLarge(maxBytes);
  }
  if (!request.body) return new Uint8Array();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body) {
    size += chunk.byteLength;
    // Leaving the loop early cancels the stream: the rest is not read.
    if (size > maxBytes) throw tooLarge(maxBytes);
    chunks.push(chunk);
  }
  const body = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    body.set(chunk, at);
    at += chunk.byteLength;
  }
  return body;
}

/**
 * Reads a JSON body of at most `maxBytes` (64 KiB unless told).
 * @throws {HttpError} 413 when larger, 400 when it is not UTF-8 JSON.
 *
 * @example
 * ```ts
 * import { readJson } from "@duplex-ws/duplex";
 * const request = new Request("http://localhost/", {
 *   method: "POST",
 *   body: '{"name":"ada"}',
 * });
 * console.assert((await readJson(request) as { name: string }).name === "ada");
 * ```
 */
export async function readJson(
  request: Request,
  maxBytes: number = DEFAULT_MAX_BODY,
): Promise<unknown> {
  const body = await readBody(request, maxBytes);
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body));
  } catch {
    throw new HttpError(400, "invalid_json", "The body must be UTF-8 JSON");
  }
}
