/**
 * The streaming example's page: a prompt, the answer as it arrives, the
 * connection's state and a Stop button. Plain HTML and one module that
 * imports the typed client the server serves (no bundler).
 *
 * @module
 */

/** The page. */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<title>duplex: a streamed answer</title>
<style>
  body { font: 16px system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; }
  #answer { white-space: pre-wrap; min-height: 8rem; padding: 1rem; background: #f4f5f7; border-radius: 6px; }
  #state { font-size: 0.8rem; padding: 0.1rem 0.5rem; border-radius: 1rem; background: #ddd; }
  body[data-state="open"] #state { background: #2e9c5a; color: white; }
</style>
<h1>A streamed answer <span id="state">connecting</span></h1>
<form id="ask">
  <input id="prompt" value="tell me about streams" size="40">
  <button>Ask</button> <button type="button" id="stop">Stop</button>
</form>
<p id="answer"></p>
<p id="status"></p>
<script type="module" src="/app.js"></script>
</html>
`;

/** The page's script. */
export const PAGE_JS = `import { DuplexClient } from "/duplex/client.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const client = new DuplexClient({
  url: location.origin.replace(/^http/, "ws") + "/",
  minReconnectDelay: 100,
  maxReconnectDelay: 1000,
});
client.onState((state) => {
  $("state").textContent = state;
  document.body.dataset.state = state;
});
let current;
$("stop").onclick = () => current?.cancel();
$("ask").onsubmit = async (event) => {
  event.preventDefault();
  $("answer").textContent = "";
  document.body.dataset.answer = "streaming";
  const stream = current = client.stream("ask", {
    prompt: $("prompt").value,
    tokens: Number(params.get("tokens") ?? 200),
    every: Number(params.get("every") ?? 15),
  });
  let count = 0;
  try {
    for await (const token of stream) {
      $("answer").textContent += token;
      document.body.dataset.count = String(++count);
    }
    const { tokens } = await stream.result;
    $("status").textContent = tokens + " tokens";
    document.body.dataset.answer = "done";
  } catch (error) {
    $("status").textContent = error.code + ": " + error.message;
    document.body.dataset.answer = error.code;
  }
};
`;
