"""Python CPU cost per heartbeat round trip: heartbeat.websockets.keepalive next to websockets'
own keepalive, measured in one run against the same peer.

    python bench.py [--conns 200] [--interval 0.1] [--secs 3] [--rounds 5]

A websockets 17 echo server runs in its own process (its CPU is not counted). This process
opens --conns client connections and runs, one phase after the other: no keepalive (the
baseline), then --rounds times heartbeat's keepalive and websockets' own keepalive
(ping_interval = ping_timeout = --interval), alternating so that a busy machine weighs on both
alike. CPU is this process's user+system time (time.process_time) over each phase, minus the
baseline's; round trips are pongs received, counted identically for both implementations (a
counter on websockets' pong handling). The figure per implementation is the median over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

import websockets
from websockets.asyncio.client import ClientConnection

import heartbeat
from heartbeat.websockets import keepalive

PONGS = 0
_acknowledge = ClientConnection.acknowledge_pings


def _counting_acknowledge(self, data: bytes) -> None:
    global PONGS
    PONGS += 1
    _acknowledge(self, data)


ClientConnection.acknowledge_pings = _counting_acknowledge  # type: ignore[method-assign]


async def phase(uri: str, conns: int, secs: float, which: str, interval: float) -> tuple[int, float]:
    global PONGS
    kwargs = {"ping_interval": interval, "ping_timeout": interval} if which == "websockets" else {"ping_interval": None}
    sockets = [await websockets.connect(uri, **kwargs) for _ in range(conns)]
    beats = []
    if which == "heartbeat":
        config = heartbeat.Config(ping_interval=interval, pong_timeout=interval, liveness="pong")
        beats = [keepalive(ws, config) for ws in sockets]
    await asyncio.sleep(interval * 2)  # every connection past its first ping
    PONGS = 0
    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.sleep(secs)
    cpu, wall, pongs = time.process_time() - cpu, time.monotonic() - wall, PONGS
    if which != "none":
        # The counter is a patch on websockets' pong handling: a websockets release that
        # renamed acknowledge_pings would count nothing and make every figure meaningless.
        assert pongs > 0, f"no pong counted for {which}: is ClientConnection.acknowledge_pings still called?"
    dead = sum(b.stats.pong_timeouts for b in beats)
    for b in beats:
        await b.stop()
    for ws in sockets:
        await ws.close()
    if dead:
        print(f"  ({which}: {dead} pong timeouts during the run)")
    return pongs, cpu / wall * secs


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conns", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--secs", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    peers = Path(__file__).with_name("tests") / "peers.py"
    server = subprocess.Popen([sys.executable, str(peers), "server"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().split()[1])
        uri = f"ws://127.0.0.1:{port}"
        _, base_cpu = await phase(uri, args.conns, args.secs, "none", args.interval)
        runs: dict[str, list[tuple[int, float, float]]] = {"heartbeat": [], "websockets": []}
        for _ in range(args.rounds):
            for which in runs:
                pongs, cpu = await phase(uri, args.conns, args.secs, which, args.interval)
                runs[which].append((pongs, cpu, max(cpu - base_cpu, 0.0) / max(pongs, 1) * 1e6))
        rows = []
        for which, samples in runs.items():
            pongs, cpu, per = sorted(samples, key=lambda r: r[2])[len(samples) // 2]
            rows.append((which, pongs, cpu, per, [round(r[2], 1) for r in samples]))
    finally:
        server.kill()
        server.wait()
    print(f"{args.conns} connections, ping interval = pong timeout = {args.interval} s, {args.rounds} rounds of {args.secs} s, "
          f"baseline CPU {base_cpu * 1e3:.1f} ms; websockets {websockets.version.version}, Python {sys.version.split()[0]}")
    print(f"{'keepalive (median round)':<34}{'round trips':>12}{'CPU s':>9}{'CPU µs per round trip':>24}   every round")
    names = {"heartbeat": "heartbeat.websockets.keepalive", "websockets": "websockets (ping_interval)"}
    for which, pongs, cpu, per, each in rows:
        print(f"{names[which]:<34}{pongs:>12}{cpu:>9.3f}{per:>24.1f}   {each}")
    print(f"ratio heartbeat / websockets: {rows[0][3] / max(rows[1][3], 1e-9):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
