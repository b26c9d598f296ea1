import assert from "node:assert/strict";
import { silentLogger } from "@duplex-ws/duplex";
import { createApp } from "../routes/app.ts";
import { CHAT_JS } from "../routes/page/chat_bundle.ts";
import { buildBundleModule } from "../scripts/build_page.ts";
import { TEST_IDENTITY } from "./_auth.ts";

Deno.test("the committed page bundle matches its TypeScript source (run `deno task build`)", async () => {
  const committed = await Deno.readTextFile(
    new URL("../routes/page/chat_bundle.ts", import.meta.url),
  );
  assert.equal(
    committed,
    await buildBundleModule(),
    "routes/page/chat_bundle.ts is stale",
  );
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
