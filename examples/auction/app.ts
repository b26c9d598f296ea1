/**
 * Deciding on shared state: an auction whose bids must beat the current
 * price, on as many nodes as you like. The handler reads the item's topic
 * (`ctx.history`), decides, and publishes only if the topic has not moved
 * since (`ifPosition`): two nodes racing from the same price can never both
 * win, and the loser reads again and decides again. A bid sent with a
 * request key is answered once, however often it is sent.
 *
 * - `auction.join {item}` → `{item, price, position}` (the latest bid comes
 *   with the join, from the topic's `latest` value).
 * - `bid {item, amount}` → `{amount, position}`, or `BID_TOO_LOW` with
 *   `{price}`.
 * - `bid.at {item, amount, ifPosition}`: the same decision made by the
 *   client on the position it last saw: `CONFLICT` with the position now
 *   when another bid came first.
 *
 * @module
 */

import { z } from "zod";
import {
  createServer,
  type DuplexServer,
  EventError,
  EventRouter,
  HttpRouter,
  PositionConflict,
  type ServerOptions,
  type StreamPosition,
} from "@duplex-ws/duplex";

/** A bid, as the item's topic carries it. */
export interface Bid {
  amount: number;
  by: string;
}

/** What the example pushes: each accepted bid, to everyone watching the item. */
export type AuctionPushes = { bid: Bid };

const item = z.string().regex(/^[a-z0-9-]{1,40}$/);
const amount = z.number().int().positive().max(1e12);
const position = z.object({ offset: z.number().int(), epoch: z.string() });
const tooLow = { BID_TOO_LOW: z.object({ price: z.number() }) };

const topicOf = (name: string) => `auction:${name}`;

/** The current price of an item and the position it was read at. */
async function current(
  read: (topic: string) => Promise<{
    entries: { data: unknown }[];
    position: StreamPosition | null;
  }>,
  name: string,
) {
  const { entries, position } = await read(topicOf(name));
  const last = entries.at(-1)?.data as Bid | undefined;
  return { price: last?.amount ?? 0, position };
}

/** How many times a bid decides again after losing a race. */
const RETRIES = 20;

export const auctionRouter = new EventRouter<{ user: string }, AuctionPushes>()
  .presence(z.object({ bidding: z.boolean() }))
  .on("auction.join", z.object({ item }), async ({ item }, ctx) => {
    const joined = await ctx.join(topicOf(item), {
      presence: { meta: { bidding: true } },
    });
    const latest = joined.latest?.at(-1)?.data as Bid | undefined;
    return { item, price: latest?.amount ?? 0, position: joined.position };
  })
  .on(
    "bid",
    z.object({ item, amount }),
    async ({ item, amount }, ctx) => {
      const read = (topic: string) => ctx.history(topic, { last: 1 });
      for (let attempt = 0; attempt < RETRIES; attempt++) {
        const { price, position } = await current(read, item);
        if (amount <= price) {
          throw new EventError("BID_TOO_LOW", `The price is ${price}`, {
            data: { price },
          });
        }
        try {
          const done = await ctx.publish(topicOf(item), "bid", {
            amount,
            by: ctx.state.user,
          }, { ifPosition: position });
          return { amount, position: done.position! };
        } catch (error) {
          if (!(error instanceof PositionConflict)) throw error;
          // Another bid came first, on this node or another: decide again.
        }
      }
      throw new EventError("BUSY", "Too many bids at once: try again");
    },
    { errors: tooLow },
  )
  .on(
    "bid.at",
    z.object({ item, amount, ifPosition: position.nullable() }),
    async ({ item, amount, ifPosition }, ctx) => {
      const done = await ctx.publish(topicOf(item), "bid", {
        amount,
        by: ctx.state.user,
      }, { ifPosition });
      return { amount, position: done.position! };
    },
  );

/** The example's router type, for `DuplexClient<AuctionRouter>`. */
export type AuctionRouter = typeof auctionRouter;

/** Creates the auction app: every item's topic keeps its bids and its latest. */
export function createAuctionApp(
  options: Omit<ServerOptions<{ user: string }, AuctionPushes>, "router"> = {},
): DuplexServer<{ user: string }, AuctionPushes> {
  return createServer({
    topics: [{
      match: "auction:*",
      presence: true,
      history: { size: 1000, ttl: 3_600_000 },
      latest: true,
    }],
    authenticate: (request) => ({
      user: new URL(request.url).searchParams.get("user")?.slice(0, 40) ??
        "anonymous",
    }),
    // What a load balancer asks: 200 while the node serves, with its engine's state.
    http: new HttpRouter().get("/healthz", (_request, { server }) => {
      const health = server!.health();
      return Response.json(health, {
        status: health.status === "shutting_down" ? 503 : 200,
      });
    }),
    ...options,
    router: auctionRouter,
  });
}
