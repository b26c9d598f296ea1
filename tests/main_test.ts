/**
 * The real entry in a child process, both ways it runs: `deno run main.ts
 * --listen` (what `deno task start` and `deno task dev` run) and `deno serve
 * main.ts` (what `--parallel` and Deno Deploy run).
 */

import assert from "node:assert/strict";
import { BIN_DENO, mainArgs, startMain } from "./_process.ts";
import { TestSocket } from "@duplex-ws/testing";
import { tokenFor } from "./_auth.ts";

for (const mode of ["listen", "serve"] as const) {
  Deno.test(`main.ts (${mode}): one server on PORT, the example app answers`, async () => {
    const served = await startMain(mode, {});
    try {
      const url = `http://127.0.0.1:${served.port}/`;
      const listening = served.output().match(/Listening on/g) ?? [];
      assert.equal(listening.length, 1, served.output());
      assert.ok(served.output().includes(url), served.output());
      assert.doesNotMatch(served.output(), /did you mean/);
      const page = await fetch(url);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /duplex/);
      const health = await fetch(`${url}healthz`);
      assert.deepEqual(await health.json(), {
        status: "ok",
        connections: 0,
        lingering: 0,
        backplane: {
          kind: "local",
          state: "ok",
          history: { topics: 0, bytes: 0 },
        },
      });
      const socket = await TestSocket.open(
        `ws://127.0.0.1:${served.port}/`,
        { token: await tokenFor("ada") },
      );
      const welcome = await socket.next<
        { event: string; data: { user: string; events: string[] } }
      >();
      assert.equal(welcome.event, "welcome");
      assert.equal(welcome.data.user, "ada");
      assert.deepEqual(welcome.data.events, [
        "echo",
        "whoami",
        "clock.sync",
        "chat.join",
        "chat.say",
        "chat.leave",
        "chat.who",
      ]);
      assert.deepEqual(await socket.request("echo", [1, 2]), {
        id: 1,
        data: [1, 2],
      });
      await socket.close();
    } finally {
      const status = await served.stop();
      assert.equal(status.code, 0);
    }
  });
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`main.ts --listen drains on ${signal}: clients get 1001, onClose runs, exit 0`, async () => {
    const served = await startMain("listen", { DRAIN_TIMEOUT: "2000" });
    const sockets = await Promise.all(
      [1, 2, 3].map(() => TestSocket.open(`ws://127.0.0.1:${served.port}/`)),
    );
    for (const socket of sockets) await socket.next(); // welcome
    const status = await served.stop(signal);
    assert.equal(status.code, 0, served.output());
    for (const socket of sockets) {
      const closed = await socket.waitClosed();
      assert.deepEqual(closed, {
        code: 1001,
        reason: "server shutting down",
        wasClean: true,
      });
    }
    assert.equal(
      (served.output().match(/"msg":"connection closed"/g) ?? []).length,
      3,
    );
  });
}

for (const mode of ["listen", "task"] as const) {
  Deno.test(`SIGTERM to the ./bin/deno process itself (${mode}), as a supervisor sends it: the server drains and exits 0`, async () => {
    const served = await startMain(mode, {}, [], { deno: BIN_DENO });
    const socket = await TestSocket.open(`ws://127.0.0.1:${served.port}/`);
    await socket.next(); // welcome
    // The wrapper hands its process over to Deno: this signal reaches the
    // server, not npx (which would leave the server serving, orphaned).
    const status = await served.stop("SIGTERM");
    assert.equal(status.code, 0, served.output());
    assert.equal((await socket.waitClosed()).code, 1001);
    await assert.rejects(() =>
      fetch(`${served.url}/healthz`, { signal: AbortSignal.timeout(2000) })
    );
  });
}

Deno.test("deno serve main.ts on SIGTERM: the runtime's 1001 reaches clients, onClose runs, exit 0", async () => {
  const served = await startMain("serve", {});
  const sockets = await Promise.all(
    [1, 2].map(() => TestSocket.open(`ws://127.0.0.1:${served.port}/`)),
  );
  for (const socket of sockets) await socket.next(); // welcome
  const status = await served.stop("SIGTERM");
  assert.equal(status.code, 0, served.output());
  for (const socket of sockets) {
    const closed = await socket.waitClosed();
    assert.equal(closed.code, 1001);
  }
  assert.equal(
    (served.output().match(/"msg":"connection closed"/g) ?? []).length,
    2,
  );
});

Deno.test("deno serve --parallel main.ts serves from every worker", async () => {
  const served = await startMain("serve", {}, ["--parallel"]);
  try {
    assert.match(served.output(), /with \d+ threads/);
    const sockets = await Promise.all(
      [1, 2, 3, 4].map(() => TestSocket.open(`ws://127.0.0.1:${served.port}/`)),
    );
    for (const socket of sockets) {
      assert.equal((await socket.next()).event, "welcome");
      await socket.close();
    }
  } finally {
    await served.stop("SIGKILL");
  }
});

Deno.test("main.ts serves the server API with API_KEY (in both modes), and not without it", async () => {
  const key = "the suite's API key, long enough";
  const info = (port: number, headers: Record<string, string> = {}) =>
    fetch(`http://127.0.0.1:${port}/api/info`, {
      method: "POST",
      headers,
      body: "{}",
    });
  for (const mode of ["listen", "serve"] as const) {
    const served = await startMain(mode, { API_KEY: key });
    try {
      const ok = await info(served.port, { "x-api-key": key });
      assert.equal(ok.status, 200, mode);
      assert.equal((await ok.json()).result.nodes.length, 1);
      const refused = await info(served.port);
      assert.equal(refused.status, 401, mode);
      assert.equal((await refused.json()).error.code, "UNAUTHORIZED");
    } finally {
      await served.stop("SIGKILL");
    }
  }
  const off = await startMain("listen", {});
  try {
    const response = await info(off.port, { "x-api-key": key });
    await response.body?.cancel();
    assert.equal(response.status, 404);
  } finally {
    await off.stop("SIGKILL");
  }
});

Deno.test("main.ts stops at start on invalid configuration, naming the variable", async () => {
  for (const mode of ["listen", "serve"] as const) {
    for (
      const [name, value, extra] of [
        ["PORT", "http"],
        ["MAX_CONNECTIONS", "0"],
        ["LOG_LEVEL", "loud"],
        ["AUTH_SECRET", "too short"],
        // Production without a secret: refused, never a random key.
        ["AUTH_SECRET", "", { APP_ENV: "production" }],
        ["PRIVATE_ROOMS", "st aff=alice"],
      ] as [string, string, Record<string, string>?][]
    ) {
      const output = await new Deno.Command(Deno.execPath(), {
        args: mainArgs(mode),
        env: { [name]: value, ...extra },
        stdout: "piped",
        stderr: "piped",
        // A process that wrongly starts serving is killed, not waited for.
        signal: AbortSignal.timeout(15_000),
      }).output();
      const stderr = new TextDecoder().decode(output.stderr);
      assert.equal(output.code, 1, stderr);
      assert.match(stderr, new RegExp(`Invalid configuration: ${name}`));
      assert.doesNotMatch(stderr, /Listening on/);
    }
  }
});

Deno.test("main.ts --listen exits 0 on SIGTERM while a client is still sending a request body", async () => {
  const served = await startMain("listen", {});
  const peer = await Deno.connect({ hostname: "127.0.0.1", port: served.port });
  try {
    // 1,000 bytes declared, ten sent: Deno's graceful shutdown waits for the rest.
    await peer.write(new TextEncoder().encode(
      "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
        "Content-Length: 1000\r\n\r\n0123456789",
    ));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = Date.now();
    const status = await served.stop("SIGTERM");
    assert.equal(status.code, 0, served.output());
    assert.ok(Date.now() - started < 8_000, "exited late");
    assert.doesNotMatch(served.output(), /BadResource/);
  } finally {
    peer.close();
  }
});

Deno.test("main.ts --listen exits promptly on SIGTERM even after a peer vanished with data unsent", async () => {
  const served = await startMain("listen", { MAX_BUFFERED_AMOUNT: "0" });
  const talker = await TestSocket.open(`${served.wsUrl}/`, {
    token: await tokenFor("talker"),
  });
  await talker.next(); // welcome
  await talker.request("chat.join", { room: "r" });
  // A raw peer joins, never reads, and vanishes with the server's data unsent.
  const peer = await Deno.connect({ hostname: "127.0.0.1", port: served.port });
  await peer.write(new TextEncoder().encode(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  ));
  await peer.read(new Uint8Array(512));
  const join = JSON.stringify({ event: "chat.join", data: { room: "r" } });
  const masked = new Uint8Array([
    0x81,
    0x80 | join.length,
    0,
    0,
    0,
    0,
    ...new TextEncoder().encode(join),
  ]);
  await peer.write(masked);
  for (let i = 0; i < 300; i++) {
    talker.json({
      event: "chat.say",
      data: { room: "r", text: "x".repeat(1900) },
    });
  }
  await talker.request("echo", "flushed");
  peer.close();
  await talker.close();
  const started = Date.now();
  const status = await served.stop("SIGTERM");
  assert.equal(status.code, 0);
  assert.ok(
    Date.now() - started < 4000,
    `exit took ${Date.now() - started} ms`,
  );
});

Deno.test("deno serve's address from PORT and HOSTNAME: the one not set takes listen's default", async () => {
  const { serveAddress } = await import("../routes/config.ts");
  assert.equal(serveAddress({}), undefined);
  // Only PORT (Deploy and most hosts set no HOSTNAME): was "tcp:undefined:…".
  assert.equal(serveAddress({ port: 9000 }), "tcp:0.0.0.0:9000");
  assert.equal(serveAddress({ hostname: "127.0.0.1" }), "tcp:127.0.0.1:8000");
  assert.equal(
    serveAddress({ port: 9000, hostname: "127.0.0.1" }),
    "tcp:127.0.0.1:9000",
  );
  assert.equal(serveAddress({ port: 9000, hostname: "::1" }), "tcp:[::1]:9000");
});
