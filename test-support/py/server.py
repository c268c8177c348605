"""Python `websockets` reference server for the heartbeat interop tests.

Prints `PORT <n>` once listening on --host (default 127.0.0.1) at --port (0 = any
free port), then echoes every data message. Its own keepalive is off unless
--ping-interval is given (--ping-timeout 0 = no timeout). With --json it answers
{"type":"ping","timestamp":t} with {"type":"pong","timestamp":t} instead of
echoing, and with --json-ping-interval it also sends its own JSON pings and counts
the matching pongs; the text message "pongs?" is answered with "pongs=<n>".
With --tls-cert/--tls-key it serves wss://; --subprotocol (repeatable) lists the
subprotocols it accepts; --record prints `REQUEST <json>` for every accepted
connection (its path, Authorization header, offered and chosen subprotocols) and
`CLOSED <code>` when it ends (the code of the client's close frame, 1006 without one).
The text message "close-with <code>" makes it close the connection with that code.
"""

import argparse
import asyncio
import json
import ssl
import time

from websockets.asyncio.server import serve


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--ping-interval", type=float, default=0.0, help="0 disables")
    p.add_argument("--ping-timeout", type=float, default=0.0, help="0 disables")
    p.add_argument("--close-timeout", type=float, default=1.0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--json-ping-interval", type=float, default=0.0)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--subprotocol", action="append", default=[])
    p.add_argument("--record", action="store_true")
    return p.parse_args()


ARGS = parse_args()


async def json_pinger(ws, pending):
    while True:
        await asyncio.sleep(ARGS.json_ping_interval)
        ts = time.time()
        pending.add(ts)
        await ws.send(json.dumps({"type": "ping", "timestamp": ts}))


async def answer_json(ws, msg, pending, matched):
    """Handles a JSON heartbeat or the "pongs?" query; False for plain data."""
    try:
        obj = json.loads(msg)
    except ValueError:
        obj = None
    if isinstance(obj, dict) and obj.get("type") == "ping":
        await ws.send(json.dumps({"type": "pong", "timestamp": obj.get("timestamp")}))
        return True
    if isinstance(obj, dict) and obj.get("type") == "pong":
        if obj.get("timestamp") in pending:
            pending.discard(obj.get("timestamp"))
            matched[0] += 1
        return True
    if msg == "pongs?":
        await ws.send(f"pongs={matched[0]}")
        return True
    return False


async def handler(ws):
    if ARGS.record:
        headers = ws.request.headers
        print("REQUEST " + json.dumps({
            "path": ws.request.path,
            "authorization": headers.get("Authorization"),
            "offered": headers.get("Sec-WebSocket-Protocol"),
            "subprotocol": ws.subprotocol,
        }), flush=True)
    pending, matched = set(), [0]
    pinger = None
    if ARGS.json and ARGS.json_ping_interval > 0:
        pinger = asyncio.create_task(json_pinger(ws, pending))
    try:
        async for msg in ws:
            if ARGS.json and isinstance(msg, str) and await answer_json(ws, msg, pending, matched):
                continue
            if isinstance(msg, str) and msg.startswith("close-with "):
                await ws.close(int(msg.split()[1]))
                break
            await ws.send(msg)
    except Exception:
        pass  # a peer that vanished or was declared dead: nothing to report
    finally:
        if pinger:
            pinger.cancel()
        if ARGS.record:
            # The client's close code; 1006 when no close frame came.
            await ws.wait_closed()
            print(f"CLOSED {ws.close_code}", flush=True)


def tls_context():
    if not ARGS.tls_cert:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(ARGS.tls_cert, ARGS.tls_key)
    return ctx


async def main():
    extra = {}
    if ARGS.subprotocol:
        extra["subprotocols"] = ARGS.subprotocol
    async with serve(
        handler,
        ARGS.host,
        ARGS.port,
        ping_interval=ARGS.ping_interval or None,
        ping_timeout=ARGS.ping_timeout or None,
        close_timeout=ARGS.close_timeout,
        ssl=tls_context(),
        **extra,
    ) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        await asyncio.Future()


asyncio.run(main())
