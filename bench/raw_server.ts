/**
 * The baseline: raw `Deno.serve` + `Deno.upgradeWebSocket`, doing the least
 * work that answers the same bytes as duplex: parse the envelope, reply
 * `{"id","data"}`; `fanout` sends one encoded push to every socket.
 *
 * Env: PORT. Prints "ready" once listening.
 */

const sockets = new Set<WebSocket>();

Deno.serve({
  port: Number(Deno.env.get("PORT")),
  hostname: "127.0.0.1",
  onListen: () => console.log("ready"),
}, (request) => {
  if (request.headers.get("upgrade") !== "websocket") {
    return new Response("raw");
  }
  const { socket, response } = Deno.upgradeWebSocket(request);
  socket.onopen = () => sockets.add(socket);
  socket.onclose = () => sockets.delete(socket);
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.event === "echo") {
      socket.send(JSON.stringify({ id: message.id, data: message.data }));
    } else if (message.event === "join") {
      socket.send(JSON.stringify({ id: message.id, data: true }));
    } else if (message.event === "fanout") {
      const text = JSON.stringify({
        event: "bench",
        data: { p: message.data },
      });
      for (const member of sockets) member.send(text);
    }
  };
  return response;
});
