/**
 * A notification feed pushed from HTTP: a backend `POST /notify`s (with the
 * feed's API key) and every subscribed socket of the user, or everyone, gets
 * a `notification` push. Feeds keep their last 100 notifications for a day,
 * so a client that was offline gets what it missed, once and in order, when
 * it comes back (the typed client resumes by itself).
 *
 * - Sockets: a signed token (HS256, `sub` = the user), no guests: 401.
 *   `feed.join {scope: "me" | "all"}` joins `feed.user.<sub>` or
 *   `feed.all`.
 * - `POST /notify` with `Authorization: Bearer <notifyKey>` and
 *   `{to?, title, body?}` (JSON, at most 16 KiB): 202 `{topic, position}`;
 *   a wrong key 401, a bad body 400, a larger one 413.
 *
 * @module
 */

import { z } from "zod";
import {
  createServer,
  type DuplexServer,
  EventRouter,
  HttpRouter,
  type Logger,
} from "@duplex-ws/duplex";
import { jwtAuth } from "@duplex-ws/jwt";

/** A feed's notification, as pushed. */
export const notification = z.object({
  title: z.string(),
  body: z.string(),
  at: z.number(),
  offset: z.number().int().min(0),
  epoch: z.string(),
});

/** The feed's pushes. */
export type FeedPushes = { notification: z.infer<typeof notification> };

/** A subscriber: who. */
export interface FeedState {
  /** The token's subject. */
  user: string;
}

/** What `POST /notify` takes. */
export const notifyBody = z.object({
  to: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/).optional(),
  title: z.string().min(1).max(200),
  body: z.string().max(4000).default(""),
});

/** The largest `POST /notify` body, in bytes. */
export const MAX_NOTIFY_BYTES = 16_384;

const position = z.object({
  offset: z.number().int().min(0),
  epoch: z.string().min(1).max(64),
});

/** The topic of a user's feed, or of everyone's. */
export function feedTopic(to?: string): string {
  return to === undefined ? "feed.all" : `feed.user.${to}`;
}

/** The feed's router. */
export const feedRouter = new EventRouter<FeedState, FeedPushes>()
  .push("notification", notification, {
    summary: "A notification posted to /notify, with its position.",
  })
  .on(
    "feed.join",
    z.object({ scope: z.enum(["me", "all"]), since: position.optional() }),
    async ({ scope, since }, ctx) => {
      const joined = await ctx.join(
        feedTopic(scope === "me" ? ctx.state.user : undefined),
        { since },
      );
      return {
        topic: joined.topic,
        position: joined.position,
        recovered: joined.recovered,
      };
    },
    { summary: "Subscribes to the user's feed or everyone's." },
  );

/** The feed router's type, for the typed client. */
export type FeedRouter = typeof feedRouter;

/** Options of {@linkcode createFeedApp}. */
export interface FeedOptions {
  /** The HS256 key subscribers' tokens are signed with (32+ bytes). */
  secret: string;
  /** The API key `POST /notify` must bear. */
  notifyKey: string;
  /** Where to log. */
  logger?: Logger;
}

function problem(status: number, code: string, message: string): Response {
  return Response.json({ error: { code, message } }, { status });
}

/** Compares two strings in time that does not depend on where they differ. */
function sameKey(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    diff |= (x[i] ?? 0) ^ (y[i] ?? 0);
  }
  return diff === 0;
}

async function readBody(request: Request): Promise<string | Response> {
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > MAX_NOTIFY_BYTES) {
    await request.body?.cancel();
    return problem(413, "too_large", `At most ${MAX_NOTIFY_BYTES} bytes`);
  }
  const bytes = await new Response(request.body).arrayBuffer();
  if (bytes.byteLength > MAX_NOTIFY_BYTES) {
    return problem(413, "too_large", `At most ${MAX_NOTIFY_BYTES} bytes`);
  }
  return new TextDecoder().decode(bytes);
}

/** The feed server: sockets for subscribers, `POST /notify` for backends. */
export function createFeedApp(
  options: FeedOptions,
): DuplexServer<FeedState, FeedPushes> {
  const http = new HttpRouter()
    .post("/notify", async (request, { server }) => {
      const auth = request.headers.get("authorization") ?? "";
      if (!sameKey(auth, `Bearer ${options.notifyKey}`)) {
        await request.body?.cancel();
        return problem(401, "unauthorized", "A valid API key is required");
      }
      const text = await readBody(request);
      if (text instanceof Response) return text;
      let parsed;
      try {
        parsed = notifyBody.safeParse(JSON.parse(text));
      } catch {
        return problem(400, "bad_json", "The body is not JSON");
      }
      if (!parsed.success) {
        return problem(400, "invalid", parsed.error.issues[0].message);
      }
      const { to, title, body } = parsed.data;
      const topic = feedTopic(to);
      const feed = server as DuplexServer<FeedState, FeedPushes>;
      const result = await feed.publish(topic, "notification", {
        title,
        body,
        at: Date.now(),
      });
      if (result.remote === "failed") {
        return problem(503, "not_stored", "Not stored: post it again");
      }
      return Response.json({ topic, position: result.position }, {
        status: 202,
      });
    });
  return createServer({
    router: feedRouter,
    http,
    auth: jwtAuth<FeedState>({
      algorithms: ["HS256"],
      key: options.secret,
      state: (claims) => ({ user: claims.sub }),
    }),
    topics: [{ match: "feed.*", history: { size: 100, ttl: 86_400_000 } }],
    logger: options.logger,
  });
}
