#!/usr/bin/env python3
"""WebSocket peers for the bench's `websocket` group (python3-websockets).

    ws_peer.py server PORT
        an echo server on 127.0.0.1:PORT (every message back to its sender)
    ws_peer.py client URL TOKEN CONNS SECONDS [SIZE]
        CONNS clients, each sending a SIZE-byte message (default 32) and
        waiting for its echo, over and over for SECONDS; prints one JSON line:
        {"round_trips": N, "secs": S, "errors": E}
"""

import asyncio
import json
import sys
import time

try:
    import websockets
except ImportError:
    # Debian's package is installed for the system interpreter.
    sys.path.append("/usr/lib/python3/dist-packages")
    import websockets


async def serve(port):
    async def echo(ws, path=None):
        try:
            async for m in ws:
                await ws.send(m)
        except websockets.exceptions.ConnectionClosed:
            pass
    async with websockets.serve(echo, "127.0.0.1", port, ping_interval=None, max_size=None,
                                compression=None):
        await asyncio.Future()


async def clients(url, token, conns, secs, size):
    headers = [("Authorization", "Bearer " + token)] if token else []
    msg = b"m" * size
    counts = [0] * conns
    errors = 0

    async def one(i):
        nonlocal errors
        try:
            async with websockets.connect(url, extra_headers=headers, ping_interval=None,
                                          compression=None, open_timeout=10) as ws:
                await start.wait()
                while not stop.is_set():
                    await ws.send(msg)
                    if await ws.recv() != msg:
                        errors += 1
                        return
                    counts[i] += 1
        except Exception:
            errors += 1
    start, stop = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.ensure_future(one(i)) for i in range(conns)]
    await asyncio.sleep(0.5)  # every connection opened (handshakes are not timed)
    start.set()
    t0 = time.monotonic()
    base = sum(counts)
    await asyncio.sleep(secs)
    n = sum(counts) - base
    t = time.monotonic() - t0
    stop.set()
    await asyncio.gather(*tasks)
    print(json.dumps({"round_trips": n, "secs": t, "errors": errors}), flush=True)


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "server":
        asyncio.run(serve(int(sys.argv[2])))
    elif len(sys.argv) >= 6 and sys.argv[1] == "client":
        size = int(sys.argv[6]) if len(sys.argv) > 6 else 32
        asyncio.run(clients(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]),
                            size))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
