"""Python `websockets` reference clients for the heartbeat interop tests.

Usage: clients.py URL N. Opens N connections to URL, each echoing every data
message, with no keepalive of its own (so only the server's heartbeat is under
test). Prints `CONNECTED <n>` once all N are open (or failed: `FAILED <i> <error>`),
`CLOSED <i> <code>` as each ends, then `ALL CLOSED`, and stays alive.
"""

import asyncio
import sys

from websockets.asyncio.client import connect


async def one(uri, i, ready):
    try:
        async with connect(uri, ping_interval=None, close_timeout=1) as ws:
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
    ready = asyncio.Semaphore(0)
    tasks = [asyncio.create_task(one(uri, i, ready)) for i in range(n)]
    for _ in range(n):
        await ready.acquire()
    print("CONNECTED", n, flush=True)
    await asyncio.gather(*tasks)
    print("ALL CLOSED", flush=True)
    await asyncio.Future()


asyncio.run(main())
