/**
 * A small HTTP route table for the plain HTTP side of the port: literal paths
 * compared as strings, patterns on the built-in `URLPattern`.
 *
 * @module
 */

import { HttpError } from "./http_body.ts";
import type { DuplexServer } from "./server_types.ts";

/** What an HTTP handler gets besides the request. */
export interface HttpContext {
  /** Named groups the path pattern matched (`/rooms/:id` → `{ id }`). */
  params: Record<string, string | undefined>;
  /** Connection info from `Deno.serve`, when there is some. */
  info?: Deno.ServeHandlerInfo;
  /**
   * The client's address as the server counts it: the TCP peer's, or one
   * from `X-Forwarded-For` by the `trustProxy` rules (a per-address limit
   * of the app's keys on it).
   */
  address?: string;
  /**
   * The server serving the request: its health, metrics, `publish`… (absent
   * when the router is called on its own, as in a unit test).
   */
  server?: DuplexServer;
}

/** What {@linkcode HttpRouter.handle} passes on to handlers besides the params. */
export type HandleOptions = Omit<HttpContext, "params">;

/** Handles one HTTP request. */
export type HttpHandler = (
  request: Request,
  ctx: HttpContext,
) => Response | Promise<Response>;

interface HttpRoute {
  method: string;
  /** A literal path, compared as it is, or a compiled pattern. */
  path: string | URLPattern;
  handler: HttpHandler;
}

/**
 * A path with no `URLPattern` syntax and nothing to percent-encode: matched
 * by comparing strings, so no pattern is compiled for it (compiling one
 * costs most of a millisecond of a server's start).
 */
const LITERAL_PATH = /^\/[A-Za-z0-9\-._~/!$&'=,;@]*$/;

/** A route's params when it matches `pathname` (of `url`), or null. */
function matchRoute(
  route: HttpRoute,
  url: string,
  pathname: string,
): Record<string, string | undefined> | null {
  if (typeof route.path === "string") {
    return route.path === pathname ? {} : null;
  }
  return route.path.exec(url)?.pathname.groups ?? null;
}

/** Answers JSON with a status: `{"error": code, "message": message}`. */
export function jsonError(
  status: number,
  code: string,
  message: string,
): Response {
  return Response.json({ error: code, message }, { status });
}

/** A handler's answer, with an {@linkcode HttpError} it throws sent as JSON. */
async function answered(
  handler: () => Response | Promise<Response>,
): Promise<Response> {
  try {
    return await handler();
  } catch (error) {
    if (!(error instanceof HttpError)) throw error;
    return jsonError(error.status, error.code, error.message);
  }
}

/**
 * Routes HTTP requests by method and path. A handler may throw an
 * {@linkcode HttpError} (as {@linkcode readJson} does) to answer it as JSON. An unmatched path answers a JSON
 * 404; a matched path with another method answers 405 with `Allow`. `HEAD`
 * is served by the `GET` route.
 *
 * @example
 * ```ts
 * import { HttpRouter } from "@duplex-ws/duplex";
 * const http = new HttpRouter().get("/rooms/:id", (_req, { params }) =>
 *   Response.json({ room: params.id })
 * );
 * const response = await http.handle(new Request("http://localhost/rooms/7"));
 * console.assert((await response.json()).room === "7");
 * ```
 */
export class HttpRouter {
  #routes: HttpRoute[] = [];

  /** Adds a route for `GET` (and `HEAD`). */
  get(path: string, handler: HttpHandler): this {
    return this.on("GET", path, handler);
  }

  /** Adds a route for `POST`. */
  post(path: string, handler: HttpHandler): this {
    return this.on("POST", path, handler);
  }

  /**
   * Adds a route.
   *
   * @param method An HTTP method, or `*` for every method.
   * @param path A `URLPattern` pathname, such as `/rooms/:id`.
   * @throws {TypeError} when the path is not a valid pattern.
   */
  on(method: string, path: string, handler: HttpHandler): this {
    this.#routes.push({
      method: method.toUpperCase(),
      path: LITERAL_PATH.test(path) ? path : new URLPattern({ pathname: path }),
      handler,
    });
    return this;
  }

  /** Answers a request from the first route whose method and path match. */
  handle(
    request: Request,
    options: HandleOptions = {},
  ): Response | Promise<Response> {
    const method = request.method === "HEAD" ? "GET" : request.method;
    const allowed: string[] = [];
    const { pathname } = new URL(request.url);
    for (const route of this.#routes) {
      const params = matchRoute(route, request.url, pathname);
      if (params === null) continue;
      if (route.method !== method && route.method !== "*") {
        allowed.push(route.method);
        continue;
      }
      return answered(() => route.handler(request, { ...options, params }));
    }
    if (allowed.length > 0) {
      const response = jsonError(
        405,
        "method_not_allowed",
        "Method not allowed",
      );
      response.headers.set("allow", [...new Set(allowed)].join(", "));
      return response;
    }
    return jsonError(404, "not_found", "No route for this path");
  }
}
