/**
 * The one place npm's `ws` is named and its version pinned: the `./node`
 * transport's WebSocket server (and, in the tests, an independent client).
 *
 * @module
 */

export { default as WebSocket, WebSocketServer } from "npm:ws@8.23.0";
