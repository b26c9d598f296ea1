import assert from "node:assert/strict";
import { silentLogger } from "@duplex-ws/duplex";
import { createApp } from "../routes/app.ts";
import { CHAT_JS } from "../routes/page/chat_bundle.ts";
import { CLIENT_DTS, CLIENT_JS } from "@duplex-ws/client/bundle";
import { TARGETS } from "../scripts/build.ts";
import { startServer } from "@duplex-ws/testing";
import { TEST_IDENTITY } from "./_auth.ts";

Deno.test("the committed browser modules match their TypeScript sources (run `deno task build`)", async () => {
  for (const { file, build } of TARGETS) {
    const committed = await Deno.readTextFile(
      new URL(`../${file}`, import.meta.url),
    );
    assert.equal(committed, await build(), `${file} is stale`);
  }
});

Deno.test("GET /duplex/client.js serves the typed client as a plain module, with its types and an ETag", async () => {
  const app = createApp({ identity: TEST_IDENTITY, logger: silentLogger });
  const js = await app.fetch(new Request("http://localhost/duplex/client.js"));
  assert.equal(js.status, 200);
  assert.match(js.headers.get("content-type")!, /^text\/javascript/);
  assert.equal(js.headers.get("x-typescript-types"), "/duplex/client.d.ts");
  assert.equal(js.headers.get("access-control-allow-origin"), "*");
  assert.equal(js.headers.get("x-content-type-options"), "nosniff");
  assert.equal(await js.text(), CLIENT_JS);
  // No import is left for a browser to resolve; the client's names are there.
  assert.doesNotMatch(CLIENT_JS, /^import /m);
  assert.match(CLIENT_JS, /export \{[^}]*\bDuplexClient\b/);

  const etag = js.headers.get("etag")!;
  assert.match(etag, /^"[0-9a-f]{24}"$/);
  const again = await app.fetch(
    new Request("http://localhost/duplex/client.js", {
      headers: { "if-none-match": etag },
    }),
  );
  assert.equal(again.status, 304);
  assert.equal(await again.text(), "");

  const dts = await app.fetch(
    new Request("http://localhost/duplex/client.d.ts"),
  );
  assert.equal(await dts.text(), CLIENT_DTS);
  assert.match(CLIENT_DTS, /export declare class DuplexClient</);
  assert.doesNotMatch(CLIENT_DTS, /^import /m);
});

Deno.test("the plain client module runs as it is: imported from its text, it talks to a server", async () => {
  const { DuplexClient } = await import(
    `data:text/javascript,${encodeURIComponent(CLIENT_JS)}`
  );
  const app = createApp({ identity: TEST_IDENTITY, logger: silentLogger });
  const server = startServer(app);
  const client = new DuplexClient({ url: `${server.wsUrl}/` });
  try {
    assert.deepEqual(await client.request("echo", [1, "two"]), [1, "two"]);
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("GET / serves the chat page and GET /chat.js its script", async () => {
  const app = createApp({ identity: TEST_IDENTITY, logger: silentLogger });
  const page = await app.fetch(new Request("http://localhost/"));
  assert.match(page.headers.get("content-type")!, /text\/html/);
  const html = await page.text();
  assert.match(html, /<script type="module" src="\/chat.js">/);
  for (const id of ["name", "room", "text", "messages", "state", "count"]) {
    assert.match(html, new RegExp(`id="${id}"`), id);
  }
  const script = await app.fetch(new Request("http://localhost/chat.js"));
  assert.match(script.headers.get("content-type")!, /javascript/);
  assert.equal(await script.text(), CHAT_JS);
});

Deno.test("the page forbids framing, sniffing and foreign scripts or sockets", async () => {
  const app = createApp({ identity: TEST_IDENTITY, logger: silentLogger });
  for (const path of ["/", "/chat.js"]) {
    const response = await app.fetch(new Request(`http://localhost${path}`));
    await response.body?.cancel();
    const csp = response.headers.get("content-security-policy") ?? "";
    assert.match(csp, /frame-ancestors 'none'/, path);
    assert.match(csp, /script-src 'self'/, path);
    assert.match(csp, /connect-src 'self'/, path);
    assert.equal(response.headers.get("x-content-type-options"), "nosniff");
    assert.equal(response.headers.get("x-frame-options"), "DENY");
  }
});
