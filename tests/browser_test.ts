/**
 * The chat page in a real browser: Debian's Chromium, headless, driven by
 * puppeteer-core. Two pages join one room, one speaks, the other shows it
 * and the count; the server restarts and both pages recover; a page with no
 * WebSocket chats over HTTP streaming. Screenshots go to
 * tests/artifacts/chat.png and chat-http.png.
 */

/// <reference lib="dom" />

import assert from "node:assert/strict";
import puppeteer, { type Browser, type Page } from "npm:puppeteer-core@24.8.2";
import { type MainProcess, startMain } from "./_process.ts";
import { startProxy, type TestProxy } from "@duplex-ws/testing";
import { tokensFor } from "../examples/streaming/app.ts";
import { member, reachedEngine } from "./_cluster.ts";
import { NO_REDIS, startRedis } from "./_redis.ts";

const STREAMING = new URL("../examples/streaming/main.ts", import.meta.url)
  .pathname;

const CHROMIUM = "/usr/bin/chromium";
/** The timeout puppeteer-core 24 waits for a frame swap after a disconnect. */
const FRAME_SWAP_TIMEOUT = 100;
const ARTIFACTS = new URL("./artifacts/", import.meta.url);

function hasChromium(): boolean {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
}

const HAS_CHROMIUM = hasChromium();
if (!HAS_CHROMIUM) {
  const message =
    `${CHROMIUM} not found: the browser test cannot run. Install it with scripts/setup.sh (Debian's chromium).`;
  if (Deno.env.get("CI")) {
    throw new Error(`${message} Under CI a skip is an error.`);
  }
  console.warn(`\n⚠️  SKIPPING the browser test: ${message}\n`);
}

/** Debian's Chromium, headless, with its profile in `profile`. */
function launch(profile: string): Promise<Browser> {
  return puppeteer.launch({
    executablePath: CHROMIUM,
    headless: true,
    protocolTimeout: 30_000,
    userDataDir: profile,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      // Two tabs run at once: keep the one in the background running.
      "--disable-background-timer-throttling",
      "--disable-renderer-backgrounding",
      "--disable-backgrounding-occluded-windows",
    ],
  });
}

/** Logs in through the page's form (the server sets the session cookie) and joins `room`. */
async function join(
  page: Page,
  url: string,
  name: string,
  room = "lobby",
): Promise<void> {
  await page.bringToFront();
  await page.goto(url);
  await page.type("#name", name);
  await page.$eval(
    "#room",
    (input, value) => (input as HTMLInputElement).value = value,
    room,
  );
  await page.click("#join button");
  await stateIs(page, "open");
}

/** A page in a browser context of its own: its own cookies, so its own login. */
async function newUserPage(browser: Browser): Promise<Page> {
  const context = await browser.createBrowserContext();
  return await context.newPage();
}

function stateIs(page: Page, state: string, timeout = 10_000) {
  return page.waitForFunction(
    (expected) => document.getElementById("state")?.dataset.state === expected,
    { timeout, polling: 50 },
    state,
  );
}

function countIs(page: Page, n: number) {
  return page.waitForFunction(
    (expected) =>
      document.getElementById("count")?.textContent === String(expected),
    { timeout: 10_000, polling: 50 },
    n,
  );
}

/** How many lines of the page read exactly `text`. */
function linesReading(page: Page, text: string): Promise<number> {
  return page.$$eval(
    "#messages li",
    (items, expected) =>
      items.filter((li) => li.textContent === expected).length,
    text,
  );
}

function shows(page: Page, text: string) {
  return page.waitForFunction(
    (expected) =>
      [...document.querySelectorAll("#messages li")].some((li) =>
        li.textContent === expected
      ),
    { timeout: 10_000, polling: 50 },
    text,
  );
}

Deno.test({
  name:
    "chat page in Chromium: pages log in and talk, see history and the count, show what was missed during a network drop once, recover from a server restart, a private room refuses a page without access, and a page without a bundler imports /duplex/client.js",
  ignore: !HAS_CHROMIUM,
  async fn() {
    // "staff" is private to alice.
    const env = {
      LOG_LEVEL: "warn",
      PRIVATE_ROOMS: "staff=alice",
      APP_ENV: "development",
    };
    let server: MainProcess | undefined = await startMain("listen", env);
    const port = server.port;
    const url = `http://127.0.0.1:${port}/`;
    const profile = await Deno.makeTempDir({ prefix: "duplex-chromium-" });
    let browser: Browser | undefined;
    let proxy: TestProxy | undefined;
    try {
      browser = await launch(profile);
      // Alice's traffic goes through a proxy that can cut her network.
      proxy = startProxy({ port });
      const alice = await newUserPage(browser);
      const bob = await newUserPage(browser);
      await alice.setViewport({ width: 900, height: 700 });
      await join(alice, `http://127.0.0.1:${proxy.port}/`, "alice");
      await countIs(alice, 1);
      await alice.type("#text", "hello from alice");
      await alice.click("#say button");
      await shows(alice, "alice: hello from alice");

      // Bob joins later and sees the room's recent history.
      await join(bob, url, "bob");
      await shows(bob, "alice: hello from alice");
      await countIs(bob, 2);
      await countIs(alice, 2);

      // Alice's network drops (no close frame) while Bob talks: when she is
      // back, her page shows every missed message once, in order.
      proxy.cut({ refuseFor: 1500 });
      await stateIs(alice, "reconnecting");
      await bob.bringToFront();
      const missed = ["one", "two", "three"];
      for (const text of missed) {
        await bob.type("#text", text);
        await bob.click("#say button");
        await shows(bob, `bob: ${text}`);
      }
      await alice.bringToFront();
      await stateIs(alice, "open", 15_000);
      for (const text of missed) await shows(alice, `bob: ${text}`);
      const lines = await alice.$$eval(
        "#messages li.message",
        (items) => items.map((li) => li.textContent),
      );
      assert.deepEqual(lines, [
        "alice: hello from alice",
        "bob: one",
        "bob: two",
        "bob: three",
      ]);

      // Restart the server on the same port: both pages reconnect and rejoin.
      await server.stop("SIGTERM");
      server = undefined;
      await stateIs(alice, "reconnecting");
      await stateIs(bob, "reconnecting");
      assert.match(
        await alice.$eval("#state", (el) => el.textContent ?? ""),
        /reconnecting \(1001\)/,
      );
      server = await startMain("listen", { ...env, PORT: String(port) });
      await alice.waitForSelector('#state[data-state="open"]', {
        timeout: 15_000,
      });
      await bob.waitForSelector('#state[data-state="open"]', {
        timeout: 15_000,
      });
      await countIs(alice, 2);
      await countIs(bob, 2);
      // One process keeps history in memory: after the restart it cannot
      // reach back, and the page says so instead of a silent gap.
      await shows(
        alice,
        "some messages from while you were away may be missing",
      );

      await bob.bringToFront();
      await bob.type("#text", "back again");
      await bob.click("#say button");
      await shows(alice, "bob: back again");
      assert.equal(await linesReading(alice, "bob: back again"), 1);
      assert.equal(await linesReading(alice, "bob: three"), 1);

      // A private room: alice chats there; carol's page is refused.
      const staff = await newUserPage(browser);
      await join(staff, url, "alice", "staff");
      await staff.type("#text", "for staff only");
      await staff.click("#say button");
      await shows(staff, "alice: for staff only");
      const carol = await newUserPage(browser);
      await join(carol, url, "carol", "staff");
      await carol.waitForFunction(
        () => document.body.dataset.refused === "FORBIDDEN",
        { timeout: 10_000, polling: 50 },
      );
      assert.match(
        await carol.$eval("#messages", (el) => el.textContent ?? ""),
        /could not join: FORBIDDEN: Not allowed to join "staff"/,
      );
      assert.equal(await linesReading(carol, "alice: for staff only"), 0);

      // A page with no bundler: it imports the typed client the app serves
      // as a plain ES module and makes a request with it.
      const plain = await newUserPage(browser);
      await plain.goto(`${url}healthz`);
      const reply = await plain.evaluate(async (base) => {
        const { DuplexClient } = await import(`${base}duplex/client.js`);
        const client = new DuplexClient({
          url: base.replace("http", "ws"),
        });
        try {
          return await client.request("echo", { from: "a plain module" });
        } finally {
          client.close();
        }
      }, url);
      assert.deepEqual(reply, { from: "a plain module" });

      // A page whose network lets no WebSocket through (here: the browser
      // has none) chats through HTTP streaming, with the same page.
      const blocked = await newUserPage(browser);
      await blocked.evaluateOnNewDocument(() => {
        Object.defineProperty(globalThis, "WebSocket", { value: undefined });
      });
      await blocked.setViewport({ width: 900, height: 700 });
      await join(blocked, url, "dora");
      assert.equal(
        await blocked.evaluate(() => document.body.dataset.transport),
        "sse",
      );
      await blocked.type("#text", "hello over HTTP");
      await blocked.click("#say button");
      await shows(blocked, "dora: hello over HTTP");
      await bob.bringToFront();
      await shows(bob, "dora: hello over HTTP");
      await bob.type("#text", "hi dora");
      await bob.click("#say button");
      await blocked.bringToFront();
      await shows(blocked, "bob: hi dora");
      await Deno.mkdir(ARTIFACTS, { recursive: true });
      const fallback = new URL("chat-http.png", ARTIFACTS)
        .pathname as `${string}.png`;
      await blocked.screenshot({ path: fallback });
      assert.ok(Deno.statSync(fallback).size > 1000);

      await Deno.mkdir(ARTIFACTS, { recursive: true });
      const path = new URL("chat.png", ARTIFACTS).pathname as `${string}.png`;
      await alice.bringToFront();
      await alice.screenshot({ path });
      assert.ok(Deno.statSync(path).size > 1000);
    } finally {
      await browser?.close();
      // puppeteer-core arms a timer when its connection closes (it waits for a
      // frame swap that will not come): let it run out rather than leak it.
      await new Promise((resolve) =>
        setTimeout(resolve, FRAME_SWAP_TIMEOUT + 50)
      );
      await proxy?.close();
      await server?.stop("SIGTERM");
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "streaming example in Chromium: a long answer completes across an offline/online toggle (and a cut connection), every token once, in order",
  ignore: !HAS_CHROMIUM,
  async fn() {
    const server = await startMain("listen", { LOG_LEVEL: "warn" }, [], {
      args: ["run", "--allow-net", "--allow-env", STREAMING],
    });
    const proxy = startProxy({ port: server.port });
    const profile = await Deno.makeTempDir({ prefix: "duplex-chromium-" });
    let browser: Browser | undefined;
    try {
      browser = await launch(profile);
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${proxy.port}/?tokens=150&every=20`);
      await page.waitForFunction(
        () => document.body.dataset.state === "open",
        { timeout: 10_000, polling: 20 },
      );
      await page.click("#ask button");
      const tokens = (n: number) =>
        page.waitForFunction(
          (at) => Number(document.body.dataset.count ?? 0) >= at,
          { timeout: 10_000, polling: 20 },
          n,
        );
      await tokens(40);
      // The connection drops (no close frame), then the browser is offline
      // for a while, so its reconnects fail, then online again.
      proxy.cut();
      await page.waitForFunction(
        () => document.body.dataset.state !== "open",
        { timeout: 10_000, polling: 20 },
      ).catch((e) => {
        throw new Error(`the page did not see the drop: ${e}`);
      });
      await page.setOfflineMode(true);
      await new Promise((resolve) => setTimeout(resolve, 700));
      await page.setOfflineMode(false);
      await page.waitForFunction(
        () => document.body.dataset.answer === "done",
        { timeout: 20_000, polling: 50 },
      );
      const answer = await page.$eval("#answer", (p) => p.textContent);
      assert.equal(
        answer,
        [...tokensFor("tell me about streams", 150)].join(""),
      );
      assert.equal(
        await page.$eval("#status", (p) => p.textContent),
        "150 tokens",
      );
      await Deno.mkdir(ARTIFACTS, { recursive: true });
      const path = new URL("streaming.png", ARTIFACTS)
        .pathname as `${string}.png`;
      await page.screenshot({ path });
      assert.ok(Deno.statSync(path).size > 1000);
    } finally {
      await browser?.close();
      await new Promise((resolve) =>
        setTimeout(resolve, FRAME_SWAP_TIMEOUT + 50)
      );
      await proxy.close();
      await server.stop("SIGTERM");
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "admin page in Chromium: two nodes on Redis live, and a member on the other node disconnected from the page stays closed",
  ignore: !HAS_CHROMIUM || NO_REDIS,
  async fn() {
    const redis = await startRedis();
    const env = {
      REDIS_URL: redis.url,
      ADMIN_USERS: "root",
      APP_ENV: "development",
      LOG_LEVEL: "warn",
    };
    const [a, b] = [
      await startMain("listen", env),
      await startMain("listen", env),
    ];
    const profile = await Deno.makeTempDir({ prefix: "duplex-chromium-" });
    let browser: Browser | undefined;
    const bob = await (async () => {
      for (const node of [a, b]) await reachedEngine(node);
      return await member(b.wsUrl, "bob");
    })();
    try {
      browser = await launch(profile);
      const page = await browser.newPage();
      await join(page, a.url + "/", "root");
      await page.goto(`${a.url}/admin`);
      // Both nodes, and bob's connection among those they hold.
      await page.waitForFunction(
        () =>
          document.body.dataset.nodes === "2" &&
          Number(document.body.dataset.connections) >= 1,
        { timeout: 10_000, polling: 50 },
      );
      const before = await page.evaluate(() =>
        Number(document.body.dataset.connections)
      );
      await page.type("#user", "bob");
      await page.click("#disconnect button");
      await page.waitForFunction(() => document.body.dataset.closed === "1", {
        timeout: 5_000,
        polling: 50,
      });
      const close = await bob.closed;
      assert.deepEqual([close.code, close.reason], [
        4500,
        "disconnected by root",
      ]);
      await page.waitForFunction(
        (expected) => Number(document.body.dataset.connections) <= expected,
        { timeout: 5_000, polling: 50 },
        before - 1,
      );
      await Deno.mkdir(ARTIFACTS, { recursive: true });
      const path = new URL("admin.png", ARTIFACTS).pathname as `${string}.png`;
      await page.screenshot({ path });
      assert.ok(Deno.statSync(path).size > 1000);
    } finally {
      await bob.close();
      await browser?.close();
      await new Promise((resolve) =>
        setTimeout(resolve, FRAME_SWAP_TIMEOUT + 50)
      );
      await a.stop("SIGTERM");
      await b.stop("SIGTERM");
      await redis.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    }
  },
});
