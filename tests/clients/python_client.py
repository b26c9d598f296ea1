"""A strict, independent RFC 6455 client: Python's `websockets` (Debian's
python3-websockets). Driven by tests/independent_clients_test.ts; run it with
/usr/bin/python3, which sees Debian's packages.

Usage: python_client.py ws://127.0.0.1:PORT
Prints one JSON line per check: {"check": name, "ok": bool, "detail": ...}.
Exit status 0 when every check passed.
"""

import asyncio
import json
import sys

import websockets
from websockets.exceptions import ConnectionClosed

URL = sys.argv[1]
results = []


def record(check, ok, detail=None):
    results.append({"check": check, "ok": bool(ok), "detail": detail})
    print(json.dumps(results[-1]), flush=True)


async def request(ws, event, data=None, id=1):
    message = {"event": event, "id": id}
    if data is not None:
        message["data"] = data
    await ws.send(json.dumps(message))
    while True:
        reply = json.loads(await ws.recv())
        if reply.get("id") == id:
            return reply


async def closed_by_server(ws):
    """Reads until the server closes; returns the close frame it sent, or None."""
    try:
        while True:
            await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd


def close_detail(rcvd):
    return None if rcvd is None else [rcvd.code, rcvd.reason]


async def main():
    # Handshake with subprotocols: the server's preferred one is chosen.
    async with websockets.connect(URL, subprotocols=["duplex.v1", "duplex.v2"]) as ws:
        record("subprotocol", ws.subprotocol == "duplex.v2", ws.subprotocol)
        reply = await request(ws, "echo", {"text": "héllo", "n": [1, 2.5, None]})
        record("text echo", reply == {"id": 1, "data": {"text": "héllo", "n": [1, 2.5, None]}}, reply)
        payload = bytes(range(256)) * 4
        await ws.send(payload)
        echoed = await ws.recv()
        record("binary echo", echoed == payload, len(echoed))
        pong = await ws.ping(b"duplex")
        latency = await asyncio.wait_for(pong, 5)
        record("ping/pong", latency is not None and latency >= 0, latency)
        error = await request(ws, "nope", id=2)
        record("error envelope", error.get("error", {}).get("code") == "UNKNOWN_EVENT", error)
        # The client closes with its own code.
        await ws.close(code=4001, reason="python says bye")
        record("client close", ws.close_code == 4001, ws.close_code)

    # The server closes with an application code; websockets validates it.
    async with websockets.connect(URL) as ws:
        await ws.send(json.dumps({"event": "close", "data": {"code": 4000, "reason": "server says bye"}}))
        rcvd = await closed_by_server(ws)
        record("server close", close_detail(rcvd) == [4000, "server says bye"], close_detail(rcvd))

    # A message over the size limit closes with 1009.
    async with websockets.connect(URL, max_size=None) as ws:
        await ws.send(json.dumps({"event": "echo", "data": "x" * 70000}))
        rcvd = await closed_by_server(ws)
        record("1009 too big", rcvd is not None and rcvd.code == 1009, close_detail(rcvd))

    # Shutdown: 1001 with its reason (the test triggers it on the marker line).
    async with websockets.connect(URL) as ws:
        await request(ws, "echo", "ready")
        print(json.dumps({"marker": "waiting for shutdown"}), flush=True)
        rcvd = await closed_by_server(ws)
        record("server shutdown", close_detail(rcvd) == [1001, "server shutting down"], close_detail(rcvd))


asyncio.run(asyncio.wait_for(main(), 30))
sys.exit(0 if results and all(r["ok"] for r in results) else 1)
