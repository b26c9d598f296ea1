/**
 * The second attack's findings that need real processes: the `./node`
 * transport under a descriptor limit (N3), a busy port at start, and what
 * `BACKPLANE_SECRET` signs on Redis and on a Redis Cluster (N4).
 */

import assert from "node:assert/strict";
import { delay, eventually, TestSocket, within } from "@duplex-ws/testing";
import { descriptors, healthy, silentConnections } from "./_attack.ts";
import { tokenFor } from "./_auth.ts";
import { freePort, mainArgs, startMain } from "./_process.ts";
import { buildFrame, Opcode, RawPeer, readClose, requestHead } from "./_raw.ts";
import { NO_REDIS, redisCli, startRedis } from "./_redis.ts";
import { startRedisCluster } from "./_redis_cluster.ts";

const LIMIT_256 = ["prlimit", "--nofile=256:256"];

Deno.test("N3 TRANSPORT=node under a descriptor limit: the lost accept loop is logged and listened again; /healthz comes back", async () => {
  const node = await startMain(
    "listen",
    {
      TRANSPORT: "node",
      LOG_LEVEL: "warn",
      HEADER_TIMEOUT: "2000",
    },
    [],
    { prefix: LIMIT_256 },
  );
  let silent: Deno.TcpConn[] = [];
  try {
    silent = await silentConnections(node.port, 300);
    assert.ok(!await healthy(node.url), "nothing new is accepted meanwhile");
    await delay(2500); // the server drops them at HEADER_TIMEOUT
    for (const conn of silent) conn.close();
    silent = [];
    await eventually(() => healthy(node.url), 10_000, "/healthz again");
    assert.match(node.output(), /listener lost/);
    assert.match(node.output(), /listener recovered/);
  } finally {
    for (const conn of silent) conn.close();
    assert.equal((await node.stop()).code, 0);
  }
});

Deno.test("N3 TRANSPORT=node: descriptors held past LISTEN_RECOVER_FOR make the process exit 1", async () => {
  const node = await startMain(
    "listen",
    {
      TRANSPORT: "node",
      LOG_LEVEL: "warn",
      HEADER_TIMEOUT: "60000",
      LISTEN_RECOVER_FOR: "1000",
    },
    [],
    { prefix: LIMIT_256 },
  );
  const silent = await silentConnections(node.port, 300);
  try {
    const status = await within(node.child.status, 20_000, "the exit");
    assert.equal(status.code, 1);
    assert.match(node.output(), /listener could not be recovered/);
  } finally {
    for (const conn of silent) conn.close();
    await node.stop();
  }
});

Deno.test("silent sockets on the Deno transport while clients keep arriving: one recovery window across the flaps, then exit 1", async () => {
  const node = await startMain(
    "listen",
    {
      LOG_LEVEL: "warn",
      LISTEN_RECOVER_FOR: "3000",
    },
    [],
    { prefix: LIMIT_256 },
  );
  const silent = await silentConnections(node.port, 300);
  let arriving = true;
  // Clients keep coming (each a try at /healthz): every one they get
  // through makes the listener look recovered for a moment.
  const clients = (async () => {
    while (arriving) {
      await healthy(node.url);
      await delay(100);
    }
  })();
  try {
    const started = performance.now();
    const status = await within(node.child.status, 20_000, "the exit");
    const took = performance.now() - started;
    assert.equal(status.code, 1);
    assert.match(node.output(), /listener could not be recovered/);
    assert.ok(took < 15_000, `exited after ${took.toFixed(0)} ms`);
  } finally {
    arriving = false;
    await clients;
    for (const conn of silent) conn.close();
    await node.stop();
  }
});

Deno.test("N3/N12 TRANSPORT=node: an upgrade with Host: [ is a 400 and its descriptor is freed; a slow body is cut at HEADER_TIMEOUT", async () => {
  const node = await startMain("listen", {
    TRANSPORT: "node",
    LOG_LEVEL: "warn",
    HEADER_TIMEOUT: "1000",
  });
  try {
    const before = descriptors(node.child.pid);
    for (let i = 0; i < 40; i++) {
      const peer = await RawPeer.connect(node.port);
      const response = await peer.request(requestHead("GET / HTTP/1.1", {
        Host: "[",
        Upgrade: "websocket",
        Connection: "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
      }));
      assert.equal(response.status, 400);
      assert.ok(await peer.readUntilEof(2000), "the server closes it");
      peer.close();
    }
    await eventually(
      () => descriptors(node.child.pid) <= before + 2,
      3000,
      "descriptors back",
    );
    assert.doesNotMatch(node.output(), /\n\s+at /, "no stack trace logged");
    // A body that trickles: one byte every 300 ms of a declared 1,000.
    const slow = await RawPeer.connect(node.port);
    await slow.write(requestHead("POST /login HTTP/1.1", {
      Host: "127.0.0.1",
      "Content-Type": "application/json",
      "Content-Length": "1000",
    }));
    const started = performance.now();
    const trickle = (async () => {
      try {
        for (let i = 0; i < 20; i++) {
          await slow.write("{");
          await delay(300);
        }
      } catch {
        // dropped
      }
    })();
    assert.ok(await slow.readUntilEof(5000), "dropped");
    const took = performance.now() - started;
    assert.ok(took < 2500, `dropped after ${took.toFixed(0)} ms`);
    slow.close();
    await trickle;
  } finally {
    assert.equal((await node.stop()).code, 0);
  }
});

Deno.test("a busy port: main.ts exits 1 naming the address, on both transports", async () => {
  const port = freePort();
  const holder = Deno.listen({ hostname: "127.0.0.1", port });
  try {
    for (const transport of ["deno", "node"]) {
      const output = await new Deno.Command(Deno.execPath(), {
        args: mainArgs("listen"),
        env: {
          PORT: String(port),
          HOSTNAME: "127.0.0.1",
          TRANSPORT: transport,
          LOG_LEVEL: "warn",
        },
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(15_000),
      }).output();
      const stderr = new TextDecoder().decode(output.stderr);
      assert.equal(output.code, 1, `${transport}: ${stderr}`);
      assert.match(
        stderr,
        new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: address in use`),
      );
    }
  } finally {
    holder.close();
  }
});

/** How a test reaches the engine's Redis: one server or a cluster. */
interface Engine {
  env: Record<string, string>;
  /** Runs a command on the node that serves `key`. */
  cli(key: string, ...args: string[]): Promise<string>;
  /** `PUBLISH` or `SPUBLISH`. */
  publish: string;
  close(): Promise<void>;
}

async function singleRedis(): Promise<Engine> {
  const redis = await startRedis();
  return {
    env: { REDIS_URL: redis.url },
    cli: (_key, ...args) => redisCli(redis, ...args),
    publish: "PUBLISH",
    close: () => redis.close(),
  };
}

async function redisCluster(): Promise<Engine> {
  const cluster = await startRedisCluster({ masters: 3, replicas: 0 });
  return {
    env: { REDIS_CLUSTER_URLS: cluster.urls.join(",") },
    cli: async (key, ...args) =>
      await cluster.cli(await cluster.masterOf(key), ...args),
    publish: "SPUBLISH",
    close: () => cluster.close(),
  };
}

type Push = { event?: string; data?: Record<string, unknown> };

/** The chat texts (and resets) a socket gets within `ms` of quiet. */
async function texts(socket: TestSocket, ms = 400): Promise<string[]> {
  const got: string[] = [];
  for (;;) {
    let push: Push;
    try {
      push = await socket.next<Push>(ms);
    } catch {
      return got;
    }
    if (push.event === "chat.message") got.push(String(push.data!.text));
    if (push.event === "stream.reset") got.push("(reset)");
  }
}

/** The N4 scenario on an engine (see the tests below). */
async function signedEngine(start: () => Promise<Engine>): Promise<void> {
  const engine = await start();
  const env = {
    ...engine.env,
    BACKPLANE_SECRET: "a shared secret for the cluster",
    LOG_LEVEL: "error",
  };
  const [a, b] = [
    await startMain("listen", env),
    await startMain("listen", env),
  ];
  const sockets: TestSocket[] = [];
  const member = async (url: string, user: string) => {
    const socket = await TestSocket.open(`${url}/`, {
      token: await tokenFor(user),
    });
    sockets.push(socket);
    await socket.next(); // welcome
    return socket;
  };
  try {
    const ada = await member(a.wsUrl, "ada");
    const bob = await member(b.wsUrl, "bob");
    await ada.request("chat.join", { room: "lobby" });
    await bob.request("chat.join", { room: "lobby" });
    await texts(ada);
    await bob.request("chat.say", { room: "lobby", text: "one" });
    assert.deepEqual(await texts(ada), ["one"]);
    // The signed frame of offset 1, as it went over the channel.
    const key = (kind: string) => `duplex:{lobby}:${kind}`;
    const epoch = (await engine.cli(key("h"), "HGET", key("h"), "e"))
      .trim();
    const seal = (await engine.cli(key("g"), "HGET", key("g"), "1")).trim();
    const head = (await engine.cli(key("s"), "XRANGE", key("s"), "0-1", "0-1"))
      .split("\n").find((line) => line.startsWith("{"))!;
    const [node, signature] = [seal.slice(0, 36), seal.slice(37)];
    const frame = (offset: number) =>
      `${node}\n${signature}\n@${offset}:${epoch}\n${head}`;
    await engine.cli(key("t"), engine.publish, key("t"), frame(1));
    await engine.cli(key("t"), engine.publish, key("t"), frame(2));
    await engine.cli(key("t"), engine.publish, key("t"), frame(1e14));
    assert.deepEqual(
      await texts(ada),
      [],
      "replays and renumberings dropped",
    );
    await bob.request("chat.say", { room: "lobby", text: "two" });
    assert.deepEqual(
      await texts(ada),
      ["two"],
      "the next real one arrives",
    );
    // History written into Redis by someone else: never replayed.
    await engine.cli(key("h"), "HINCRBY", key("h"), "s", "1");
    await engine.cli(
      key("s"),
      "XADD",
      key("s"),
      "0-3",
      "h",
      '{"event":"chat.message","data":{"room":"lobby","from":"mallory","text":"injected"}}',
      "t",
      String(Date.now()),
    );
    const cy = await member(a.wsUrl, "cy");
    cy.json({
      event: "chat.join",
      data: { room: "lobby", last: 10 },
      id: 9,
    });
    const seen = await texts(cy);
    assert.ok(!seen.includes("injected"), seen.join());
    assert.deepEqual(seen.filter((t) => t !== "(reset)"), ["one", "two"]);
    await bob.request("chat.say", { room: "lobby", text: "three" });
    const after = await texts(ada, 1500);
    assert.ok(!after.includes("injected"), after.join());
    assert.equal(after.at(-1), "three");
  } finally {
    await Promise.all(sockets.map((s) => s.close()));
    await a.stop();
    await b.stop();
    await engine.close();
  }
}

Deno.test({
  name:
    "N4 Redis with BACKPLANE_SECRET: a replayed or renumbered signed frame is dropped, history written by others never reaches a joiner",
  ignore: NO_REDIS,
  fn: () => signedEngine(singleRedis),
});

Deno.test({
  name:
    "N4 Redis Cluster with BACKPLANE_SECRET: a replayed or renumbered signed frame is dropped, history written by others never reaches a joiner",
  ignore: NO_REDIS,
  fn: () => signedEngine(redisCluster),
});

Deno.test("TRANSPORT=node's heartbeat pings only a silent socket, and closes it 1001 when it stays silent", async () => {
  const node = await startMain("listen", {
    TRANSPORT: "node",
    LOG_LEVEL: "warn",
    IDLE_TIMEOUT: "1",
  });
  const [busy, quiet] = [
    await RawPeer.connect(node.port),
    await RawPeer.connect(node.port),
  ];
  try {
    await busy.handshake(node.port);
    await quiet.handshake(node.port);
    const opcodes: number[] = [];
    const echo = JSON.stringify({ event: "echo", data: "x", id: 1 });
    for (let i = 0; i < 12; i++) {
      await busy.write(buildFrame(Opcode.TEXT, echo));
      const frame = await busy.readFrame(1000);
      if (frame) opcodes.push(frame.opcode);
      await delay(200);
    }
    assert.ok(opcodes.every((op) => op === Opcode.TEXT), `${opcodes}`);
    const seen: number[] = [];
    for (;;) {
      const frame = await quiet.readFrame(3000);
      if (!frame) break;
      seen.push(frame.opcode);
      if (frame.opcode === Opcode.CLOSE) {
        assert.equal(readClose(frame).code, 1001);
        break;
      }
    }
    assert.deepEqual(seen.slice(-2), [Opcode.PING, Opcode.CLOSE]);
  } finally {
    busy.close();
    quiet.close();
    assert.equal((await node.stop()).code, 0);
  }
});
