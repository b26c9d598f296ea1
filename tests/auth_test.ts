/**
 * Identity for real: signed tokens at the handshake (every way of getting
 * one wrong is a 401 counted by reason, never a guest), the three token
 * transports, JWKS and EdDSA keys, expiry with an in-band refresh, a
 * refresh for another subject, re-authentication on demand, private rooms
 * and what a refresh takes away, per-subject caps, and the example app's
 * login routes.
 */

import assert from "node:assert/strict";
import {
  AuthFailure,
  createServer,
  EventRouter,
  type Logger,
  silentLogger,
} from "@duplex-ws/duplex";
import { issueToken, jwtAuth } from "@duplex-ws/jwt";
import { delay, eventually, startServer, TestSocket } from "@duplex-ws/testing";
import { z } from "zod";
import { type AppOptions, createApp } from "../routes/app.ts";
import { readAppEnv } from "../routes/config.ts";
import { TEST_IDENTITY, TEST_SECRET, tokenFor } from "./_auth.ts";
import { handshakeHeaders, RawPeer, requestHead } from "./_raw.ts";
import { hashPassword } from "../routes/users.ts";

/** Ada's password hash for `USERS` (few iterations: a test, not a vault). */
const ADA_HASH = await hashPassword("correct horse", 1000);

type Message = {
  event?: string;
  id?: number;
  data?: Record<string, unknown>;
  error?: { code: string; message: string };
};

/** A logger that keeps every line, to check what is (not) logged. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const write = (message: string, fields?: Record<string, unknown>) =>
    lines.push(JSON.stringify({ message, ...fields }));
  return { lines, debug: write, info: write, warn: write, error: write };
}

function app(options: AppOptions = {}) {
  return createApp({
    identity: TEST_IDENTITY,
    logger: silentLogger,
    ...options,
  });
}

/** A handshake over raw TCP with `headers`; the status and the body. */
async function handshake(
  port: number,
  headers: Record<string, string>,
  path = "/",
): Promise<{ status: number; body: string; headers: Headers }> {
  const peer = await RawPeer.connect(port);
  try {
    const response = await peer.request(
      requestHead(`GET ${path} HTTP/1.1`, handshakeHeaders(port, headers)),
    );
    const body = response.text.split("\r\n\r\n").slice(1).join("\r\n\r\n");
    return { status: response.status, body, headers: response.headers };
  } finally {
    peer.close();
  }
}

/** `alg: none`, unsigned. */
function unsignedToken(claims: Record<string, unknown>): string {
  const part = (value: unknown) =>
    btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-")
      .replace(/\//g, "_");
  return `${part({ alg: "none", typ: "JWT" })}.${part(claims)}.`;
}

const now = () => Math.floor(Date.now() / 1000);

Deno.test("a bad token is refused at the handshake with 401 and a JSON reason, counted by reason, never logged, never a guest", async () => {
  const logger = recordingLogger();
  const server = startServer(app({ logger }));
  const forged = await issueToken({ sub: "ada" }, {
    key: "another secret of at least thirty-two bytes",
    expiresIn: 60,
  });
  const cases: [string, string][] = [
    ["signature", forged],
    ["expired", await tokenFor("ada", {}, -60)],
    ["not_yet_valid", await tokenFor("ada", { nbf: now() + 3600 })],
    ["audience", await tokenFor("ada", { aud: "someone-else" })],
    ["algorithm", unsignedToken({ sub: "ada", exp: now() + 60 })],
    [
      "algorithm",
      await issueToken({ sub: "ada" }, {
        key: TEST_SECRET,
        algorithm: "HS512",
        expiresIn: 60,
      }),
    ],
    ["malformed", "not-a-jwt"],
    ["claims", await tokenFor("guest-fake")],
  ];
  try {
    for (const [reason, token] of cases) {
      for (
        const headers of [
          { authorization: `Bearer ${token}` },
          { "sec-websocket-protocol": `duplex, duplex.bearer.${token}` },
        ] as Record<string, string>[]
      ) {
        const refused = await handshake(server.port, headers);
        assert.equal(
          refused.status,
          401,
          `${reason} via ${Object.keys(headers)}`,
        );
        const body = JSON.parse(refused.body);
        assert.equal(body.error.code, "UNAUTHORIZED");
        assert.equal(body.error.reason, reason, token);
        assert.match(
          refused.headers.get("www-authenticate") ?? "",
          /invalid_token/,
        );
      }
    }
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    for (
      const reason of [
        "signature",
        "expired",
        "not_yet_valid",
        "audience",
        "algorithm",
        "malformed",
        "claims",
      ]
    ) {
      assert.match(
        metrics,
        new RegExp(
          `duplex_handshakes_total\\{result="refused",reason="token_${reason}"\\} [1-9]`,
        ),
        reason,
      );
    }
    for (const [, token] of cases) {
      if (token.length < 20) continue;
      assert.ok(
        !logger.lines.some((line) => line.includes(token)),
        "a token was logged",
      );
      assert.ok(!metrics.includes(token), "a token is in the metrics");
    }
  } finally {
    await server.close();
  }
});

Deno.test("a good token works from each transport; none at all is a guest; ?user= is not an identity", async (t) => {
  const server = startServer(app());
  const token = await tokenFor("ada");
  const whoami = async (socket: TestSocket) => {
    const reply = await socket.request("whoami");
    await socket.close();
    return reply.data as { user: string; protocol: string };
  };
  try {
    await t.step(
      "Sec-WebSocket-Protocol: answered with duplex, never the token",
      async () => {
        const socket = await TestSocket.open(server.wsUrl, { token });
        assert.deepEqual(
          { ...(await whoami(socket)), id: undefined },
          { user: "ada", protocol: "duplex", id: undefined },
        );
      },
    );
    await t.step("Authorization: Bearer", async () => {
      const socket = await TestSocket.open(server.wsUrl, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal((await whoami(socket)).user, "ada");
    });
    await t.step(
      "the example's socket reads no cookie: a page elsewhere cannot ride it",
      async () => {
        const socket = await TestSocket.open(server.wsUrl, {
          headers: { cookie: `a=1; duplex_session=${token}` },
        });
        assert.match((await whoami(socket)).user, /^guest-/);
      },
    );
    await t.step(
      "jwtAuth from a cookie, where an app asks for it",
      async () => {
        const cookies = startServer(createServer({
          logger: silentLogger,
          router: new EventRouter<string>().on(
            "whoami",
            z.undefined(),
            (_data, ctx) => ({ user: ctx.state }),
          ),
          auth: jwtAuth<string>({
            algorithms: ["HS256"],
            key: TEST_SECRET,
            from: [{ cookie: "duplex_session" }],
            state: (claims) => claims.sub,
          }),
        }));
        try {
          const socket = await TestSocket.open(cookies.wsUrl, {
            headers: { cookie: `a=1; duplex_session=${token}` },
          });
          assert.equal((await whoami(socket)).user, "ada");
          const refused = await handshake(cookies.port, {
            cookie: "duplex_session=%E0%A4%A",
          });
          assert.equal(refused.status, 401, "not valid percent-encoding");
        } finally {
          await cookies.close();
        }
      },
    );
    await t.step("no token: a guest; ?user= changes nothing", async () => {
      const socket = await TestSocket.open(`${server.wsUrl}/?user=admin`);
      assert.match((await whoami(socket)).user, /^guest-[a-z0-9]{6}$/);
    });
  } finally {
    await server.close();
  }
});

Deno.test("jwtAuth with a JWKS URL (ES256) and with an EdDSA public key; keys that cannot be fetched are a 503, not a 401", async () => {
  const es = await crypto.subtle.generateKey(
    { name: "ECDSA", namedCurve: "P-256" },
    true,
    ["sign", "verify"],
  );
  const publicJwk = {
    ...(await crypto.subtle.exportKey("jwk", es.publicKey)),
    kid: "k1",
    alg: "ES256",
    use: "sig",
  };
  const jwks = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => Response.json({ keys: [publicJwk] }),
  );
  const ed = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const router = new EventRouter<{ user: string }>()
    .on("whoami", z.undefined(), (_data, ctx) => ctx.state.user);
  const servers = [
    startServer(createServer({
      router,
      logger: silentLogger,
      auth: jwtAuth({
        algorithms: ["ES256"],
        jwksUrl: `http://127.0.0.1:${jwks.addr.port}/jwks.json`,
        issuer: "https://issuer.test/",
        audience: "chat",
        state: (claims) => ({ user: claims.sub }),
      }),
    })),
    startServer(createServer({
      router,
      logger: silentLogger,
      auth: jwtAuth({
        algorithms: ["EdDSA"],
        key: await crypto.subtle.exportKey("jwk", ed.publicKey),
        state: (claims) => ({ user: claims.sub }),
      }),
    })),
  ];
  try {
    const esToken = await issueToken({ sub: "ada" }, {
      key: es.privateKey,
      algorithm: "ES256",
      keyId: "k1",
      issuer: "https://issuer.test/",
      audience: "chat",
      expiresIn: 60,
    });
    const edToken = await issueToken({ sub: "bob" }, {
      key: ed.privateKey,
      algorithm: "EdDSA",
      expiresIn: 60,
    });
    for (
      const [server, token, user] of [
        [servers[0], esToken, "ada"],
        [servers[1], edToken, "bob"],
      ] as const
    ) {
      const socket = await TestSocket.open(server.wsUrl, { token });
      assert.equal((await socket.request("whoami")).data, user);
      await socket.close();
    }
    // The classic confusion: an HS256 token "signed" with the public key.
    const confused = await issueToken({ sub: "mallory" }, {
      key: JSON.stringify(publicJwk),
      algorithm: "HS256",
      expiresIn: 60,
    });
    const refused = await handshake(servers[0].port, {
      authorization: `Bearer ${confused}`,
    });
    assert.equal(refused.status, 401);
    assert.equal(JSON.parse(refused.body).error.reason, "algorithm");
    // Another issuer; no token at all (no guests here).
    const otherIssuer = await issueToken({ sub: "ada" }, {
      key: es.privateKey,
      algorithm: "ES256",
      keyId: "k1",
      issuer: "https://elsewhere.test/",
      audience: "chat",
      expiresIn: 60,
    });
    assert.equal(
      JSON.parse(
        (await handshake(servers[0].port, {
          authorization: `Bearer ${otherIssuer}`,
        })).body,
      ).error.reason,
      "issuer",
    );
    assert.equal(
      JSON.parse((await handshake(servers[0].port, {})).body).error.reason,
      "missing",
    );
    // The key set cannot be fetched: a server problem, 503 with Retry-After.
    const dead = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const deadPort = (dead.addr as Deno.NetAddr).port;
    dead.close();
    servers.push(startServer(createServer({
      router,
      logger: silentLogger,
      auth: jwtAuth({
        algorithms: ["ES256"],
        jwksUrl: `http://127.0.0.1:${deadPort}/jwks.json`,
        state: (claims) => ({ user: claims.sub }),
      }),
    })));
    const unavailable = await handshake(servers[2].port, {
      authorization: `Bearer ${esToken}`,
    });
    assert.equal(unavailable.status, 503);
    assert.equal(unavailable.headers.get("retry-after"), "5");
  } finally {
    for (const server of servers) await server.close();
    await jwks.shutdown().catch(() => {});
  }
});

Deno.test("expiry on a live connection: auth.refresh, then 4001 without a fresh token; a refresh keeps the connection; another subject is 4503", async (t) => {
  const server = startServer(app({ refreshGrace: 500 }));
  try {
    await t.step("no refresh: asked, then closed with 4001", async () => {
      const socket = await TestSocket.open(server.wsUrl, {
        token: await tokenFor("ada", {}, 1),
      });
      await socket.next(); // welcome
      const asked = await socket.next<Message>(4000);
      assert.equal(asked.event, "auth.refresh");
      assert.equal(asked.data!.reason, "expired");
      assert.ok((asked.data!.deadline as number) > Date.now());
      const closed = await socket.waitClosed(3000);
      assert.equal(closed.code, 4001);
      assert.equal(closed.reason, "token expired");
    });
    await t.step("a refresh in time: same connection, same rooms", async () => {
      const socket = await TestSocket.open(server.wsUrl, {
        token: await tokenFor("ada", {}, 1),
      });
      const welcome = await socket.next<Message>();
      await socket.request("chat.join", { room: "kept" });
      const asked = await nextEvent(socket, "auth.refresh", 4000);
      assert.equal(asked.data!.reason, "expired");
      const refreshed = await socket.request("auth.refresh", {
        token: await tokenFor("ada", {}, 60),
      });
      assert.equal(refreshed.error, undefined);
      assert.ok(
        (refreshed.data as { expiresAt: number }).expiresAt > Date.now(),
      );
      await delay(800); // past the old deadline
      const me = await socket.request("whoami");
      assert.equal((me.data as { id: string }).id, welcome.data!.id);
      const said = await socket.request("chat.say", {
        room: "kept",
        text: "hi",
      });
      assert.equal(said.error, undefined);
      await socket.close();
    });
    await t.step(
      "a refused token: UNAUTHORIZED, the deadline stands",
      async () => {
        const socket = await TestSocket.open(server.wsUrl, {
          token: await tokenFor("ada", {}, 1),
        });
        await nextEvent(socket, "auth.refresh", 4000);
        const refused = await socket.request("auth.refresh", {
          token: await tokenFor("ada", {}, -10),
        });
        assert.equal((refused.error as { code: string }).code, "UNAUTHORIZED");
        assert.equal((await socket.waitClosed(3000)).code, 4001);
      },
    );
    await t.step("another subject: FORBIDDEN, then 4503", async () => {
      const socket = await TestSocket.open(server.wsUrl, {
        token: await tokenFor("ada", {}, 60),
      });
      const refused = await socket.request("auth.refresh", {
        token: await tokenFor("mallory", {}, 60),
      });
      assert.equal((refused.error as { code: string }).code, "FORBIDDEN");
      const closed = await socket.waitClosed(3000);
      assert.deepEqual([closed.code, closed.reason], [4503, "forbidden"]);
    });
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(metrics, /duplex_auth_refreshes_total\{result="ok"\} 1/);
    assert.match(
      metrics,
      /duplex_auth_refreshes_total\{result="subject_changed"\} 1/,
    );
    assert.match(
      metrics,
      /duplex_auth_refreshes_total\{result="token_expired"\} 1/,
    );
  } finally {
    await server.close();
  }
});

/** The next push of `event`, skipping others. */
async function nextEvent(
  socket: TestSocket,
  event: string,
  ms: number,
): Promise<Message> {
  const until = Date.now() + ms;
  for (;;) {
    const message = await socket.next<Message>(Math.max(1, until - Date.now()));
    if (message.event === event) return message;
  }
}

Deno.test("the server asks for re-authentication on demand, for one subject", async () => {
  const duplex = app({ refreshGrace: 300 });
  const server = startServer(duplex);
  try {
    const ada = await TestSocket.open(server.wsUrl, {
      token: await tokenFor("ada"),
    });
    const bob = await TestSocket.open(server.wsUrl, {
      token: await tokenFor("bob"),
    });
    const guest = await TestSocket.open(server.wsUrl);
    for (const socket of [ada, bob, guest]) await socket.next();
    assert.equal(duplex.reauthenticate("ada"), 1);
    const asked = await nextEvent(ada, "auth.refresh", 2000);
    assert.equal(asked.data!.reason, "requested");
    assert.equal((await ada.waitClosed(2000)).code, 4001);
    // Bob was not asked, and stays.
    assert.equal((await bob.request("whoami")).error, undefined);
    await bob.close();
    await guest.close();
  } finally {
    await server.close();
  }
});

Deno.test("private rooms: a stranger's join is FORBIDDEN; a refresh that drops the room removes the member and says why", async () => {
  const server = startServer(app({
    presenceGrace: 0,
    identity: {
      ...TEST_IDENTITY,
      privateRooms: new Map([["staff", ["alice"]]]),
    },
  }));
  const sockets: TestSocket[] = [];
  const open = async (token?: string) => {
    const socket = await TestSocket.open(server.wsUrl, { token });
    await socket.next();
    sockets.push(socket);
    return socket;
  };
  try {
    const alice = await open(await tokenFor("alice"));
    const bob = await open(await tokenFor("bob", { rooms: ["staff"] }));
    const carol = await open(await tokenFor("carol"));
    const guest = await open();
    assert.equal(
      (await alice.request("chat.join", { room: "staff" })).error,
      undefined,
    );
    assert.equal(
      (await bob.request("chat.join", { room: "staff" })).error,
      undefined,
    );
    for (const stranger of [carol, guest]) {
      const refused = await stranger.request("chat.join", { room: "staff" });
      const error = refused.error as { code: string; message: string };
      assert.equal(error.code, "FORBIDDEN");
      assert.match(error.message, /"staff"/);
    }
    // Public rooms are open to all, guests included.
    assert.equal(
      (await guest.request("chat.join", { room: "lobby" })).error,
      undefined,
    );
    // Bob's new token no longer names the room.
    const refreshed = await bob.request("auth.refresh", {
      token: await tokenFor("bob", { rooms: [] }),
    });
    assert.equal(refreshed.error, undefined);
    const left = await nextEvent(bob, "topic.left", 2000);
    assert.deepEqual(
      { topic: left.data!.topic, code: left.data!.code },
      { topic: "staff", code: "FORBIDDEN" },
    );
    const said = await bob.request("chat.say", {
      room: "staff",
      text: "still here?",
    });
    assert.equal((said.error as { code: string }).code, "NOT_A_MEMBER");
    await eventually(
      async () => {
        const who = await alice.request("chat.who", { room: "staff" });
        return (who.data as { count: number }).count === 1;
      },
      3000,
      "bob gone from staff",
    );
  } finally {
    for (const socket of sockets) await socket.close();
    await server.close();
  }
});

Deno.test("per-subject caps hold under a burst, and other subjects still connect", async () => {
  const server = startServer(app({
    maxConnectionsPerSubject: 5,
    handshakesPerSubjectPerSecond: 1000,
    maxConnectionsPerIp: 0,
    handshakesPerIpPerSecond: 0,
  }));
  const opened: TestSocket[] = [];
  try {
    const token = await tokenFor("ada");
    const attempts = await Promise.allSettled(
      Array.from(
        { length: 30 },
        () => TestSocket.open(server.wsUrl, { token }),
      ),
    );
    for (const attempt of attempts) {
      if (attempt.status === "fulfilled") opened.push(attempt.value);
    }
    assert.equal(opened.length, 5);
    const refused = await handshake(server.port, {
      authorization: `Bearer ${token}`,
    });
    assert.equal(refused.status, 429);
    const bob = await TestSocket.open(server.wsUrl, {
      token: await tokenFor("bob"),
    });
    opened.push(bob);
    assert.equal((await bob.request("whoami")).error, undefined);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.match(
      metrics,
      /reason="too_many_connections_per_subject"\} (2[5-9]|[3-9]\d)/,
    );
  } finally {
    for (const socket of opened) await socket.close();
    await server.close();
  }
});

Deno.test("per-subject handshake rate: a reconnect storm of one account is slowed, others pass", async () => {
  const server = startServer(app({
    handshakesPerSubjectPerSecond: 2,
    maxConnectionsPerIp: 0,
    handshakesPerIpPerSecond: 0,
  }));
  try {
    const token = await tokenFor("ada");
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      statuses.push(
        (await handshake(server.port, { authorization: `Bearer ${token}` }))
          .status,
      );
    }
    assert.deepEqual(statuses.filter((s) => s === 101).length, 4);
    assert.ok(statuses.slice(4).every((s) => s === 429), `${statuses}`);
    const bob = await handshake(server.port, {
      authorization: `Bearer ${await tokenFor("bob")}`,
    });
    assert.equal(bob.status, 101);
  } finally {
    await server.close();
  }
});

/** POSTs JSON to the example app; the response. */
function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

/** The status of a response, its body discarded. */
async function statusOf(response: Promise<Response>): Promise<number> {
  const answered = await response;
  await answered.body?.cancel();
  return answered.status;
}

Deno.test("the example app's demo login: an HttpOnly session cookie for /auth/token only, access tokens that renew nothing, same-origin only, logout revokes", async () => {
  const server = startServer(app());
  try {
    const login = await post(`${server.url}/login`, { name: "ada" });
    assert.equal(login.status, 200);
    assert.deepEqual(await login.json(), { user: "ada" });
    const cookie = login.headers.get("set-cookie") ?? "";
    assert.match(
      cookie,
      /^duplex_session=[\w.-]+; Max-Age=86400; Path=\/; HttpOnly; SameSite=Strict$/,
    );
    const session = cookie.split(";")[0];
    const sessionToken = session.slice("duplex_session=".length);
    // N7: the session token opens no socket, by any means.
    assert.equal(
      (await handshake(server.port, {
        authorization: `Bearer ${sessionToken}`,
      })).status,
      401,
    );
    const issued = await post(`${server.url}/auth/token`, {}, {
      cookie: session,
    });
    const { token, expiresIn } = await issued.json();
    assert.equal(expiresIn, 300);
    const withToken = await TestSocket.open(server.wsUrl, { token });
    assert.equal(
      ((await withToken.request("whoami")).data as { user: string }).user,
      "ada",
    );
    // N7: an access token in the cookie gets no other token.
    assert.equal(
      await statusOf(post(`${server.url}/auth/token`, {}, {
        cookie: `duplex_session=${token}`,
      })),
      401,
    );
    assert.equal(await statusOf(post(`${server.url}/auth/token`, {})), 401);
    assert.equal(
      await statusOf(post(`${server.url}/login`, { name: "ada" }, {
        origin: "https://evil.example",
      })),
      403,
    );
    assert.equal(
      await statusOf(post(`${server.url}/login`, { name: "guest-1" })),
      400,
    );
    // N7: logging out revokes the session and asks its sockets to refresh.
    const logout = await post(`${server.url}/logout`, {}, { cookie: session });
    assert.equal(logout.status, 204);
    assert.match(logout.headers.get("set-cookie") ?? "", /Max-Age=0/);
    const asked = await nextEvent(withToken, "auth.refresh", 2000);
    assert.equal(asked.data!.reason, "requested");
    await withToken.close();
    assert.equal(
      await statusOf(post(`${server.url}/auth/token`, {}, { cookie: session })),
      401,
      "a revoked session gets no token",
    );
    // A new login of the same user is a new session.
    const again = await post(`${server.url}/login`, { name: "ada" });
    const fresh = (again.headers.get("set-cookie") ?? "").split(";")[0];
    await again.body?.cancel();
    assert.equal(
      await statusOf(post(`${server.url}/auth/token`, {}, { cookie: fresh })),
      200,
    );
  } finally {
    await server.close();
  }
});

Deno.test("the example app's login with USERS: the password is checked, tries are limited per address, bodies are bounded, the cookie is Secure behind TLS", async () => {
  const users = readAppEnv((name) =>
    ({
      AUTH_SECRET: TEST_SECRET,
      USERS: `ada:${ADA_HASH}`,
      ADMIN_USERS: "ada",
    })[name]
  ).identity;
  const server = startServer(app({ identity: users }));
  try {
    assert.equal(
      await statusOf(post(`${server.url}/login`, { name: "ada" })),
      401,
      "a name alone is not a login",
    );
    assert.equal(
      await statusOf(post(`${server.url}/login`, {
        name: "bob",
        password: "correct horse",
      })),
      401,
      "nor is an unknown name",
    );
    const ok = await post(`${server.url}/login`, {
      name: "ada",
      password: "correct horse",
    }, { "x-forwarded-proto": "https" });
    assert.equal(ok.status, 200);
    assert.match(ok.headers.get("set-cookie") ?? "", /; Secure$/);
    await ok.body?.cancel();
    // N8: a large body is refused before it is held.
    const big = await fetch(`${server.url}/login`, {
      method: "POST",
      body: new Uint8Array(5000),
    });
    assert.equal(big.status, 413);
    await big.body?.cancel();
    // N1: 10 tries a minute per address (4 made above), then 429.
    const statuses = [];
    for (let i = 0; i < 8; i++) {
      statuses.push(
        await statusOf(post(`${server.url}/login`, {
          name: "ada",
          password: `guess ${i}`,
        })),
      );
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 401, 429, 429]);
    const limited = await post(`${server.url}/login`, {});
    assert.ok(Number(limited.headers.get("retry-after")) > 0);
    await limited.body?.cancel();
  } finally {
    await server.close();
  }
});

Deno.test("AUTH_SECRET: required in production, at least 32 characters, generated loudly in development", () => {
  const env = (vars: Record<string, string>) => (name: string) => vars[name];
  assert.throws(
    () => readAppEnv(env({ APP_ENV: "production" })),
    /AUTH_SECRET is required in production/,
  );
  assert.throws(
    () => readAppEnv(env({ DENO_DEPLOYMENT_ID: "x" })),
    /AUTH_SECRET is required in production/,
  );
  assert.throws(
    () => readAppEnv(env({ AUTH_SECRET: "short" })),
    /at least 32 characters/,
  );
  const dev = readAppEnv(env({}));
  assert.equal(dev.generatedSecret, true);
  assert.ok(dev.identity.secret.length >= 32);
  // N22: a placeholder of the right length is refused too.
  assert.throws(
    () => readAppEnv(env({ AUTH_SECRET: "x".repeat(40) })),
    /AUTH_SECRET looks like a placeholder/,
  );
  // N1: settings that trust a login's name need USERS outside development.
  for (const name of ["ADMIN_USERS", "PRIVATE_ROOMS"]) {
    const value = name === "ADMIN_USERS" ? "alice" : "staff=alice";
    assert.throws(
      () => readAppEnv(env({ AUTH_SECRET: TEST_SECRET, [name]: value })),
      new RegExp(`${name} trusts login names: set USERS`),
    );
    assert.equal(
      readAppEnv(env({ [name]: value, APP_ENV: "development" })).identity
        .logins,
      "name",
    );
  }
  assert.equal(
    readAppEnv(env({ AUTH_SECRET: TEST_SECRET, APP_ENV: "production" }))
      .identity.logins,
    "off",
    "no USERS in production: no logins",
  );
  assert.throws(
    () => readAppEnv(env({ USERS: "alice:plaintext" })),
    /USERS must be name:hash pairs/,
  );
  const set = readAppEnv(env({
    AUTH_SECRET: TEST_SECRET,
    PRIVATE_ROOMS: "staff=alice,bob;ops=carol",
    TOKEN_TTL: "120",
    USERS: `alice:${ADA_HASH}`,
  }));
  assert.equal(set.identity.logins, "password");
  assert.equal(set.generatedSecret, false);
  assert.deepEqual([...set.identity.privateRooms!], [
    ["staff", ["alice", "bob"]],
    ["ops", ["carol"]],
  ]);
  assert.equal(set.identity.tokenTtl, 120);
  assert.throws(
    () =>
      readAppEnv(
        env({ PRIVATE_ROOMS: "staff=al ice", USERS: `a:${ADA_HASH}` }),
      ),
    /PRIVATE_ROOMS/,
  );
});

Deno.test("createServer refuses both authenticate and auth, and a router that defines auth.refresh", () => {
  const auth = jwtAuth({
    algorithms: ["HS256"],
    key: TEST_SECRET,
    state: (claims) => claims.sub,
  });
  assert.throws(
    () =>
      createServer({
        router: new EventRouter(),
        authenticate: () => undefined,
        auth: auth as never,
      }),
    /either authenticate or auth/,
  );
  assert.throws(
    () =>
      createServer({
        router: new EventRouter().on("auth.refresh", z.unknown(), () => 1),
        auth: auth as never,
      }),
    /auth.refresh/,
  );
  assert.throws(
    () => jwtAuth({ algorithms: ["HS256"], key: "short", state: () => 1 }),
    /at least 32 bytes/,
  );
  assert.throws(
    () => jwtAuth({ algorithms: ["ES256"], key: TEST_SECRET, state: () => 1 }),
    /HS256\/384\/512 only/,
  );
  void AuthFailure;
});
