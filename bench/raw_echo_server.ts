/**
 * The floor: raw `Deno.serve` + `Deno.upgradeWebSocket` doing nothing a
 * server could skip. Every text frame is sent back as it came (no JSON
 * parse: the request carries its id, so the load generator matches it), and
 * a `fanout` frame (found by its prefix) goes out as it is to every socket.
 *
 * Env: PORT. Prints "ready" once listening.
 */

const sockets = new Set<WebSocket>();
const FANOUT = '{"event":"fanout"';

Deno.serve({
  port: Number(Deno.env.get("PORT")),
  hostname: "127.0.0.1",
  onListen: () => console.log("ready"),
}, (request) => {
  if (request.headers.get("upgrade") !== "websocket") {
    return new Response("raw echo");
  }
  const { socket, response } = Deno.upgradeWebSocket(request);
  socket.onopen = () => sockets.add(socket);
  socket.onclose = () => sockets.delete(socket);
  socket.onmessage = (event) => {
    const text = event.data as string;
    if (text.startsWith(FANOUT)) {
      for (const member of sockets) member.send(text);
    } else socket.send(text);
  };
  return response;
});
