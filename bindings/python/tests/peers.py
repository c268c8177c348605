"""Real peers for the tests, each run as its own process so it can be SIGSTOPped.

    python peers.py server [--delay S] [--stream BYTES]   # websockets 17 echo server; prints "PORT n"
    python peers.py client URI                            # plain websockets client (answers pings)
    python peers.py watch ours|websockets URI I T         # a client whose keepalive events are JSON lines

The server's pings are off (ping_interval=None): it only answers, like a healthy peer. With
--delay, clients reach it through a proxy in the same process that holds every chunk from
the server for S seconds (a healthy peer on a slower path), and "PORT" is the proxy's.
With --stream, the server sends each client a binary message of BYTES every 10 ms.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time

import websockets


async def echo(ws, stream: int) -> None:
    async def pump() -> None:
        chunk = b"x" * stream
        while True:
            await ws.send(chunk)
            await asyncio.sleep(0.01)

    pumping = asyncio.ensure_future(pump()) if stream else None
    try:
        async for message in ws:
            await ws.send(message)
    except websockets.ConnectionClosed:
        pass
    finally:
        if pumping is not None:
            pumping.cancel()


async def delaying_proxy(target_port: int, delay: float) -> int:
    async def pipe(reader, writer, hold: float) -> None:
        try:
            while data := await reader.read(65536):
                if hold:
                    await asyncio.sleep(hold)
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def handle(client_reader, client_writer) -> None:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", target_port)
        # Ordered delay: one pipe per direction, so frames keep their order.
        asyncio.ensure_future(pipe(client_reader, server_writer, 0.0))
        asyncio.ensure_future(pipe(server_reader, client_writer, delay))

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server.sockets[0].getsockname()[1]


async def run_server(delay: float, stream: int) -> None:
    async with websockets.serve(lambda ws: echo(ws, stream), "127.0.0.1", 0, ping_interval=None) as server:
        port = server.sockets[0].getsockname()[1]
        if delay:
            port = await delaying_proxy(port, delay)
        print(f"PORT {port}", flush=True)
        await asyncio.Future()


async def run_client(uri: str) -> None:
    async with websockets.connect(uri, ping_interval=None) as ws:
        print("OPEN", flush=True)
        async for _ in ws:
            pass


def emit(**event) -> None:
    event["t"] = time.monotonic()
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


async def watch_ours(uri: str, interval: float, timeout: float) -> None:
    import heartbeat
    from heartbeat.websockets import keepalive

    config = heartbeat.Config(ping_interval=interval, pong_timeout=timeout, liveness="pong")
    async with websockets.connect(uri, ping_interval=None) as ws:
        async with keepalive(ws, config, on_event=lambda e: emit(**e)) as hb:
            try:
                async for _ in ws:
                    pass
            except websockets.ConnectionClosed as exc:
                emit(event="closed", error=type(exc).__name__)
            emit(event="stats", **hb.stats.as_dict())


class _KeepaliveLog(logging.Handler):
    """websockets logs its keepalive at DEBUG: the only view of its pings there is."""

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "sent keepalive ping" in message:
            emit(event="ping")
        elif "received keepalive pong" in message:
            emit(event="pong")
        elif "timed out waiting for keepalive pong" in message:
            emit(event="dead", reason="pong_timeout")


async def watch_websockets(uri: str, interval: float, timeout: float) -> None:
    log = logging.getLogger("websockets.client")
    log.setLevel(logging.DEBUG)
    log.addHandler(_KeepaliveLog())
    log.propagate = False
    async with websockets.connect(uri, ping_interval=interval, ping_timeout=timeout) as ws:
        try:
            async for _ in ws:
                pass
        except websockets.ConnectionClosed as exc:
            emit(event="closed", error=type(exc).__name__)


def main() -> None:
    args = sys.argv[1:]
    if args[0] == "server":
        delay = float(args[args.index("--delay") + 1]) if "--delay" in args else 0.0
        stream = int(args[args.index("--stream") + 1]) if "--stream" in args else 0
        asyncio.run(run_server(delay, stream))
    elif args[0] == "client":
        asyncio.run(run_client(args[1]))
    elif args[0] == "watch":
        which, uri, interval, timeout = args[1], args[2], float(args[3]), float(args[4])
        run = watch_ours if which == "ours" else watch_websockets
        asyncio.run(run(uri, interval, timeout))


if __name__ == "__main__":
    main()
