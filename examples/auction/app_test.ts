/**
 * The auction on the local engine, over real sockets: bids decided on what
 * the topic holds, conditional publishes that exactly one racer wins, the
 * latest bid with the join, typed errors with data, and a bid resent after
 * its reply was lost, answered once. `tests/shared_state_test.ts` runs the
 * same races across processes on Redis and on a Redis Cluster.
 */

import assert from "node:assert/strict";
import { silentLogger } from "@duplex-ws/duplex";
import { DuplexClient } from "@duplex-ws/client";
import { startProxy, startServer, TestSocket } from "@duplex-ws/testing";
import { type AuctionRouter, createAuctionApp } from "./app.ts";

type Reply = {
  id?: number;
  data?: Record<string, unknown>;
  error?: { code: string; message: string; data?: Record<string, unknown> };
};

function app() {
  return createAuctionApp({ logger: silentLogger });
}

Deno.test("auction: a bid must beat the price; BID_TOO_LOW carries it, typed on the client; the latest bid comes with the join", async () => {
  const server = startServer(app());
  const ada = server.client<AuctionRouter>({ path: "/?user=ada" });
  try {
    assert.equal(
      (await ada.request("auction.join", { item: "lamp" })).price,
      0,
    );
    assert.equal(
      (await ada.request("bid", { item: "lamp", amount: 10 })).amount,
      10,
    );
    let seen: number | undefined;
    try {
      await ada.request("bid", { item: "lamp", amount: 5 });
    } catch (error) {
      // `error.data.price` is a number here, by the router's `errors`.
      if (ada.isError(error, "bid", "BID_TOO_LOW")) seen = error.data.price;
    }
    assert.equal(seen, 10);
    await ada.request("bid", { item: "lamp", amount: 12 });
    const bob = server.client<AuctionRouter>({ path: "/?user=bob" });
    const joined = await bob.request("auction.join", { item: "lamp" });
    assert.equal(joined.price, 12, "the latest value, with no replay");
    assert.equal(joined.position?.offset, 2);
    // Presence metadata is typed from the router's `presence` schema.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const bidding: boolean[] = [...bob.members("auction:lamp").values()]
      .map((meta) => meta.bidding);
    assert.ok(bidding.every((b) => b === true) && bidding.length >= 1);
  } finally {
    await server.close();
  }
});

Deno.test("auction: two sockets racing conditional bids from the same position: exactly one wins each round, the other gets CONFLICT with the winner's position", async () => {
  const server = startServer(app());
  const [a, b] = [
    await TestSocket.open(`${server.wsUrl}/?user=a`),
    await TestSocket.open(`${server.wsUrl}/?user=b`),
  ];
  try {
    let at: unknown = null;
    for (let round = 1; round <= 50; round++) {
      const [ra, rb] = await Promise.all([
        a.request<Reply>("bid.at", {
          item: "vase",
          amount: round * 10,
          ifPosition: at,
        }),
        b.request<Reply>("bid.at", {
          item: "vase",
          amount: round * 10 + 1,
          ifPosition: at,
        }),
      ]);
      const won = [ra, rb].filter((r) => r.error === undefined);
      const lost = [ra, rb].filter((r) => r.error !== undefined);
      assert.equal(won.length, 1, `round ${round}`);
      assert.equal(lost[0].error!.code, "CONFLICT");
      const winner = won[0].data!.position;
      assert.deepEqual(lost[0].error!.data!.position, winner);
      at = winner;
    }
  } finally {
    await a.close();
    await b.close();
    await server.close();
  }
});

Deno.test("auction: a bid whose reply was lost is resent with its key and answered with the first reply; the handler ran once", async () => {
  const server = startServer(app());
  const proxy = startProxy({ port: server.port });
  const ada = new DuplexClient<AuctionRouter>({
    url: proxy.wsUrl("/?user=ada"),
    minReconnectDelay: 50,
  });
  try {
    await ada.request("auction.join", { item: "rug" });
    proxy.muteDownstream();
    const bid = ada.request("bid", { item: "rug", amount: 7 }, {
      resend: true,
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    proxy.cut();
    const reply = await bid;
    assert.equal(reply.amount, 7);
    const history = await server.client<AuctionRouter>()
      .request("auction.join", { item: "rug" });
    assert.equal(history.position?.offset, 1, "one bid stored, not two");
    assert.deepEqual(reply.position, history.position);
  } finally {
    ada.close();
    await proxy.close();
    await server.close();
  }
});
