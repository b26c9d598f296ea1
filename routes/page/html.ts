/**
 * The chat page's HTML and CSS. The script is `/chat.js`.
 *
 * @module
 */

/** The page served at `/`. */
export const CHAT_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>duplex chat</title>
<style>
  :root { font-family: system-ui, sans-serif; color: #1d2330; background: #f4f6fa; }
  body { max-width: 44rem; margin: 2rem auto; padding: 0 1rem; }
  header { display: flex; align-items: baseline; gap: 1rem; }
  h1 { margin: 0; font-size: 1.6rem; }
  #state { padding: .15rem .6rem; border-radius: 1rem; font-size: .85rem; background: #ccc; }
  #state[data-state="open"] { background: #2e9d5b; color: white; }
  #state[data-state="connecting"] { background: #e0a800; }
  #state[data-state="reconnecting"] { background: #e8590c; color: white; }
  #state[data-state="closed"] { background: #868e96; color: white; }
  form { display: flex; gap: .5rem; margin: 1rem 0; }
  input { flex: 1; padding: .5rem; border: 1px solid #b9c0cc; border-radius: .4rem; font-size: 1rem; }
  button { padding: .5rem 1rem; border: 0; border-radius: .4rem; background: #3b5bdb; color: white; font-size: 1rem; }
  #chat { display: none; background: white; border-radius: .6rem; padding: 1rem; box-shadow: 0 1px 4px #0002; }
  body[data-joined="true"] #chat { display: block; }
  #messages { list-style: none; margin: 0; padding: 0; height: 18rem; overflow-y: auto; }
  #members { list-style: none; margin: .5rem 0; padding: 0; display: flex; flex-wrap: wrap; gap: .25rem .75rem; font-size: .9rem; }
  #messages li { padding: .25rem 0; border-bottom: 1px solid #eef0f4; }
  #messages li.info { color: #868e96; font-style: italic; }
  #messages li.error { color: #c92a2a; }
  .meta { color: #555; }
  p.help { color: #555; font-size: .9rem; }
</style>
</head>
<body data-state="idle">
<header><h1>duplex chat</h1><span id="state" data-state="idle">not connected</span></header>
<p class="help">HTTP and WebSocket on one port, served by a Deno server. Sign in with your name (and password, when the server has accounts) and pick a room.
The wire protocol is JSON: <code>{"event":"chat.say","data":{"room":"lobby","text":"hi"},"id":1}</code>.</p>
<form id="join">
  <input id="name" placeholder="your name (letters, digits, _ -)" autocomplete="username">
  <input id="password" type="password" placeholder="password (if asked)" autocomplete="current-password">
  <input id="room" placeholder="room" value="lobby" autocomplete="off">
  <button>Join</button>
</form>
<section id="chat">
  <div class="meta">Room <strong id="room-name"></strong> · <span id="count">0</span> online</div>
  <ul id="members"></ul>
  <ul id="messages"></ul>
  <form id="say">
    <input id="text" placeholder="say something" autocomplete="off">
    <button>Send</button>
  </form>
</section>
<script type="module" src="/chat.js"></script>
</body>
</html>
`;
