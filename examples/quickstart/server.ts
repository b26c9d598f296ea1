// server.ts: a chat with rooms, presence and history, and its page.
import { z } from "zod";
import {
  createServer,
  EventRouter,
  HttpRouter,
  listen,
  shutdownOnSignals,
} from "@duplex-ws/duplex";
import { serveClient } from "@duplex-ws/client/serve";

type Pushes = { "chat.message": { from: string; text: string } };

export const router = new EventRouter<{ name: string }, Pushes>()
  .on(
    "chat.join",
    z.object({ room: z.string() }),
    ({ room }, ctx) => ctx.join(room, { last: 20 }),
  )
  .on(
    "chat.say",
    z.object({ room: z.string(), text: z.string().min(1).max(500) }),
    ({ room, text }, ctx) =>
      ctx.publish(room, "chat.message", { from: ctx.state.name, text }),
  );

const page = await Deno.readTextFile(new URL("index.html", import.meta.url));

export const app = createServer({
  router,
  // Who is connecting: use `auth` with signed tokens in a real app.
  authenticate: (request) => ({
    name: new URL(request.url).searchParams.get("name") ?? "guest",
  }),
  // Every room keeps its last 100 messages for 5 minutes, and who is in it.
  topics: [{ match: () => true, presence: true, history: true }],
  http: new HttpRouter()
    .get(
      "/",
      () => new Response(page, { headers: { "content-type": "text/html" } }),
    )
    .get("/duplex/client.js", (request) => serveClient(request)!),
});

if (import.meta.main) {
  const listener = listen(app, { port: 8000 });
  shutdownOnSignals(() => listener.close());
}
