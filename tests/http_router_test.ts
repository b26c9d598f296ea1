import * as assert from "node:assert/strict";
import { HttpRouter } from "@duplex-ws/duplex";

const at = (path: string, method = "GET") =>
  new Request(`http://localhost${path}`, { method });

Deno.test("HttpRouter: literal paths match exactly, patterns give params, 405 names the methods", async () => {
  const router = new HttpRouter()
    .get("/duplex/client.js", () => new Response("literal"))
    .get("/rooms/:id", (_request, { params }) => Response.json(params))
    .post("/rooms/:id", () => new Response("posted"))
    .get("/files/*", () => new Response("wildcard"))
    .get("/café", () => new Response("encoded"));
  assert.equal(
    await (await router.handle(at("/duplex/client.js"))).text(),
    "literal",
  );
  // A literal path is not a prefix, nor does it ignore a trailing slash.
  assert.equal((await router.handle(at("/duplex/client.js/"))).status, 404);
  assert.equal((await router.handle(at("/duplex/clientXjs"))).status, 404);
  assert.deepEqual(await (await router.handle(at("/rooms/lobby"))).json(), {
    id: "lobby",
  });
  assert.equal(
    await (await router.handle(at("/files/a/b"))).text(),
    "wildcard",
  );
  // A path with characters to percent-encode goes through URLPattern.
  assert.equal(await (await router.handle(at("/café"))).text(), "encoded");
  const wrong = await router.handle(at("/duplex/client.js", "DELETE"));
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get("allow"), "GET");
  const both = await router.handle(at("/rooms/x", "PUT"));
  assert.equal(both.headers.get("allow"), "GET, POST");
  await both.body?.cancel();
  await wrong.body?.cancel();
  assert.throws(
    () => new HttpRouter().get("/rooms/:", () => new Response()),
    TypeError,
  );
});

Deno.test("HttpRouter: a route for `*` answers every method (a handler that answers its own 405)", async () => {
  const router = new HttpRouter()
    .get("/api/info", () => new Response("first"))
    .on("*", "/api/:method", (request) => new Response(request.method));
  assert.equal(await (await router.handle(at("/api/info"))).text(), "first");
  assert.equal(
    await (await router.handle(at("/api/info", "DELETE"))).text(),
    "DELETE",
  );
  assert.equal(
    await (await router.handle(at("/api/other", "POST"))).text(),
    "POST",
  );
});
