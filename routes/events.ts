/**
 * The example app's WebSocket events: `echo`, `whoami`, and a `welcome` push.
 *
 * @module
 */

import { z } from "zod";
import { EventRouter } from "../lib/mod.ts";
import type { UserState } from "./auth.ts";

/** What the example server pushes. */
export type ServerEvents = {
  /** Sent once, right after a connection opens. */
  welcome: { id: string; user: string; events: string[] };
};

/** The example app's event router. Stateless, so one serves every server. */
export const events = new EventRouter<UserState, ServerEvents>()
  .on("echo", z.unknown(), (data) => data)
  .on("whoami", z.undefined(), (_data, ctx) => ({
    id: ctx.id,
    user: ctx.state.user,
    protocol: ctx.protocol,
  }))
  .onOpen((ctx) => {
    ctx.emit("welcome", {
      id: ctx.id,
      user: ctx.state.user,
      events: events.eventNames(),
    });
  });

/** The type of the example app's router, for typed clients. */
export type ExampleRouter = typeof events;
