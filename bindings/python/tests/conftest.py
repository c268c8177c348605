"""Shared fixtures: real peer processes on loopback (see peers.py), stopped and resumed with
SIGSTOP/SIGCONT, always killed at the end of the test."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

PEERS = str(Path(__file__).with_name("peers.py"))


class Peer:
    """One peer process; ``port`` is where it listens (servers)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, PEERS, *args], stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.port: int | None = None
        # A reader thread, so that waiting for a line can time out (a bare readline cannot).
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put("")  # end of output

    def wait_for(self, prefix: str, timeout: float = 20.0) -> str:
        """The first line of the peer's output that starts with ``prefix`` (RuntimeError if the
        peer exits first, TimeoutError after ``timeout`` seconds: a test never hangs here)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"peer printed no {prefix!r} line within {timeout} s") from None
            if not line:
                raise RuntimeError(f"peer exited before printing {prefix!r}")
            if line.startswith(prefix):
                return line.strip()

    def stop(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def cont(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # SIGKILL ends a stopped process too, without letting it run first
        self.proc.wait()


@pytest.fixture
def spawn() -> Iterator:
    peers: list[Peer] = []

    def start(*args: str) -> Peer:
        peer = Peer(*args)
        peers.append(peer)
        if args[0] == "server":
            peer.port = int(peer.wait_for("PORT").split()[1])
        return peer

    yield start
    for peer in peers:
        peer.kill()
