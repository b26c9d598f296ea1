/**
 * The chat page's script, built into `chat_bundle.ts` by `deno task build`.
 * It uses the typed client with the example app's router type, so a wrong
 * event or payload here is a compile error.
 */

/// <reference lib="dom" />

import {
  type ClientState,
  DuplexClient,
  UnauthorizedError,
} from "@duplex-ws/client";
import type { ExampleRouter } from "../events.ts";

const $ = <T extends HTMLElement>(id: string) =>
  document.getElementById(id) as T;
const form = $<HTMLFormElement>("join");
const nameInput = $<HTMLInputElement>("name");
const passwordInput = $<HTMLInputElement>("password");
const roomInput = $<HTMLInputElement>("room");
const sayForm = $<HTMLFormElement>("say");
const textInput = $<HTMLInputElement>("text");
const log = $<HTMLUListElement>("messages");
const stateBadge = $<HTMLSpanElement>("state");
const count = $<HTMLSpanElement>("count");
const roomName = $<HTMLSpanElement>("room-name");
const membersList = $<HTMLUListElement>("members");

/** Messages of the room shown on joining it. */
const RECENT = 50;

let client: DuplexClient<ExampleRouter> | undefined;

/** A random publish key (`crypto.randomUUID` needs a secure context; this does not). */
function newKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
let room = "";

/** Shows who is in the room, from the client's presence map. */
function showMembers(): void {
  if (!client) return;
  const members = client.members(room);
  count.textContent = String(members.size);
  membersList.replaceChildren(
    ...[...members].map(([name, meta]) => {
      const { status, color } = meta as { status: string; color: string };
      const item = document.createElement("li");
      item.textContent = status ? `${name} (${status})` : name;
      item.style.color = color;
      return item;
    }),
  );
}

function show(state: ClientState, code?: number): void {
  // Over HTTP streaming (no WebSocket through this network), say so.
  const http = state === "open" && client?.transport === "sse";
  stateBadge.textContent = state +
    (state === "reconnecting" && code ? ` (${code})` : "") +
    (http ? " (HTTP)" : "");
  stateBadge.dataset.state = state;
  document.body.dataset.state = state;
  document.body.dataset.transport = client?.transport ?? "";
}

function line(text: string, kind = "message"): void {
  const item = document.createElement("li");
  item.className = kind;
  item.textContent = text;
  log.append(item);
  log.scrollTop = log.scrollHeight;
}

/** Logs in: the server sets its HttpOnly session cookie; script never sees it. */
async function login(name: string, password: string): Promise<string> {
  const response = await fetch("/login", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, password }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error?.message ?? "login failed");
  return body.user;
}

/**
 * A short-lived access token for the socket, traded for the session
 * cookie: on every connect and whenever the server asks for a refresh. No
 * session is "signed out"; a network failure is retried by the client.
 */
async function accessToken(): Promise<string> {
  const response = await fetch("/auth/token", { method: "POST" });
  if (response.status === 401 || response.status === 403) {
    throw new UnauthorizedError("Your session ended: log in again");
  }
  if (!response.ok) throw new Error(`token: HTTP ${response.status}`);
  return (await response.json()).token;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  room = roomInput.value.trim() || "lobby";
  let user: string;
  try {
    user = await login(nameInput.value.trim(), passwordInput.value);
  } catch (error) {
    stateBadge.textContent = (error as Error).message;
    return;
  }
  client?.close();
  client = new DuplexClient<ExampleRouter>({
    url: `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`,
    getToken: accessToken,
  });
  client.onState(show);
  show(client.state);
  client.on("chat.message", (m) => line(`${m.from}: ${m.text}`));
  client.on("presence.state", (p) => p.topic === room && showMembers());
  client.on("presence.diff", (p) => p.topic === room && showMembers());
  client.on(
    "topic.left",
    (p) => line(`removed from ${p.topic}: ${p.message}`, "error"),
  );
  client.onState((state) => {
    if (state === "open") line(`connected as ${user}`, "info");
    if (state === "reconnecting") {
      line("connection lost, reconnecting…", "info");
    }
    if (state === "unauthorized") {
      line(`signed out: ${client?.authError?.message ?? ""}`, "error");
    }
  });
  // After a reconnect the client rejoins with its last position: what was
  // said meanwhile arrives as ordinary messages, once, in order. When the
  // room's history could not reach back, say so.
  client.onRejoin((rejoin) => {
    if (rejoin.error) {
      line(`could not rejoin: ${rejoin.error.message}`, "error");
    } else if (rejoin.recovered === false) {
      line("some messages from while you were away may be missing", "info");
    }
  });
  roomName.textContent = room;
  document.body.dataset.joined = "true";
  try {
    // The room's last messages first, then live ones.
    await client.join("chat.join", { room, last: RECENT });
    showMembers();
  } catch (error) {
    const { code, message } = error as { code?: string; message: string };
    line(`could not join: ${code ? `${code}: ` : ""}${message}`, "error");
    document.body.dataset.refused = code ?? "error";
  }
});

sayForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = textInput.value.trim();
  if (!client || !text) return;
  textInput.value = "";
  try {
    // A key makes a resend after a lost connection harmless: the client
    // sends it again once rejoined, and the server answers the first one.
    await client.request(
      "chat.say",
      { room, text, key: newKey() },
      { resend: true },
    );
  } catch (error) {
    line(`not sent: ${(error as Error).message}`, "error");
  }
});
