/**
 * Between `node:http` and the web's `Request`/`Response`: a request as
 * duplex's `fetch` takes it (or `undefined` when its URL cannot be built,
 * say `Host: [`), the connection info, and a response written back, to a
 * response object or, for a refused upgrade, to the raw socket.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import http from "node:http";
import type { Socket } from "node:net";
import { Readable } from "node:stream";

/** The request `fetch` takes; `undefined` when its URL is not one (a bad `Host`). */
export function toRequest(req: http.IncomingMessage): Request | undefined {
  const headers = new Headers();
  for (const [name, value] of Object.entries(req.headers)) {
    if (Array.isArray(value)) {
      for (const v of value) headers.append(name, v);
    } else if (value !== undefined) headers.set(name, value);
  }
  let url: URL;
  try {
    url = new URL(`http://${req.headers.host ?? "localhost"}${req.url}`);
  } catch {
    return undefined;
  }
  const hasBody = req.method !== "GET" && req.method !== "HEAD";
  return new Request(url, {
    method: req.method,
    headers,
    body: hasBody ? Readable.toWeb(req) as ReadableStream : undefined,
    // @ts-ignore: `duplex` is required by fetch for streamed bodies.
    duplex: hasBody ? "half" : undefined,
  });
}

/** What `Deno.serve` would tell a handler about the connection. */
export function infoOf(socket: Socket): Deno.ServeHandlerInfo {
  return {
    remoteAddr: {
      transport: "tcp",
      hostname: socket.remoteAddress ?? "",
      port: socket.remotePort ?? 0,
    },
    completed: Promise.resolve(),
  };
}

/** Writes a `Response` to a `node:http` response, streaming its body. */
export async function writeResponse(
  response: Response,
  res: http.ServerResponse,
): Promise<void> {
  res.writeHead(response.status, [...response.headers]);
  if (response.body) {
    for await (const chunk of response.body) res.write(chunk);
  }
  res.end();
}

/** Answers an upgrade attempt with a plain HTTP response, then drops the socket. */
export async function writeRaw(
  response: Response,
  socket: Socket,
): Promise<void> {
  const body = new Uint8Array(await response.arrayBuffer());
  const head = [
    `HTTP/1.1 ${response.status} ${http.STATUS_CODES[response.status] ?? ""}`,
    ...[...response.headers].map(([name, value]) => `${name}: ${value}`),
    `content-length: ${body.byteLength}`,
    "connection: close",
    "",
    "",
  ].join("\r\n");
  socket.end(Buffer.concat([Buffer.from(head), body]));
}

/** A 400 for a request whose head cannot be read (a bad `Host`), and the socket dropped. */
export function badRequest(socket: Socket): void {
  socket.end(
    "HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
  );
  socket.destroySoon?.();
}
