/**
 * Runs the notification-feed example: `./bin/deno task example:feed`
 * (PORT, default 8002; FEED_SECRET for subscribers' tokens and NOTIFY_KEY for
 * `POST /notify`, both required).
 *
 * @module
 */

import { listen, shutdownOnSignals } from "@duplex-ws/duplex";
import { createFeedApp } from "./app.ts";

const secret = Deno.env.get("FEED_SECRET") ?? "";
const notifyKey = Deno.env.get("NOTIFY_KEY") ?? "";
if (secret.length < 32 || notifyKey.length < 16) {
  console.error(
    "Set FEED_SECRET (32+ characters) and NOTIFY_KEY (16+ characters).",
  );
  Deno.exit(1);
}
const app = createFeedApp({ secret, notifyKey });
const listener = listen(app, {
  port: Number(Deno.env.get("PORT") ?? 8002),
  onListen: ({ port }) => console.log(`feed: http://localhost:${port}/notify`),
});
shutdownOnSignals(() => listener.close());
