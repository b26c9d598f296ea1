/**
 * Runs the live-cursors example: `./bin/deno task example:cursors`
 * (PORT, default 8001).
 *
 * @module
 */

import { listen, shutdownOnSignals } from "@duplex-ws/duplex";
import { createCursorsApp } from "./app.ts";

const app = createCursorsApp();
const listener = listen(app, {
  port: Number(Deno.env.get("PORT") ?? 8001),
  onListen: ({ port }) => console.log(`cursors: ws://localhost:${port}/`),
});
shutdownOnSignals(() => listener.close());
