"""Python `websockets` reference server for the heartbeat-tokio interop tests.

Prints `PORT <n>` once listening on 127.0.0.1 (port 0 = any free port, or --port),
then echoes every data message. With --json it answers
{"type":"ping","timestamp":t} with {"type":"pong","timestamp":t} instead of echoing,
and with --json-ping-interval it also sends its own JSON pings and counts the
matching pongs; the text message "pongs?" is answered with "pongs=<n>".
"""

import argparse
import asyncio
import json
import time

from websockets.asyncio.server import serve


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--ping-interval", type=float, default=0.0, help="0 disables")
    p.add_argument("--ping-timeout", type=float, default=0.0, help="0 disables")
    p.add_argument("--close-timeout", type=float, default=1.0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--json-ping-interval", type=float, default=0.0)
    return p.parse_args()


ARGS = parse_args()


async def json_pinger(ws, pending, matched):
    while True:
        await asyncio.sleep(ARGS.json_ping_interval)
        ts = time.time()
        pending.add(ts)
        await ws.send(json.dumps({"type": "ping", "timestamp": ts}))


async def handler(ws):
    pending, matched = set(), [0]
    pinger = None
    if ARGS.json and ARGS.json_ping_interval > 0:
        pinger = asyncio.create_task(json_pinger(ws, pending, matched))
    try:
        async for msg in ws:
            if ARGS.json and isinstance(msg, str):
                try:
                    obj = json.loads(msg)
                except ValueError:
                    obj = None
                if isinstance(obj, dict) and obj.get("type") == "ping":
                    await ws.send(json.dumps({"type": "pong", "timestamp": obj.get("timestamp")}))
                    continue
                if isinstance(obj, dict) and obj.get("type") == "pong":
                    if obj.get("timestamp") in pending:
                        pending.discard(obj.get("timestamp"))
                        matched[0] += 1
                    continue
                if msg == "pongs?":
                    await ws.send(f"pongs={matched[0]}")
                    continue
            await ws.send(msg)
    finally:
        if pinger:
            pinger.cancel()


async def main():
    async with serve(
        handler,
        "127.0.0.1",
        ARGS.port,
        ping_interval=ARGS.ping_interval or None,
        ping_timeout=ARGS.ping_timeout or None,
        close_timeout=ARGS.close_timeout,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())
