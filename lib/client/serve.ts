/**
 * The typed client as one ES module for browsers, shipped in the package,
 * and a one-line way for any app to serve it (as Socket.IO's
 * `serveClient`): a page then imports it with no bundler.
 *
 * @example
 * ```ts ignore
 * import { serveClient } from "@duplex-ws/client/serve";
 *
 * Deno.serve((request) => serveClient(request) ?? app.fetch(request));
 * // <script type="module">import { DuplexClient } from "/duplex/client.js";</script>
 * ```
 *
 * @module
 */

/** The built module, its declarations and the worker: loaded on the first request for one. */
type Bundle = typeof import("./browser/client_js.ts");
let bundle: Promise<Bundle> | undefined;
/** The built files (about 300 KB of text), loaded once, on first use: not at start. */
function built(): Promise<Bundle> {
  return bundle ??= import("./browser/client_js.ts");
}

/** Where {@linkcode serveClient} answers. */
export interface ServeClientOptions {
  /**
   * The module's path; its declarations are at the same path ending in
   * `.d.ts` (named in the module's `X-TypeScript-Types` header), the
   * shared-socket worker (the client's `sharedWorker` option) at the same
   * path ending in `.worker.js`.
   * @default {"/duplex/client.js"}
   */
  path?: string;
}

/** The default path of the browser module. */
export const CLIENT_MODULE_PATH = "/duplex/client.js";

const etags = new Map<string, Promise<string>>();

function etagOf(text: string): Promise<string> {
  let tag = etags.get(text);
  if (!tag) {
    tag = crypto.subtle.digest("SHA-256", new TextEncoder().encode(text))
      .then((hash) =>
        `"${
          Array.from(new Uint8Array(hash).slice(0, 12), (b) =>
            b.toString(16).padStart(2, "0")).join("")
        }"`
      );
    etags.set(text, tag);
  }
  return tag;
}

/**
 * A generated text served as it is: any origin may load it (it is public
 * code), and a browser revalidates it by ETag, so a deploy is seen at once.
 */
async function asset(
  request: Request,
  file: (built: Bundle) => string,
  headers: Record<string, string>,
): Promise<Response> {
  const text = file(await built());
  const tag = await etagOf(text);
  const common = {
    etag: tag,
    "cache-control": "no-cache",
    "access-control-allow-origin": "*",
    "x-content-type-options": "nosniff",
  };
  if (request.headers.get("if-none-match") === tag) {
    return new Response(null, { status: 304, headers: common });
  }
  return new Response(text, { headers: { ...common, ...headers } });
}

/**
 * Answers `GET`/`HEAD` of the browser module, its declarations and the
 * shared-socket worker; `undefined` for any other request, for the app to
 * answer.
 */
export function serveClient(
  request: Request,
  options: ServeClientOptions = {},
): Promise<Response> | undefined {
  if (request.method !== "GET" && request.method !== "HEAD") return undefined;
  const path = options.path ?? CLIENT_MODULE_PATH;
  const types = path.replace(/\.js$/, "") + ".d.ts";
  const worker = path.replace(/\.js$/, "") + ".worker.js";
  const { pathname } = new URL(request.url);
  if (pathname === path) {
    return asset(request, (b) => b.CLIENT_JS, {
      "content-type": "text/javascript; charset=utf-8",
      "x-typescript-types": types,
    });
  }
  if (pathname === worker) {
    return asset(request, (b) => b.CLIENT_WORKER_JS, {
      "content-type": "text/javascript; charset=utf-8",
    });
  }
  if (pathname === types) {
    return asset(request, (b) => b.CLIENT_DTS, {
      "content-type": "application/typescript; charset=utf-8",
    });
  }
  return undefined;
}
