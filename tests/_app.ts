/**
 * A test app that exercises every router path: echo, typed state, thrown and
 * rejected handlers, application errors, closes, pushes and binary frames.
 */

import { z } from "zod";
import {
  type CloseInfo,
  createServer,
  type DuplexServer,
  EventError,
  EventRouter,
  HttpRouter,
  installProcessGuard,
  type ServerOptions,
  silentLogger,
} from "@duplex-ws/duplex";

// The "leak" handler leaves a rejected promise behind, as a careless app
// would: the process guard logs it instead of letting Deno end the suite.
installProcessGuard(silentLogger);

/** The state the test app's `authenticate` gives. */
export interface TestState {
  user: string;
  role: "admin" | "guest";
}

/** The test app's pushes. */
export type TestPushes = {
  pushed: { n: number };
  ready: undefined;
};

/** What a test can observe about the app's connections. */
export interface Observed {
  opens: string[];
  closes: { id: string; info: CloseInfo }[];
  /** Events a handler started after its connection's onClose ran (must stay empty). */
  lateHandlers: string[];
  /** How many frames `flood` got into the runtime's buffer. */
  flooded: number;
}

/** Options of {@linkcode createTestApp}. */
export interface TestAppOptions
  extends Partial<ServerOptions<TestState, TestPushes>> {
  /** Register a binary handler that echoes. */
  binary?: boolean;
}

/** Builds the router; `observed` records lifecycle calls. */
export function createTestRouter(observed: Observed, binary = false) {
  const closed = new Set<string>();
  const router = new EventRouter<TestState, TestPushes>()
    .on("echo", z.unknown(), (data, ctx) => {
      if (closed.has(ctx.id)) observed.lateHandlers.push("echo");
      return data;
    })
    .on("whoami", z.undefined(), (_data, ctx) => ({
      id: ctx.id,
      user: ctx.state.user,
      role: ctx.state.role,
      protocol: ctx.protocol,
    }))
    .on("add", z.object({ a: z.number(), b: z.number() }), ({ a, b }) => a + b)
    .on("throw", z.undefined(), () => {
      throw new Error("secret internal detail");
    })
    .on(
      "reject",
      z.undefined(),
      () => Promise.reject(new Error("secret async detail")),
    )
    .on("forbidden", z.undefined(), () => {
      throw new EventError("FORBIDDEN", "Admins only");
    })
    .on(
      "async",
      z.object({ ms: z.number().max(2000) }),
      async ({ ms }, ctx) => {
        await new Promise((resolve) => setTimeout(resolve, ms));
        return { aborted: ctx.signal.aborted };
      },
    )
    .on("join", z.object({ topic: z.string() }), ({ topic }, ctx) => {
      ctx.join(topic);
      return true;
    })
    .on("stall", z.object({ ms: z.number().max(10_000) }), ({ ms }) => {
      // Blocks the event loop, as a long synchronous task or a GC pause would.
      const until = Date.now() + ms;
      while (Date.now() < until) { /* busy */ }
      return true;
    })
    .on("push", z.object({ n: z.number() }), ({ n }, ctx) => {
      ctx.emit("pushed", { n });
      ctx.emit("ready");
    })
    .on(
      "close",
      z.object({ code: z.number().optional(), reason: z.string().optional() }),
      ({ code, reason }, ctx) => {
        try {
          ctx.close(code, reason);
          return { closed: true };
        } catch (error) {
          return {
            error: (error as Error).name,
            message: (error as Error).message,
          };
        }
      },
    )
    .on("unserialisable", z.undefined(), () => ({ big: 1n }))
    .on(
      "flood",
      z.object({
        size: z.number().max(1_048_576),
        count: z.number().max(10_000),
      }),
      ({ size, count }, ctx) => {
        const chunk = "x".repeat(size);
        for (let i = 0; i < count; i++) {
          if (ctx.send(chunk)) observed.flooded++;
        }
      },
    )
    .on("leak", z.undefined(), () => {
      // Fire-and-forget work that rejects later: the process guard logs it.
      Promise.reject(new Error("left behind"));
      return "ok";
    })
    .onOpen((ctx) => {
      observed.opens.push(ctx.id);
      if (ctx.state.user === "openfail") throw new Error("open hook failed");
    })
    .onClose((ctx, info) => {
      closed.add(ctx.id);
      observed.closes.push({ id: ctx.id, info });
    });
  if (binary) {
    router.binary((data, ctx) => {
      ctx.send(data);
    });
  }
  return router;
}

/** Reads `?user=&role=`; `?user=nobody` is refused with 401, `?user=banned` with 403. */
export function testAuthenticate(
  request: Request,
): TestState | Response | Promise<TestState> {
  const params = new URL(request.url).searchParams;
  const user = params.get("user") ?? "anon";
  if (user === "nobody") return new Response("Unauthorized\n", { status: 401 });
  if (user === "banned") return new Response("Forbidden\n", { status: 403 });
  if (user === "explode") throw new Error("auth backend down");
  if (user === "slow") {
    return new Promise((resolve) =>
      setTimeout(() => resolve({ user, role: "guest" }), 300)
    );
  }
  return { user, role: params.get("role") === "admin" ? "admin" : "guest" };
}

/** Creates the test app. */
export function createTestApp(
  options: TestAppOptions = {},
): { app: DuplexServer<TestState, TestPushes>; observed: Observed } {
  const observed: Observed = {
    opens: [],
    closes: [],
    lateHandlers: [],
    flooded: 0,
  };
  const { binary = false, ...rest } = options;
  const app = createServer<TestState, TestPushes>({
    router: createTestRouter(observed, binary),
    http: new HttpRouter()
      .get("/healthz", () => Response.json({ ok: true }))
      .get(
        "/health",
        (_request, { server }) => Response.json(server?.health()),
      ),
    authenticate: testAuthenticate,
    logger: silentLogger,
    closeTimeout: 1000,
    drainTimeout: 1000,
    // Every test client comes from 127.0.0.1: per-address caps are for
    // tests/attack_test.ts to turn on.
    maxConnectionsPerIp: 0,
    handshakesPerIpPerSecond: 0,
    ...rest,
  });
  return { app, observed };
}
