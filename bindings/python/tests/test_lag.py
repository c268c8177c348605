"""The process-wide lag meter: how late this process's heartbeat timers run, reported to every
machine before it judges a deadline (Machine.handle_local_lag)."""

from __future__ import annotations

import asyncio
import time

import websockets

from heartbeat import Config
from heartbeat.websockets import LagMeter, keepalive


def test_meter_keeps_the_worst_lateness_of_the_last_one_to_two_windows():
    meter = LagMeter(window=0.5)
    assert meter.current(10.0) == 0.0
    meter.record(due=10.0, now=10.1)
    meter.record(due=10.2, now=10.25)  # a smaller lateness in the same window does not lower it
    assert abs(meter.current(10.3) - 0.1) < 1e-9
    assert abs(meter.current(10.6) - 0.1) < 1e-9  # the next window still sees it
    assert meter.current(11.1) == 0.0  # two windows later it is forgotten
    meter.record(due=11.0, now=10.9)  # early is not late
    assert meter.current(11.1) == 0.0


def test_a_stalled_loop_is_measured_and_reported_to_the_other_machines():
    """The loop is blocked 1.5 s right after one connection's ping (time.sleep in its observer,
    the in-process stand-in for a stop; test_self_pause.py does the real SIGSTOP): the first
    deadline judged afterwards records the lateness, the machines judged after it are told
    (Machine.local_lag), and nobody is declared dead."""

    async def echo(ws):
        async for message in ws:
            await ws.send(message)

    async def main():
        async with websockets.serve(echo, "127.0.0.1", 0, ping_interval=None) as server:
            port = server.sockets[0].getsockname()[1]
            sockets = [await websockets.connect(f"ws://127.0.0.1:{port}", ping_interval=None) for _ in range(4)]
            config = Config(ping_interval=0.3, pong_timeout=0.5, liveness="pong")
            stalled = []

            def stall_once(event):
                if event["event"] == "ping" and event["seq"] == 3 and not stalled:
                    stalled.append(event["t"])
                    time.sleep(1.5)

            beats = [keepalive(ws, config, on_event=stall_once if i == 0 else None) for i, ws in enumerate(sockets)]
            reported = 0.0
            end = time.monotonic() + 3.0
            while time.monotonic() < end:
                reported = max([reported] + [b.machine.local_lag for b in beats])
                await asyncio.sleep(0.005)
            assert stalled
            assert sum(b.stats.pong_timeouts for b in beats) == 0, [b.stats for b in beats]
            # The first timer due in the stall is the pong deadline, 0.5 s after the ping: it
            # fires 1.5 - 0.5 s late (capped by max_local_lag, 5 s), and that is what is reported.
            assert 0.9 <= reported <= 5.0, reported
            for b in beats:
                await b.stop()
            for ws in sockets:
                await ws.close()

    asyncio.run(main())
