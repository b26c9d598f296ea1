/**
 * The admin page (`GET /admin`): the cluster's nodes and topics, live (it
 * asks the admin socket every second), with two actions: disconnect a user
 * everywhere, publish a message to a room. Plain HTML and one module that
 * imports the typed client the server serves; the chat page's CSP.
 *
 * @module
 */

/** The page. */
export const ADMIN_HTML = `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>duplex admin</title>
<style>
  body { font: 15px system-ui, sans-serif; max-width: 56rem; margin: 2rem auto; color: #1d2330; }
  table { border-collapse: collapse; width: 100%; margin-bottom: 1.5rem; }
  th, td { text-align: left; padding: 0.3rem 0.6rem; border-bottom: 1px solid #e3e6ec; }
  #state { font-size: 0.8rem; padding: 0.1rem 0.5rem; border-radius: 1rem; background: #ddd; }
  body[data-state="open"] #state { background: #2e9c5a; color: white; }
  form { margin: 0.5rem 0 1rem; }
</style>
<h1>duplex admin <span id="state">connecting</span></h1>
<h2>Nodes</h2>
<table><thead><tr><th>Node</th><th>Connections</th><th>Topics</th><th>Messages in/s</th><th>out/s</th><th>Uptime</th><th>Memory</th></tr></thead>
<tbody id="nodes"></tbody></table>
<h2>Topics</h2>
<table><thead><tr><th>Topic</th><th>Members</th></tr></thead><tbody id="topics"></tbody></table>
<form id="disconnect"><input id="user" placeholder="user" required>
  <button>Disconnect everywhere</button></form>
<form id="publish"><input id="room" placeholder="room" value="lobby" required>
  <input id="text" placeholder="message" required> <button>Publish</button></form>
<p id="status"></p>
<script type="module" src="/admin.js"></script>
</html>
`;

/** The page's script. */
export const ADMIN_JS = `import { DuplexClient } from "/duplex/client.js";

const $ = (id) => document.getElementById(id);
// A short-lived access token traded for the session cookie (as the chat page does).
async function accessToken() {
  const response = await fetch("/auth/token", { method: "POST" });
  if (!response.ok) throw new Error("log in as an admin on / first");
  return (await response.json()).token;
}
const client = new DuplexClient({
  url: location.origin.replace(/^http/, "ws") + "/admin",
  maxReconnectDelay: 2000,
  getToken: accessToken,
});
client.onState((state) => {
  $("state").textContent = state;
  document.body.dataset.state = state;
});
const row = (cells) => {
  const tr = document.createElement("tr");
  for (const cell of cells) {
    const td = document.createElement("td");
    td.textContent = String(cell);
    tr.append(td);
  }
  return tr;
};
/** Node → its last reading, for the rates. */
const last = new Map();
function rates(n) {
  const now = performance.now();
  const before = last.get(n.node);
  last.set(n.node, { at: now, in: n.messagesIn, out: n.messagesOut });
  if (!before) return ["–", "–"];
  const seconds = (now - before.at) / 1000;
  return [
    ((n.messagesIn - before.in) / seconds).toFixed(1),
    ((n.messagesOut - before.out) / seconds).toFixed(1),
  ];
}
async function refresh() {
  try {
    const { nodes, topics } = await client.request("admin.overview", {});
    $("nodes").replaceChildren(...nodes.map((n) => row([
      n.node.slice(0, 8), n.connections, n.topics, ...rates(n),
      Math.round(n.uptime / 1000) + " s", Math.round(n.memory / 1048576) + " MiB",
    ])));
    $("topics").replaceChildren(...topics.map((t) => row([t.topic, t.count])));
    document.body.dataset.nodes = String(nodes.length);
    document.body.dataset.connections = String(
      nodes.reduce((sum, n) => sum + n.connections, 0),
    );
  } catch (error) {
    $("status").textContent = error.message;
  }
}
setInterval(refresh, 1000);
client.ready().then(refresh);
$("disconnect").onsubmit = async (event) => {
  event.preventDefault();
  const { closed } = await client.request("admin.disconnect", { user: $("user").value });
  $("status").textContent = "disconnected " + closed + " connection(s)";
  document.body.dataset.closed = String(closed);
  refresh();
};
$("publish").onsubmit = async (event) => {
  event.preventDefault();
  await client.request("admin.publish", { room: $("room").value, text: $("text").value });
  $("status").textContent = "published";
};
`;
