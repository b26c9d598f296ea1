// app_test.ts: real sockets on port 0, a connection cut, nothing lost.
import assert from "node:assert/strict";
import { startProxy, startServer } from "@duplex-ws/testing";
import { app, type router } from "./server.ts";

Deno.test("a member who drops gets what was said meanwhile, once", async () => {
  const server = startServer(app);
  const proxy = startProxy({ port: server.port });
  const ada = server.client<typeof router>({ path: "/?name=ada" });
  const bob = server.client<typeof router>({
    url: proxy.wsUrl("/?name=bob"),
    minReconnectDelay: 20,
  });
  try {
    const heard: string[] = [];
    bob.on("chat.message", (m) => heard.push(m.text));
    await ada.join("chat.join", { room: "lobby" });
    await bob.join("chat.join", { room: "lobby" });
    proxy.cut(); // bob's network drops, with no close frame
    await ada.request("chat.say", {
      room: "lobby",
      text: "while you were out",
    });
    await bob.ready(); // reconnected and rejoined from his last position
    const back = bob.once("chat.message", { timeout: 2_000 });
    await ada.request("chat.say", { room: "lobby", text: "welcome back" });
    await back;
    assert.deepEqual(heard, ["while you were out", "welcome back"]);
  } finally {
    ada.close();
    bob.close();
    await proxy.close();
    await server.close();
  }
});
