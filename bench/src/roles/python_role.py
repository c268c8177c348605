# The Python websockets 17 server and client of heartbeat-bench: the library's own
# keepalive (ping_interval / ping_timeout) on every connection, counted through a
# connection subclass whose ping() records each pong's latency. Same stdin/stdout
# protocol as the Rust children (see bench/src/child.rs).
#
# argv: server|client CONNS INTERVAL_S TIMEOUT_S ADDRS PORT LIFETIME_S RAMP_S
import asyncio
import json
import logging
import os
import sys
import time

from websockets.asyncio.client import ClientConnection, connect
from websockets.asyncio.server import ServerConnection, serve

logging.disable(logging.CRITICAL)

WHICH = sys.argv[1]
CONNS = int(sys.argv[2])
INTERVAL = float(sys.argv[3])
TIMEOUT = float(sys.argv[4])
ADDRS = ["127.0.0.%d" % i for i in range(1, max(1, int(sys.argv[5])) + 1)]
PORT = int(sys.argv[6])
LIFETIME = float(sys.argv[7])
RAMP = float(sys.argv[8])
CONCURRENCY = 256


class Counters:
    def __init__(self):
        self.pongs = 0
        self.timeouts = 0
        self.lost = 0
        self.opened = 0
        self.live = 0
        self.first = 0
        self.mark()

    def mark(self):
        self.pongs = 0
        # The same log-linear buckets as bench/src/hist.rs (a list of every
        # sample would grow the RSS being measured).
        self.buckets = [0] * BUCKETS
        self.max = 0

    def pong(self, fut):
        if fut.cancelled() or fut.exception() is not None:
            return
        self.pongs += 1
        us = int(fut.result() * 1e6)
        self.buckets[index(us)] += 1
        if us > self.max:
            self.max = us

    def report(self, ev):
        samples = sum(self.buckets)

        def at(q):
            if samples == 0:
                return 0
            rank = max(1, int(samples * q + 0.999999))
            seen = 0
            for i, c in enumerate(self.buckets):
                seen += c
                if seen >= rank:
                    return min(midpoint(i), self.max)
            return self.max

        return {
            "ev": ev,
            "pongs": self.pongs,
            "timeouts": self.timeouts,
            "lost": self.lost,
            "opened": self.opened,
            "held": self.live,
            "samples": samples,
            "p50_us": at(0.50),
            "p99_us": at(0.99),
            "max_us": self.max,
        }


BUCKETS = 64 + 34 * 32


def index(us):
    if us < 64:
        return max(us, 0)
    exp = us.bit_length() - 1
    sub = (us >> (exp - 5)) & 31
    return min(64 + (exp - 6) * 32 + sub, BUCKETS - 1)


def midpoint(i):
    if i < 64:
        return i
    exp = (i - 64) // 32 + 6
    sub = (i - 64) % 32
    width = 1 << (exp - 5)
    return (1 << exp) + sub * width + width // 2


C = Counters()


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


class CountingServer(ServerConnection):
    async def ping(self, data=None):
        waiter = await super().ping(data)
        waiter.add_done_callback(C.pong)
        return waiter


class CountingClient(ClientConnection):
    async def ping(self, data=None):
        waiter = await super().ping(data)
        waiter.add_done_callback(C.pong)
        return waiter


def ended(ws):
    C.live -= 1
    C.lost += 1
    # Our own keepalive verdict: we sent 1011 "keepalive ping timeout" first (a
    # peer's close is echoed with its code and reason, so check who began).
    p = ws.protocol
    sent = p.close_sent
    ours = p.close_rcvd_then_sent is not True
    if ours and sent is not None and sent.code == 1011 and "keepalive" in sent.reason:
        C.timeouts += 1


async def handler(ws):
    C.opened += 1
    C.live += 1
    try:
        await ws.wait_closed()
    finally:
        ended(ws)


async def client_conn(uri, gate, at):
    await asyncio.sleep(at)
    await gate.acquire()
    first = True
    async for ws in connect(
        uri,
        create_connection=CountingClient,
        ping_interval=INTERVAL,
        ping_timeout=TIMEOUT,
        open_timeout=30,
        compression=None,
    ):
        if first:
            first = False
            gate.release()
            C.first += 1
            if C.first == CONNS:
                emit({"ev": "opened"})
        C.opened += 1
        C.live += 1
        try:
            await ws.wait_closed()
        finally:
            ended(ws)


async def main():
    loop = asyncio.get_running_loop()
    loop.call_later(LIFETIME, lambda: os._exit(3))
    commands = asyncio.Queue()

    def on_stdin():
        line = sys.stdin.readline()
        commands.put_nowait(line.strip() if line else "quit")

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    tasks = []
    if WHICH == "server":
        servers = []
        port = PORT
        for host in ADDRS:
            s = await serve(
                handler,
                host,
                port,
                create_connection=CountingServer,
                ping_interval=INTERVAL,
                ping_timeout=TIMEOUT,
                compression=None,
                backlog=4096,
            )
            servers.append(s)
            port = s.sockets[0].getsockname()[1]
        emit({"ev": "listening", "port": port})
    else:
        emit({"ev": "ready"})
    while True:
        cmd = await commands.get()
        if cmd == "connect":
            gate = asyncio.Semaphore(CONCURRENCY)
            for i in range(CONNS):
                uri = "ws://%s:%d/" % (ADDRS[i % len(ADDRS)], PORT)
                at = RAMP * i / CONNS
                tasks.append(asyncio.create_task(client_conn(uri, gate, at)))
        elif cmd == "mark":
            C.mark()
            emit(C.report("mark"))
        elif cmd == "report":
            emit(C.report("report"))
        elif cmd == "quit":
            os._exit(0)


asyncio.run(main())
