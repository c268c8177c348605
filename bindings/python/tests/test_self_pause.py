"""Our own process SIGSTOPped right after a ping, the peer healthy: no false death.

Each run starts a client process (peers.py watch), waits for two pongs, then SIGSTOPs the
client as soon as it reports its next ping and SIGCONTs it 0.8-1.5 x (interval + timeout)
later. The peer answers through a 500 ms delaying proxy (well below the shortest pause, 1.6 s),
so the pong is still on its way when the stop lands, even on a busy machine where the stop
comes a few hundred milliseconds after the ping line, and sits in the client's socket buffer
when it resumes: the timers and the pong become due at the same moment. A false death is a
verdict in the 3.5 s after the resume. At most CONCURRENT runs go at once (2 busy cores).

The same runs are made, in the same test, with websockets' own keepalive (same interval and
timeout); its false-death count is printed for comparison. websockets waits for the pong
under asyncio.timeout(): on resume the loop reads the pong and fires the timeout in the same
iteration, the pong future is already resolved, and the task is cancelled anyway.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

from conftest import PEERS

INTERVAL, TIMEOUT = 1.0, 1.0
RUNS = 10
PROXY_DELAY = 0.5
CONCURRENT = 6
WATCH_AFTER_RESUME = INTERVAL + TIMEOUT + 1.5


def pause_for(run: int) -> float:
    """0.8 to 1.5 x (interval + timeout), spread evenly over the runs."""
    return (0.8 + 0.7 * run / (RUNS - 1)) * (INTERVAL + TIMEOUT)


def one_run(which: str, uri: str, pause: float) -> dict:
    child = subprocess.Popen(
        [sys.executable, PEERS, "watch", which, uri, str(INTERVAL), str(TIMEOUT)],
        stdout=subprocess.PIPE, text=True, bufsize=1,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(l) for l in child.stdout], daemon=True).start()
    result = {"which": which, "pause": pause, "dead": False, "stopped": False, "stalled_seq": None,
              "stalled_pong": "missing"}
    pongs = 0
    end = time.monotonic() + 30
    try:
        while time.monotonic() < end:
            try:
                event = json.loads(lines.get(timeout=max(0.01, end - time.monotonic())))
            except queue.Empty:
                break
            kind = event["event"]
            if kind == "pong":
                pongs += 1
                if result["stalled_seq"] is not None and event.get("seq") == result["stalled_seq"]:
                    # Matched with its own RTT spanning the stop: taken in as the answer. Matched
                    # without an RTT: a fresh probe went out first (the deadline was judged
                    # before the pong in the buffer). A short RTT: answered before the stop.
                    rtt = event.get("rtt")
                    result["stalled_pong"] = ("fresh probe first" if rtt is None else
                                              "taken in" if rtt >= 0.9 * pause else "before the stop")
            elif kind in ("dead", "closed") and result["stopped"]:
                result["dead"] = True
                break
            elif kind == "ping" and pongs >= 2 and not result["stopped"]:
                os.kill(child.pid, signal.SIGSTOP)
                result["stalled_seq"] = event.get("seq")
                time.sleep(pause)
                os.kill(child.pid, signal.SIGCONT)
                result["stopped"] = True
                end = time.monotonic() + WATCH_AFTER_RESUME
    finally:
        child.kill()  # SIGKILL ends a stopped process too
        child.wait()
    return result


def test_own_process_stop_right_after_a_ping_is_no_false_death(spawn):
    peer = spawn("server", "--delay", str(PROXY_DELAY))
    uri = f"ws://127.0.0.1:{peer.port}"
    results: list[dict] = []
    slots = threading.Semaphore(CONCURRENT)

    def run_one(which: str, run: int) -> None:
        with slots:
            results.append(one_run(which, uri, pause_for(run)))

    # Ours and websockets' alternate, so that the machine's load weighs on both alike.
    threads = [
        threading.Thread(target=run_one, args=(which, run))
        for run in range(RUNS)
        for which in ("ours", "websockets")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    ours = [r for r in results if r["which"] == "ours"]
    theirs = [r for r in results if r["which"] == "websockets"]
    assert all(r["stopped"] for r in results), results
    ours_dead = sum(r["dead"] for r in ours)
    theirs_dead = sum(r["dead"] for r in theirs)
    # Runs whose pong was still on its way at the stop (the proxy's 500 ms delay makes that
    # nearly every run) test the evidence-first step: the pong in the buffer must be taken in as
    # the answer to the stalled ping, before its deadline is judged.
    exercised = [r for r in ours if r["stalled_pong"] != "before the stop"]
    taken_in = sum(r["stalled_pong"] == "taken in" for r in exercised)
    print(
        f"\nown process SIGSTOPped 0.8-1.5 x (interval {INTERVAL} s + timeout {TIMEOUT} s) right after a ping, "
        f"peer healthy, {RUNS} runs each:\n"
        f"  heartbeat.websockets.keepalive: {ours_dead} false deaths; buffered pong taken in first in "
        f"{taken_in} of {len(exercised)} runs that had one\n"
        f"  websockets' own keepalive:      {theirs_dead} false deaths"
    )
    assert ours_dead == 0, ours
    assert len(exercised) >= RUNS // 2, ours
    assert taken_in == len(exercised), ours
