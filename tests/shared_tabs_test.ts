/**
 * One socket per browser (`shared: true`) in Debian's Chromium: three tabs
 * of one origin share one server connection; each tab's requests get its
 * own replies; a topic's pushes, with history or without, reach only the
 * tabs that joined it; a tab that leaves a topic another tab follows stops
 * getting it while the other goes on; when the tab holding the connection
 * closes mid-stream, another takes over and the tab that joined gets every
 * publish once, in order. The same with the connection held by a
 * SharedWorker (`sharedWorker`), where closing a tab costs no reconnect.
 */

/// <reference lib="dom" />

import assert from "node:assert/strict";
import puppeteer, { type Page } from "npm:puppeteer-core@24.8.2";
import { z } from "zod";
import { createServer, EventRouter, silentLogger } from "@duplex-ws/duplex";
import { serveClient } from "@duplex-ws/client/serve";
import { delay, eventually } from "@duplex-ws/testing";

const CHROMIUM = "/usr/bin/chromium";
const HAS_CHROMIUM = (() => {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
})();
if (!HAS_CHROMIUM && Deno.env.get("CI")) {
  throw new Error(`${CHROMIUM} not found: under CI a skip is an error.`);
}

const position = z.object({ offset: z.number(), epoch: z.string() });
const router = new EventRouter<
  unknown,
  { note: { n: number }; plain: { n: number } }
>()
  .on(
    "join",
    z.object({ topic: z.string(), since: position.optional() }),
    ({ topic, since }, ctx) => ctx.join(topic, { since }),
  )
  .on("leave", z.object({ topic: z.string() }), ({ topic }, ctx) => ({
    topic,
    left: ctx.leave(topic),
  }))
  .on("echo", z.string(), (text) => text);

const PAGE = `<!doctype html><title>shared</title><script type="module">
import { DuplexClient } from "/duplex/client.js";
const worker = new URLSearchParams(location.search).has("worker");
const client = new DuplexClient({
  url: "ws://" + location.host + "/", shared: true,
  sharedWorker: worker ? "/duplex/client.worker.js" : undefined,
  minReconnectDelay: 20, maxReconnectDelay: 100,
});
window.got = [];
window.states = [];
client.onState((state) => window.states.push(state));
window.plain = [];
client.on("note", (note) => window.got.push(note.n));
client.on("plain", (note) => window.plain.push(note.n));
window.join = (topic) => client.join("join", { topic }).then(() => true);
window.leave = (topic) => {
  client.leave("join", { topic });
  return client.request("leave", { topic }).then((r) => r.left);
};
window.ask = (texts) => Promise.all(texts.map((t) => client.request("echo", t)));
window.ready = true;
</script>`;

const MODES = {
  locks:
    "three tabs share one connection (Web Locks): own replies, own topics, a leave leaves the others in, and a hand-over mid-stream loses nothing",
  worker:
    "three tabs share one connection held by a SharedWorker: own replies, own topics, a leave leaves the others in, and a tab closing mid-stream costs no reconnect",
};

for (const [mode, name] of Object.entries(MODES)) {
  Deno.test({ name, ignore: !HAS_CHROMIUM, fn: () => tabs(mode) });
}

async function tabs(mode: string): Promise<void> {
  const app = createServer({
    router,
    logger: silentLogger,
    topics: [
      { match: "plain.*" },
      { match: "*", history: { size: 10_000 } },
    ],
  });
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request, info) =>
      serveClient(request) ??
        (new URL(request.url).pathname === "/page"
          ? new Response(PAGE, { headers: { "content-type": "text/html" } })
          : app.fetch(request, info)),
  );
  const url = `http://127.0.0.1:${server.addr.port}/page${
    mode === "worker" ? "?worker" : ""
  }`;
  const profile = await Deno.makeTempDir({ prefix: "duplex-tabs-" });
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    userDataDir: profile,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-background-timer-throttling",
      "--disable-renderer-backgrounding",
      "--disable-backgrounding-occluded-windows",
    ],
  });
  const open = async (): Promise<Page> => {
    const page = await browser.newPage();
    await page.goto(url);
    await page.waitForFunction("window.ready === true");
    return page;
  };
  try {
    const [a, b, c] = [await open(), await open(), await open()];
    await a.evaluate("window.join('notes')");
    await b.evaluate("window.join('notes')");
    await c.evaluate("window.join('other')");
    assert.equal(app.connections.size, 1, "one connection for three tabs");

    const asks = await Promise.all([a, b, c].map((page, tab) =>
      page.evaluate(
        `window.ask(${
          JSON.stringify(Array.from({ length: 20 }, (_, i) => `${tab}-${i}`))
        })`,
      )
    ));
    asks.forEach((replies, tab) =>
      assert.deepEqual(
        replies,
        Array.from({ length: 20 }, (_, i) => `${tab}-${i}`),
      )
    );

    // A topic without history: only its tabs; a leave leaves the others.
    await b.evaluate("window.join('plain.x')");
    await c.evaluate("window.join('plain.x')");
    const plain = (page: Page) =>
      page.evaluate("window.plain") as Promise<number[]>;
    await app.publish("plain.x", "plain", { n: 1 });
    await eventually(async () => (await plain(c)).length === 1, 5_000);
    assert.equal(await c.evaluate("window.leave('plain.x')"), true);
    await eventually(async () => {
      const states = await b.evaluate("window.states") as string[];
      return states.at(-1) === "open";
    }, 5_000);
    await eventually(async () => {
      await app.publish("plain.x", "plain", { n: 2 });
      await delay(50);
      return (await plain(b)).includes(2);
    }, 5_000);
    await app.publish("plain.x", "plain", { n: 3 });
    await eventually(async () => (await plain(b)).includes(3), 5_000);
    assert.deepEqual(await plain(a), [], "a never joined plain.x");
    assert.deepEqual(await plain(c), [1], "c left plain.x");
    assert.equal((await plain(b))[0], 1);
    assert.equal(app.connections.size, 1, "still one connection");
    const reconnectsBefore = (await b.evaluate("window.states") as string[])
      .filter((state) => state === "reconnecting").length;

    for (let n = 1; n <= 200; n++) {
      await app.publish("notes", "note", { n });
      if (n === 100) await a.close(); // with Web Locks, the holding tab
      await delay(n > 100 && n < 120 ? 10 : 1);
    }
    const got = () => b.evaluate("window.got") as Promise<number[]>;
    await eventually(async () => (await got()).length >= 200, 15_000);
    assert.deepEqual(
      await got(),
      Array.from({ length: 200 }, (_, i) => i + 1),
      "every note once, in order, across the close of tab a",
    );
    assert.deepEqual(await c.evaluate("window.got"), [], "c never joined");
    const states = await b.evaluate("window.states") as string[];
    const reconnects = states.filter((state) =>
      state === "reconnecting"
    ).length;
    if (mode === "locks") {
      assert.ok(reconnects > reconnectsBefore, "b went through a hand-over");
    } else {
      assert.equal(reconnects, reconnectsBefore, "the worker held on");
    }
    await eventually(() => app.connections.size === 1, 5_000);
    assert.deepEqual(await c.evaluate("window.ask(['after'])"), ["after"]);
  } finally {
    await browser.close();
    await app.shutdown();
    await server.shutdown();
    await Deno.remove(profile, { recursive: true });
  }
}
