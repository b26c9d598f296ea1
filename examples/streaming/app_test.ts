/**
 * The streaming example over real sockets: an answer read through a proxy
 * that cuts the connection twice arrives whole, in order, once, with its
 * token count; Stop (cancel) ends the generator; the page and the client
 * module are served. `tests/browser_test.ts` reads it in Chromium.
 */

import assert from "node:assert/strict";
import { silentLogger } from "@duplex-ws/duplex";
import { DuplexClient, type RequestError } from "@duplex-ws/client";
import { startProxy, startServer } from "@duplex-ws/testing";
import { type AnswerRouter, createAnswerApp, tokensFor } from "./app.ts";

Deno.test("streaming: an answer survives two cuts, whole and in order, once; Stop cancels it", async () => {
  const server = startServer(createAnswerApp({ logger: silentLogger }));
  const proxy = startProxy({ port: server.port });
  const client = new DuplexClient<AnswerRouter>({
    url: proxy.wsUrl("/"),
    minReconnectDelay: 20,
  });
  try {
    const stream = client.stream("ask", {
      prompt: "hello",
      tokens: 300,
      every: 1,
    });
    let answer = "";
    let read = 0;
    for await (const token of stream) {
      answer += token;
      if (++read === 100 || read === 200) proxy.cut();
    }
    assert.equal(answer, [...tokensFor("hello", 300)].join(""));
    assert.deepEqual(await stream.result, { tokens: 300 });

    const stopped = client.stream("ask", { prompt: "long", tokens: 5000 });
    await stopped.next();
    stopped.cancel();
    await assert.rejects(
      stopped.result,
      (error: RequestError) => error.code === "CANCELLED",
    );
  } finally {
    client.close();
    await proxy.close();
    await server.close();
  }
});

Deno.test("streaming: the page, its script and the typed client module are served", async () => {
  const server = startServer(createAnswerApp({ logger: silentLogger }));
  try {
    for (
      const [path, type] of [
        ["/", "text/html"],
        ["/app.js", "text/javascript"],
        ["/duplex/client.js", "text/javascript"],
      ]
    ) {
      const response = await fetch(`${server.url}${path}`);
      assert.equal(response.status, 200, path);
      assert.ok(response.headers.get("content-type")!.startsWith(type), path);
      await response.body?.cancel();
    }
  } finally {
    await server.close();
  }
});
