"""Python `websockets` reference client for the heartbeat-tokio interop tests.

Connects to the URL given as the first argument, prints `CONNECTED`, and echoes
every data message until the connection ends. Its own keepalive is off unless
--ping-interval is given, so only the server's heartbeat is under test.
"""

import argparse
import asyncio

from websockets.asyncio.client import connect


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--ping-interval", type=float, default=0.0, help="0 disables")
    args = p.parse_args()
    async with connect(args.url, ping_interval=args.ping_interval or None) as ws:
        print("CONNECTED", flush=True)
        async for msg in ws:
            await ws.send(msg)


if __name__ == "__main__":
    asyncio.run(main())
