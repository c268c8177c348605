"""Python `websockets` reference clients for the heartbeat interop tests.

Usage: clients.py URL N [PING_EVERY]. Opens N connections to URL, each echoing
every data message, with no keepalive of its own (so only the server's heartbeat
is under test), or, given PING_EVERY (seconds), pinging the server that often
with no timeout (traffic that makes the server's sockets readable, never a
verdict of the client's). Prints `CONNECTED <n>` once all N are open (or failed: `FAILED <i> <error>`),
`CLOSED <i> <code>` as each ends, then `ALL CLOSED`, and stays alive.
"""

import asyncio
import sys

from websockets.asyncio.client import connect


async def one(uri, i, ready, ping_every):
    try:
        async with connect(uri, ping_interval=ping_every, ping_timeout=None, close_timeout=1) as ws:
            ready.release()
            try:
                async for message in ws:
                    await ws.send(message)
            except Exception:
                pass
            print("CLOSED", i, ws.close_code, flush=True)
    except Exception as e:
        print("FAILED", i, repr(e), flush=True)
        ready.release()


async def main():
    uri, n = sys.argv[1], int(sys.argv[2])
    ping_every = float(sys.argv[3]) if len(sys.argv) > 3 else None
    ready = asyncio.Semaphore(0)
    tasks = [asyncio.create_task(one(uri, i, ready, ping_every)) for i in range(n)]
    for _ in range(n):
        await ready.acquire()
    print("CONNECTED", n, flush=True)
    await asyncio.gather(*tasks)
    print("ALL CLOSED", flush=True)
    await asyncio.Future()


asyncio.run(main())
