/**
 * The chat page's script, built into `chat_bundle.ts` by `deno task build`.
 * It uses the typed client with the example app's router type, so a wrong
 * event or payload here is a compile error.
 */

/// <reference lib="dom" />

import { type ClientState, DuplexClient } from "@duplex-ws/duplex/client";
import type { ExampleRouter } from "../events.ts";

const $ = <T extends HTMLElement>(id: string) =>
  document.getElementById(id) as T;
const form = $<HTMLFormElement>("join");
const nameInput = $<HTMLInputElement>("name");
const roomInput = $<HTMLInputElement>("room");
const sayForm = $<HTMLFormElement>("say");
const textInput = $<HTMLInputElement>("text");
const log = $<HTMLUListElement>("messages");
const stateBadge = $<HTMLSpanElement>("state");
const count = $<HTMLSpanElement>("count");
const roomName = $<HTMLSpanElement>("room-name");
const membersList = $<HTMLUListElement>("members");

let client: DuplexClient<ExampleRouter> | undefined;
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
  stateBadge.textContent = state +
    (state === "reconnecting" && code ? ` (${code})` : "");
  stateBadge.dataset.state = state;
  document.body.dataset.state = state;
}

function line(text: string, kind = "message"): void {
  const item = document.createElement("li");
  item.className = kind;
  item.textContent = text;
  log.append(item);
  log.scrollTop = log.scrollHeight;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const user = nameInput.value.trim() || "guest";
  room = roomInput.value.trim() || "lobby";
  client?.close();
  const wsUrl = `${
    location.protocol === "https:" ? "wss" : "ws"
  }://${location.host}/`;
  client = new DuplexClient<ExampleRouter>({
    url: () => `${wsUrl}?user=${encodeURIComponent(user)}`,
  });
  client.onState(show);
  show(client.state);
  client.on("chat.message", (m) => line(`${m.from}: ${m.text}`));
  client.on("presence.state", (p) => p.topic === room && showMembers());
  client.on("presence.diff", (p) => p.topic === room && showMembers());
  client.onState((state) => {
    if (state === "open") line(`connected as ${user}`, "info");
    if (state === "reconnecting") {
      line("connection lost, reconnecting…", "info");
    }
  });
  roomName.textContent = room;
  document.body.dataset.joined = "true";
  try {
    await client.join("chat.join", { room });
    showMembers();
  } catch (error) {
    line(`could not join: ${(error as Error).message}`, "error");
  }
});

sayForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = textInput.value.trim();
  if (!client || !text) return;
  textInput.value = "";
  try {
    await client.request("chat.say", { room, text });
  } catch (error) {
    line(`not sent: ${(error as Error).message}`, "error");
  }
});
