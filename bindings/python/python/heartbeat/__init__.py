"""heartbeat: stall-aware WebSocket keepalive, heartbeat-core's sans-IO machine for Python.

* :class:`Config` - the validated configuration (seconds as floats, like websockets);
* :class:`Machine` - the machine itself, for any Python stack: feed it events with your
  clock's time, execute the actions it returns, sleep until :attr:`Machine.next_deadline`;
* :mod:`heartbeat.websockets` - the driver for websockets 17: ``keepalive``, ``connect``, ``serve``.

:class:`PeerUnresponsive` (what ``recv()`` raises after a pong-timeout verdict) lives in
:mod:`heartbeat.websockets` and is importable from here too; it subclasses websockets'
``ConnectionClosedError``, so importing it imports websockets.
"""

from typing import Any

from heartbeat._core import (
    MAX_CONTROL_PAYLOAD,
    Config,
    ConfigError,
    Connect,
    Dead,
    Deadline,
    DeathReason,
    Disconnect,
    Health,
    Machine,
    PingOutcome,
    PongOutcome,
    Rtt,
    SendClose,
    SendPing,
    SendPong,
    State,
    Stats,
    TimerKind,
)

__all__ = [
    "MAX_CONTROL_PAYLOAD",
    "Config",
    "ConfigError",
    "Connect",
    "Dead",
    "Deadline",
    "DeathReason",
    "Disconnect",
    "Health",
    "Machine",
    "PeerUnresponsive",
    "PingOutcome",
    "PongOutcome",
    "Rtt",
    "SendClose",
    "SendPing",
    "SendPong",
    "State",
    "Stats",
    "TimerKind",
]


def __getattr__(name: str) -> Any:
    # PeerUnresponsive subclasses websockets' ConnectionClosedError: import websockets only
    # when it is asked for, so the machine alone works without websockets installed.
    if name == "PeerUnresponsive":
        from heartbeat.websockets import PeerUnresponsive

        return PeerUnresponsive
    raise AttributeError(f"module 'heartbeat' has no attribute {name!r}")
