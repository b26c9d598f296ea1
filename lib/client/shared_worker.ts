/**
 * The shared-socket worker (`sharedWorker` client option): a
 * `SharedWorker` that holds the one connection of every tab that connects
 * to it. Each tab's port sends its sockets' hellos, frames and closes; what
 * the connection answers goes to every port, and each tab keeps what is its
 * own (`shared_socket.ts`). The worker lives while any tab is open, so a tab
 * that closes hands nothing over. Built into `CLIENT_WORKER_JS` and served
 * by `serveClient` at `/duplex/client.worker.js`.
 *
 * @module
 */

import { SharedHolder, type SharedMessage } from "./shared_holder.ts";

/** What a shared worker's global scope has beyond a window's. */
interface SharedWorkerScope {
  onconnect: ((event: MessageEvent) => void) | null;
}

const ports = new Set<MessagePort>();
const holder = new SharedHolder((message) => {
  for (const port of ports) port.postMessage(message);
}, { WebSocket });

(globalThis as unknown as SharedWorkerScope).onconnect = (
  { ports: [port] },
) => {
  ports.add(port);
  port.onmessage = ({ data }: MessageEvent<SharedMessage | { k: "bye" }>) => {
    if (data.k === "bye") ports.delete(port);
    else holder.receive(data);
  };
};
