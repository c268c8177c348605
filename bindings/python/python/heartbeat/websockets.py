"""Stall-aware keepalive for `websockets` 17 (asyncio), driven by :class:`heartbeat.Machine`.

Three entry points, each replacing code the classic keepalive guide writes by hand:

* :func:`keepalive` runs the heartbeat for one open connection::

      async with heartbeat.websockets.keepalive(ws, Config(ping_interval=5, pong_timeout=5)) as hb:
          async for message in ws: ...     # raises heartbeat.PeerUnresponsive at the verdict
          print(hb.rtt.smoothed, hb.health, hb.stats.pongs_matched)

* :func:`connect` is ``websockets.connect`` as an async iterator of live connections, reconnecting
  with the machine's backoff and jitter (each attempt bounded by ``connect_timeout``).
* :func:`serve` is ``websockets.serve`` with a machine per client, the live-client set
  (:attr:`Server.clients`) kept for you, and a non-blocking :meth:`Server.broadcast`.

How the driver uses websockets (public API only, plus one pinned detail):

* a ping is ``await ws.ping(payload)``, run in a task of its own: it returns once the frame was
  handed to the transport and the write buffer drained, which is when ``Machine.handle_ping_sent``
  is due; the future it returns resolves on the pong. Behind a full write buffer (a peer that
  stopped reading while we send) it may never return, so the driver keeps judging deadlines
  meanwhile: until the ping is reported sent the machine runs the pong timer from its emission;
* websockets has no documented hook for inbound frames (its ``Extension.decode`` sees every frame
  but must be negotiated with the peer), so the default evidence is ``liveness="pong"``. With
  ``liveness="any"``, messages read through :meth:`Heartbeat.recv` (or reported with
  :meth:`Heartbeat.saw_traffic`) count as proof of life too;
* on a verdict the connection is closed with ``Config.dead_close_code`` and the application's
  pending ``recv()`` raises :class:`PeerUnresponsive`, a ``ConnectionClosedError``. websockets
  raises ``Connection.close_exc`` from ``recv()``; the driver gives the connection a subclass whose
  ``close_exc`` carries the verdict. That property is not documented API: the tests pin it
  (websockets 17) by asserting the exception ``recv()`` raises.

Stall awareness: a process that was stopped (SIGSTOP, a laptop asleep, a saturated loop) wakes with
its timers overdue and the peer's pong possibly already in its socket buffer. Before a pong
deadline is judged the driver lets the event loop read what the socket holds (websockets resolves
the pong futures as it parses) and takes in every resolved pong; only then does the machine decide,
with the process's measured timer lateness reported as local lag. websockets' own keepalive
cancels its pong wait from the same loop iteration that reads the pong, so it declares a healthy
peer dead after such a stall (``tests/test_self_pause.py`` counts both).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import math
import struct
import termios
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from typing import Any, cast

import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as _ws_connect
from websockets.asyncio.server import ServerConnection
from websockets.asyncio.server import serve as _ws_serve
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.protocol import State as _WsState

from heartbeat._core import (
    Config,
    Connect,
    Dead,
    DeathReason,
    Disconnect,
    Health,
    Machine,
    Rtt,
    SendClose,
    SendPing,
    State,
    Stats,
    TimerKind,
)

__all__ = [
    "Heartbeat",
    "LagMeter",
    "PeerUnresponsive",
    "Reconnecting",
    "Server",
    "connect",
    "keepalive",
    "serve",
]

logger = logging.getLogger("heartbeat")

Event = dict[str, Any]
"""One observer event: ``{"event": name, "t": loop time, ...}`` (see :class:`Heartbeat`)."""


class PeerUnresponsive(ConnectionClosedError):
    """The heartbeat declared the peer dead: no pong within the pong timeout.

    A :class:`websockets.exceptions.ConnectionClosedError`, so code that handles
    ``ConnectionClosed`` keeps working; ``verdict`` is the machine's
    :class:`heartbeat.DeathReason` and ``waited`` how long it waited (seconds). (``reason``
    stays websockets' deprecated close-reason alias.)
    """

    def __init__(self, rcvd: Any, sent: Any, rcvd_then_sent: bool | None = None, *, verdict: DeathReason | None = None) -> None:
        super().__init__(rcvd, sent, rcvd_then_sent)
        self.verdict = verdict
        self.waited: float | None = verdict.waited if verdict is not None else None

    def __str__(self) -> str:
        """The verdict, then websockets' description of the close."""
        base = super().__str__()
        return f"{self.verdict}; {base}" if self.verdict is not None else base


class LagMeter:
    """How late this process's heartbeat timers run: the worst lateness over the last one to
    two windows, shared by every connection of the process.

    A stopped or starved process runs every timer late; the machine cannot tell that from a
    silent peer unless told (``Machine.handle_local_lag``). Each driver reports the meter's
    figure before judging a deadline, then records its own deadline's lateness, so one
    connection's late wake-up extends the others' pong deadlines (capped by
    ``Config.max_local_lag``), while a deadline's own lateness is left to the machine's stall
    allowance. The same design as the Rust adapters' ``LagMeter``.
    """

    def __init__(self, window: float = 0.5) -> None:
        self.window = window
        self._slots: list[tuple[int, float]] = [(-2, 0.0), (-2, 0.0)]

    def record(self, due: float, now: float) -> None:
        """A timer due at ``due`` ran at ``now``."""
        late = now - due
        if late <= 0.0:
            return
        bucket = int(now / self.window)
        seen_bucket, worst = self._slots[bucket % 2]
        if seen_bucket != bucket or late > worst:
            self._slots[bucket % 2] = (bucket, late)

    def current(self, now: float) -> float:
        """The worst lateness recorded in the current and the previous window, in seconds."""
        bucket = int(now / self.window)
        return max((w for b, w in self._slots if b == bucket or b + 1 == bucket), default=0.0)


LAG = LagMeter()
"""The process-wide meter every driver shares (one event loop per process is the norm)."""

EVIDENCE_TURNS = 64
"""The most event-loop turns a due pong deadline waits for the socket's buffered bytes to be
parsed (websockets reads at most 256 KiB per turn); reading paused by backpressure ends it."""

WAKE_GRANULARITY = 0.005
"""A deadline that moved earlier by less than this (seconds; at most a twentieth of the ping
interval) keeps the sleep already armed."""


def _looks_like_json_heartbeat(message: str) -> bool:
    """A cheap test before parsing: heartbeat messages are short JSON objects with a type."""
    return len(message) < 128 and message.startswith("{") and '"type"' in message


class Heartbeat:
    """The heartbeat of one websockets connection (or, from :func:`connect`, of a reconnecting
    client across its connections): the machine plus the task that drives it.

    Read ``rtt`` (last/smoothed/min seconds), ``health`` (as of the machine's last event),
    ``stats``, ``state`` and ``reason`` at any time. ``on_event`` (if given) is called with a
    dict for each ``ping``, ``pong``, ``dead``, ``connecting``, ``connected``,
    ``connect_failed`` and ``reconnecting`` event, for logs and tests.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        json_heartbeat: bool = False,
        on_event: Callable[[Event], None] | None = None,
        seed: int | None = None,
    ) -> None:
        self.config = config if config is not None else Config(liveness="pong")
        self.machine = Machine(self.config, seed)
        self.json_heartbeat = json_heartbeat
        self.on_event = on_event
        self.ws: ClientConnection | ServerConnection | None = None
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[None] | None = None
        self._sleeper: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._sleeping_until = math.inf
        self._late_timer: tuple[float, float] | None = None  # (due, fired) of the last timer
        self._woken = True  # take in the connection's state on the first turn
        self._granularity = min(WAKE_GRANULARITY, self.config.ping_interval / 20)
        self._pending: dict[asyncio.Future[float], bytes] = {}
        self._ping_task: asyncio.Task[None] | None = None  # the latest ping being written
        self._ping_tasks: set[asyncio.Task[None]] = set()  # every one still running
        self._json_pending: dict[float, bytes] = {}
        self._closed_task: asyncio.Task[None] | None = None
        self._attempt: asyncio.Task[Any] | None = None
        self._opener: Callable[[], Coroutine[Any, Any, Any]] | None = None
        self._reported_closed = False
        self._abort_after_close = False
        self._evidence_for: float | None = None
        self._dead_callbacks: list[Callable[[DeathReason], None]] = []
        self._connected: asyncio.Queue[Any] | None = None

    # ----- what the application reads ---------------------------------------------------------

    @property
    def rtt(self) -> Rtt:
        """Round-trip figures from matched pongs (seconds): ``last``, ``smoothed``, ``min``."""
        return self.machine.rtt

    @property
    def health(self) -> Health:
        """``Health.HEALTHY``, ``SUSPECT`` (a pong overdue, or a stall forced a fresh probe) or ``DEAD``."""
        return self.machine.health

    @property
    def stats(self) -> Stats:
        """The machine's counters (pings sent, pongs matched, missed deadlines, ...)."""
        return self.machine.stats

    @property
    def state(self) -> State:
        """Where the machine stands, with the reason after a death."""
        return self.machine.state

    @property
    def reason(self) -> DeathReason | None:
        """Why the last connection ended, once it did."""
        return self.machine.reason

    # ----- what the application may call ------------------------------------------------------

    async def recv(self) -> str | bytes:
        """The next application message of the connection.

        Use it instead of ``ws.recv()`` when inbound messages should count as proof of life
        (``liveness="any"``) or with the JSON heartbeat, whose messages it answers and hides.
        """
        ws = self._require_ws()
        while True:
            message = await ws.recv()
            now = self._loop.time()
            self.machine.handle_frame(now)
            if self.json_heartbeat and isinstance(message, str) and _looks_like_json_heartbeat(message):
                if await self._json_heartbeat_message(ws, message, now):
                    continue
            return message

    def __aiter__(self) -> AsyncIterator[str | bytes]:
        """``async for message in hb``: :meth:`recv` until the connection closes."""
        return self._messages()

    async def _messages(self) -> AsyncIterator[str | bytes]:
        """Messages until the connection closes (a close ends the iteration quietly)."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                yield await self.recv()

    def saw_traffic(self) -> None:
        """Report an inbound message the application read itself (proof of life under ``liveness="any"``)."""
        self.machine.handle_frame(self._loop.time())

    def on_dead(self, callback: Callable[[DeathReason], None]) -> None:
        """Call ``callback(reason)`` at each verdict (before the close handshake runs)."""
        self._dead_callbacks.append(callback)

    async def close(self, code: int = 1000) -> None:
        """Close the connection with ``code`` and stop: no reconnection afterwards."""
        self.machine.close(self._loop.time(), code)
        self._wake()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    # ----- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Heartbeat:
        """The heartbeat runs from :func:`keepalive` on; the block only bounds it."""
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stops the heartbeat (the connection itself is left as it is)."""
        await self.stop()

    def start_open(self, ws: ClientConnection | ServerConnection) -> None:
        """Drive the heartbeat of ``ws``, already open (what :func:`keepalive` calls)."""
        self._attach(ws)
        self.machine.handle_connected(self._loop.time())
        self._emit("connected")
        self._task = self._loop.create_task(self._run(), name="heartbeat")

    def start_connecting(self, opener: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Open connections with ``opener`` whenever the machine says so (what :func:`connect` calls)."""
        self._opener = opener
        self._connected = asyncio.Queue()
        self.machine.connect(self._loop.time())
        self._task = self._loop.create_task(self._run(), name="heartbeat")

    async def stop(self) -> None:
        """Stop driving; the connection itself is left as it is."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._attempt is not None and not self._attempt.done():
            self._attempt.cancel()
        self._cancel_ping()
        if self._closed_task is not None and not self._closed_task.done():
            self._closed_task.cancel()

    # ----- the driver ---------------------------------------------------------------------------

    async def _run(self) -> None:
        """Execute actions, take in evidence, sleep until the deadline, judge it: repeat.

        The steady state (one ping, one pong, one sleep per round trip) touches no Python
        object it does not need: the deadline is read as a float, and the connection's
        attempt and end are looked at only after a callback said something happened.
        """
        m = self.machine
        loop = self._loop
        try:
            while True:
                while (action := m.poll_action()) is not None:
                    if type(action) is SendPing:
                        self._start_ping(action.payload)
                    else:
                        await self._execute(action)
                if self._woken:
                    self._woken = False
                    self._take_in()  # may queue actions: the deadline is then "now"
                at = m.next_deadline
                if at is None:
                    return  # finished
                now = loop.time()
                if at > now:
                    if self._late_timer is not None:
                        # How late the timer that woke this turn fired, recorded once the turn
                        # judged what was due: a stall (the process stopped, a blocked loop)
                        # is measured whatever path the overdue deadline took (an event may
                        # have made the machine act on it before the driver judged it).
                        LAG.record(*self._late_timer)
                        self._late_timer = None
                    await self._sleep_until(at)
                    continue
                deadline = m.poll_timeout()
                if deadline is None or deadline.kind is TimerKind.ACTIONS:
                    continue
                if deadline.kind is TimerKind.PONG_TIMEOUT and self._evidence_for != deadline.at:
                    # Evidence before the verdict: let the loop parse what the socket holds.
                    self._evidence_for = deadline.at
                    await self._take_evidence()
                    continue
                # Other timers' lateness says how late this process runs; this deadline's own
                # lateness is the machine's stall allowance's business.
                m.handle_local_lag(now, LAG.current(now))
                m.handle_timeout(now)
                LAG.record(deadline.at, loop.time())
                self._evidence_for = None
        except asyncio.CancelledError:
            raise
        except Exception:  # pragma: no cover - a bug here must not pass silently
            logger.exception("heartbeat driver failed")
            raise

    async def _execute(self, action: object) -> None:
        """Executes one action other than a ping, in the machine's order."""
        if isinstance(action, Dead):
            self._on_verdict(action.reason)
        elif isinstance(action, SendClose):
            await self._send_close(action.code, action.reason)
        elif isinstance(action, Disconnect):
            self._disconnect()
        elif isinstance(action, Connect):
            self._start_attempt(action.attempt)
        # SendPong never comes: websockets answers the peer's pings itself, and the
        # machine is never fed them.

    def _start_ping(self, payload: bytes) -> None:
        """Sends one ping from a task of its own, so that a ping stuck behind a full write
        buffer does not stop the driver from judging the pong deadline (which the machine
        runs from the ping's emission until it hears the ping was sent)."""
        ws = self.ws
        if ws is None or ws.state is not _WsState.OPEN:
            return  # the close is being noticed; the machine hears of it next turn
        task = self._loop.create_task(self._send_ping(ws, payload), name="heartbeat ping")
        self._ping_task = task
        self._ping_tasks.add(task)
        task.add_done_callback(self._ping_tasks.discard)

    async def _send_ping(self, ws: Any, payload: bytes) -> None:
        """Sends one ping (protocol or JSON) and reports it handed to the transport."""
        try:
            if self.json_heartbeat:
                stamp = self._loop.time()
                self._json_pending[stamp] = payload
                await ws.send(json.dumps({"type": "ping", "timestamp": stamp}))
            else:
                waiter = cast("asyncio.Future[float]", await ws.ping(payload))
                self._pending[waiter] = payload
                waiter.add_done_callback(self._on_pong)
        except ConnectionClosed:
            return
        except Exception:  # pragma: no cover - a bug here must not pass silently
            logger.exception("heartbeat ping failed")
            return
        if self._ping_task is not asyncio.current_task() or self.ws is not ws:
            return  # a newer ping (a fresh probe after a stall) or connection took over
        now = self._loop.time()
        self.machine.handle_ping_sent(now)
        self._emit("ping", seq=int.from_bytes(payload, "big"))

    def _on_pong(self, waiter: asyncio.Future[float]) -> None:
        """A pong future resolved (or failed because the connection closed)."""
        payload = self._pending.pop(waiter, None)
        if payload is None:
            return  # already taken in by the evidence step
        if waiter.cancelled() or waiter.exception() is not None:
            self._wake()
            return
        self._pong(payload, self._loop.time())

    def _pong(self, payload: bytes, now: float) -> None:
        """Feeds one pong to the machine; re-arms the sleep if the next deadline moved earlier."""
        outcome = self.machine.handle_pong(now, payload)
        if outcome.matched:
            self._emit("pong", seq=outcome.seq, rtt=outcome.rtt)
            # The pong disarmed the pong deadline; the next ping may be due well before it
            # (pong timeout > interval). A ping due only slightly earlier (the schedule is
            # anchored on due times, the pong deadline on send times, which epoll's 1 ms
            # rounding makes late) goes out at the armed wake-up instead: no extra wake-up
            # per round trip for a ping a few milliseconds late.
            # Re-arming the timer is cheaper than waking the task to sleep again.
            due = self.machine.next_deadline
            if due is not None and due < self._sleeping_until - self._granularity:
                self._rearm(due)

    async def _json_heartbeat_message(self, ws: Any, message: str, now: float) -> bool:
        """Handles one JSON heartbeat message; False if it was application data after all."""
        try:
            doc = json.loads(message)
        except ValueError:
            return False
        if not isinstance(doc, dict) or set(doc) != {"type", "timestamp"}:
            return False
        stamp = doc["timestamp"]
        if isinstance(stamp, bool) or not isinstance(stamp, (int, float)):
            return False  # not the guide's heartbeat (a list is unhashable, a bool no time): data
        if doc["type"] == "pong":
            payload = self._json_pending.pop(doc["timestamp"], None)
            if payload is not None:
                for stamp in [s for s in self._json_pending if s < doc["timestamp"]]:
                    del self._json_pending[stamp]
                self._pong(payload, now)
            return True
        if doc["type"] == "ping":
            with contextlib.suppress(ConnectionClosed):
                await ws.send(json.dumps({"type": "pong", "timestamp": doc["timestamp"]}))
            return True
        return False

    def _take_in(self) -> None:
        """Feeds the machine what happened to the connection: resolved pongs, a finished
        attempt, the end of the transport."""
        for waiter in [w for w in self._pending if w.done()]:
            self._on_pong(waiter)
        attempt = self._attempt
        if attempt is not None and attempt.done():
            self._attempt = None
            self._attempt_done(attempt)
        ws = self.ws
        if ws is not None and not self._reported_closed and ws.state is _WsState.CLOSED:
            self._reported_closed = True
            now = self._loop.time()
            code = ws.close_code
            if code is not None and code != 1006 and ws.protocol.close_rcvd is not None:
                self.machine.handle_close(now, code)
            self.machine.handle_transport_closed(now)

    async def _take_evidence(self) -> None:
        """Lets the event loop read and parse what the socket already holds, then takes in
        every pong that resolved."""
        ws = self.ws
        for turn in range(EVIDENCE_TURNS):
            await asyncio.sleep(0)
            if turn >= 1 and not _unread_bytes(ws):
                break
        self._take_in()

    async def _sleep_until(self, when: float) -> None:
        """Sleeps until ``when`` (loop time) or until :meth:`_wake`."""
        sleeper = self._loop.create_future()
        self._sleeper = sleeper
        self._rearm(when)
        try:
            await sleeper
        finally:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._sleeper = None
            self._sleeping_until = math.inf

    def _rearm(self, when: float) -> None:
        """Points the current sleep at ``when`` (loop time)."""
        sleeper = self._sleeper
        if sleeper is None or sleeper.done():
            return
        if self._timer is not None:
            self._timer.cancel()
        self._sleeping_until = when
        # asyncio runs a timer up to its clock resolution early; a microsecond more makes
        # the wake-up find the deadline due instead of sleeping again for nanoseconds.
        self._timer = self._loop.call_at(when + 1e-6, self._timer_fired, sleeper, when)

    def _timer_fired(self, sleeper: asyncio.Future[None], when: float) -> None:
        """The sleep's timer: notes how late it fired (for the lag meter) and ends the sleep."""
        self._late_timer = (when, self._loop.time())
        _resolve(sleeper)

    def _wake(self, *_: object) -> None:
        """Ends the current sleep: something happened that the machine must hear of."""
        self._woken = True
        sleeper = self._sleeper
        if sleeper is not None and not sleeper.done():
            sleeper.set_result(None)

    # ----- actions --------------------------------------------------------------------------------

    def _on_verdict(self, reason: DeathReason) -> None:
        """The machine's ``Dead``: record it, mark the connection, tell observers."""
        self._emit("dead", reason=reason.kind, detail=str(reason), waited=reason.waited)
        if reason.kind == "pong_timeout":
            # A peer that answered no ping will not answer the close either: the frame goes out
            # and the transport is dropped at once, so recv() raises now, not a close timeout later.
            self._abort_after_close = True
            if self.ws is not None:
                _mark_unresponsive(self.ws, reason)
        for callback in self._dead_callbacks:
            try:
                callback(reason)
            except Exception:  # pragma: no cover - an observer's bug must not stop the heartbeat
                logger.exception("heartbeat on_dead callback failed")

    async def _send_close(self, code: int, reason: str) -> None:
        """Sends the machine's close frame (websockets runs the handshake), reports it sent."""
        ws = self.ws
        now = self._loop.time()
        if ws is None or ws.state is not _WsState.OPEN:
            self.machine.handle_close_sent(now)
            return
        closing = self._loop.create_task(ws.close(code, reason))
        closing.add_done_callback(self._wake)
        await asyncio.sleep(0)  # ws.close() writes the frame in its first step
        self.machine.handle_close_sent(self._loop.time())
        if self._abort_after_close and ws.transport is not None:
            ws.transport.abort()

    def _disconnect(self) -> None:
        """The machine let go of the transport or attempt: drop it."""
        if self._attempt is not None:
            self._attempt.cancel()
            self._attempt = None
        self._cancel_ping()
        ws = self.ws
        if ws is not None and ws.state is not _WsState.CLOSED and ws.transport is not None:
            ws.transport.abort()
        self._reported_closed = True  # the machine let go of it: nothing more to report

    def _start_attempt(self, attempt: int) -> None:
        """The machine's ``Connect``: one attempt, bounded by the machine's connect timer."""
        if self._opener is None:
            # keepalive() of someone else's connection: it cannot be reopened here.
            self.machine.close(self._loop.time(), 1000)
            return
        self._attempt = self._loop.create_task(self._opener())
        self._attempt.add_done_callback(self._wake)
        self._emit("connecting", attempt=attempt)

    def _attempt_done(self, attempt: asyncio.Task[Any]) -> None:
        """Reports an attempt's outcome: connected (the connection is handed out) or failed."""
        now = self._loop.time()
        if attempt.cancelled():
            return
        exc = attempt.exception()
        if exc is not None:
            retry_after = _retry_after(exc)
            self.machine.handle_connect_failed(now)
            if retry_after is not None:
                self.machine.handle_retry_after(now, retry_after)
            self._emit("connect_failed", error=repr(exc))
            state = self.machine.state
            if state.name == "reconnecting":
                self._emit("reconnecting", attempt=state.attempt, at=state.at)
            elif state.name == "finished" and self._connected is not None:
                self._connected.put_nowait(exc)
            return
        ws = attempt.result()
        self._attach(ws)
        self.machine.handle_connected(now)
        self._emit("connected")
        if self._connected is not None:
            self._connected.put_nowait(ws)

    def _attach(self, ws: Any) -> None:
        """Makes ``ws`` the current connection and watches for its end."""
        _watch(ws)
        ws.heartbeat = self
        self.ws = ws
        self._reported_closed = False
        self._abort_after_close = False
        self._cancel_ping()
        self._pending.clear()
        self._json_pending.clear()
        self._closed_task = self._loop.create_task(ws.wait_closed())
        self._closed_task.add_done_callback(self._wake)

    def _cancel_ping(self) -> None:
        """Abandons a ping still being written: its connection is gone or being replaced."""
        for task in self._ping_tasks:
            task.cancel()
        self._ping_task = None

    def _require_ws(self) -> Any:
        """The current connection, or RuntimeError before the first one."""
        if self.ws is None:
            raise RuntimeError("no connection yet")
        return self.ws

    def _emit(self, name: str, **fields: Any) -> None:
        """One observer event, stamped with the loop's time."""
        if self.on_event is not None:
            self.on_event({"event": name, "t": self._loop.time(), **fields})


# ----- keepalive ---------------------------------------------------------------------------------


def keepalive(
    ws: ClientConnection | ServerConnection,
    config: Config | None = None,
    *,
    json_heartbeat: bool = False,
    on_event: Callable[[Event], None] | None = None,
) -> Heartbeat:
    """Runs the heartbeat of ``ws``, an open websockets 17 connection, for an ``async with`` block.

    Open ``ws`` with ``ping_interval=None`` so websockets' own keepalive stays off. ``config``
    defaults to ``Config(liveness="pong")``; it is used in the server role whatever it says (a
    connection handed in cannot be reopened here: :func:`connect` reconnects). On a verdict the
    connection is closed with ``config.dead_close_code`` and ``ws.recv()`` raises
    :class:`PeerUnresponsive`. With ``json_heartbeat=True`` the pings are the JSON messages
    ``{"type": "ping", "timestamp": t}`` answered by ``{"type": "pong", "timestamp": t}``; read
    messages through :meth:`Heartbeat.recv` then, which answers and hides them.
    """
    cfg = (config if config is not None else Config(liveness="pong")).with_role("server")
    hb = Heartbeat(cfg, json_heartbeat=json_heartbeat, on_event=on_event)
    hb.start_open(ws)
    return hb


# ----- a reconnecting client -----------------------------------------------------------------------


class Reconnecting:
    """The async iterator :func:`connect` returns: one live connection after another.

    ``heartbeat`` is the :class:`Heartbeat` shared by all of them (RTT and counters span
    reconnects); each connection also has it as ``ws.heartbeat``.
    """

    def __init__(self, uri: str, config: Config | None, json_heartbeat: bool, on_event: Any, kwargs: dict[str, Any]) -> None:
        for key in ("ping_interval", "ping_timeout"):
            if kwargs.get(key) is not None:
                raise TypeError(f"{key} is the heartbeat's job here: pass config=heartbeat.Config(...) instead")
        self.uri = uri
        self.config = config if config is not None else Config(liveness="pong")
        self._json = json_heartbeat
        self._on_event = on_event
        self._kwargs = {**kwargs, "ping_interval": None, "ping_timeout": None, "open_timeout": None}
        self._kwargs.setdefault("close_timeout", self.config.close_timeout)
        self.heartbeat: Heartbeat | None = None

    def __aiter__(self) -> Reconnecting:
        """The iterator itself: ``async for ws in connect(...)``."""
        return self

    async def __aenter__(self) -> Reconnecting:
        """``async with connect(...) as connections``: :meth:`aclose` on the way out."""
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Closes the current connection and stops reconnecting."""
        await self.aclose()

    async def __anext__(self) -> ClientConnection:
        """The next live connection: at once the first time, then after the previous one died
        and the machine's backoff delay passed."""
        if self.heartbeat is None:
            self.heartbeat = Heartbeat(self.config.with_role("client"), json_heartbeat=self._json, on_event=self._on_event)
            self.heartbeat.start_connecting(self._open)
        queue = self.heartbeat._connected
        assert queue is not None
        task = self.heartbeat._task
        while True:
            if not queue.empty():
                item = queue.get_nowait()
                break
            if task is not None and task.done():
                raise StopAsyncIteration
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, task} if task is not None else {getter}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                item = getter.result()
                break
            getter.cancel()
        if isinstance(item, BaseException):
            raise item  # attempts exhausted: the last error
        return item

    async def _open(self) -> ClientConnection:
        """One websockets connection attempt (websockets' own keepalive and open timeout off)."""
        return await _ws_connect(self.uri, **self._kwargs)

    async def aclose(self) -> None:
        """Close the current connection and stop reconnecting. Leaving an ``async for`` with
        ``break`` does not stop the heartbeat's task: call this, or use ``async with``."""
        if self.heartbeat is not None:
            await self.heartbeat.close(1000)
            await self.heartbeat.stop()


def connect(
    uri: str,
    config: Config | None = None,
    *,
    json_heartbeat: bool = False,
    on_event: Callable[[Event], None] | None = None,
    **websockets_kwargs: Any,
) -> Reconnecting:
    """``async for ws in connect(uri, config=...)``: a live connection, then after each death
    the next one, after the machine's backoff with jitter (``Config.backoff_*``, ``jitter``).

    Each attempt (TCP, TLS, upgrade) is bounded by ``config.connect_timeout``; an HTTP 503 with
    ``Retry-After`` delays the next attempt as asked (up to ``max_requested_delay``). Other
    keyword arguments go to ``websockets.connect`` (``ping_interval``/``ping_timeout`` are
    refused: the heartbeat owns them). The loop ends after a clean close or when
    ``max_attempts`` is spent (then the last error is raised).
    """
    return Reconnecting(uri, config, json_heartbeat, on_event, websockets_kwargs)


# ----- a server -------------------------------------------------------------------------------------


class Server:
    """What :func:`serve` returns: the websockets server plus the live-client set.

    ``clients`` holds every connection whose heartbeat is alive; a connection leaves it at its
    verdict (before the close handshake) or when its handler returns.
    """

    def __init__(self, handler: Callable[[ServerConnection], Awaitable[None]], host: str | None, port: int | None,
                 config: Config | None, json_heartbeat: bool, on_event: Any, kwargs: dict[str, Any]) -> None:
        for key in ("ping_interval", "ping_timeout"):
            if kwargs.get(key) is not None:
                raise TypeError(f"{key} is the heartbeat's job here: pass config=heartbeat.Config(...) instead")
        self.config = config if config is not None else Config(liveness="pong")
        self.clients: set[ServerConnection] = set()
        self._handler = handler
        self._json = json_heartbeat
        self._on_event = on_event
        self._serve = _ws_serve(self._run_client, host, port, **{**kwargs, "ping_interval": None, "ping_timeout": None})
        self.server: Any = None

    async def _run_client(self, ws: ServerConnection) -> None:
        """One client: heartbeat, live-set membership, the application's handler."""
        hb = keepalive(ws, self.config, json_heartbeat=self._json, on_event=self._on_event)
        hb.on_dead(lambda _reason: self.clients.discard(ws))
        self.clients.add(ws)
        try:
            await self._handler(ws)
        finally:
            self.clients.discard(ws)
            await hb.stop()

    def broadcast(self, message: str | bytes) -> int:
        """Sends ``message`` to every live client without waiting for any of them (websockets'
        ``broadcast``: a slow client's buffer grows, nobody else waits); returns how many."""
        live = [ws for ws in self.clients if ws.state is _WsState.OPEN]
        websockets.broadcast(live, message)
        return len(live)

    async def __aenter__(self) -> Server:
        """Starts listening."""
        self.server = await self._serve.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        """Stops the server and closes its connections."""
        await self._serve.__aexit__(*exc)

    def __await__(self) -> Any:
        """``server = await serve(...)``: starts listening without a block."""

        async def start() -> Server:
            self.server = await self._serve
            return self
        return start().__await__()

    @property
    def sockets(self) -> Iterable[Any]:
        """The listening sockets (for the port when ``port=0``)."""
        return self.server.sockets if self.server is not None else ()

    async def serve_forever(self) -> None:
        """Serve until cancelled."""
        await self.server.serve_forever()

    def close(self) -> None:
        """Stop accepting and close every connection."""
        if self.server is not None:
            self.server.close()

    async def wait_closed(self) -> None:
        """Wait until the server and its connections are closed."""
        if self.server is not None:
            await self.server.wait_closed()


def serve(
    handler: Callable[[ServerConnection], Awaitable[None]],
    host: str | None = None,
    port: int | None = None,
    config: Config | None = None,
    *,
    json_heartbeat: bool = False,
    on_event: Callable[[Event], None] | None = None,
    **websockets_kwargs: Any,
) -> Server:
    """``async with serve(handler, host, port, config=...) as server``: websockets' server with
    a heartbeat per client, ``server.clients`` (the live set) and ``server.broadcast(message)``.

    ``handler(ws)`` runs as with websockets; ``ws.heartbeat`` is its :class:`Heartbeat`. A client
    that stops answering pings leaves ``server.clients`` at the verdict and its pending
    ``recv()`` raises :class:`PeerUnresponsive`.
    """
    return Server(handler, host, port, config, json_heartbeat, on_event, websockets_kwargs)


# ----- glue ------------------------------------------------------------------------------------------


def _resolve(fut: asyncio.Future[None]) -> None:
    """Resolves a sleep future unless it is already done."""
    if not fut.done():
        fut.set_result(None)


def _unread_bytes(ws: Any) -> int:
    """Bytes in the socket's receive buffer not read yet (0 when unknown or when reading is
    paused by backpressure: then the loop cannot read them anyway)."""
    transport = getattr(ws, "transport", None)
    if transport is None or transport.is_closing() or not transport.is_reading():
        return 0
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        buf = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    except OSError:
        return 0
    return int(struct.unpack("i", buf)[0])


def _retry_after(exc: BaseException) -> float | None:
    """The delay an HTTP 503 asked for, in seconds, if it did."""
    if isinstance(exc, InvalidStatus) and exc.response.status_code == 503:
        value = exc.response.headers.get("Retry-After")
        if value is not None and value.strip().isdigit():
            return float(value.strip())
    return None


_WATCHED: dict[type, type] = {}


def _watch(ws: Any) -> None:
    """Gives ``ws`` a subclass of its class whose ``close_exc`` (what websockets' ``recv()``
    and ``send()`` raise once closed) is :class:`PeerUnresponsive` after a pong-timeout verdict."""
    cls = type(ws)
    if getattr(cls, "_heartbeat_watched", False):
        return
    sub = _WATCHED.get(cls)
    if sub is None:
        base_close_exc = cls.close_exc

        def close_exc(self: Any) -> ConnectionClosed:
            exc = base_close_exc.fget(self)
            reason = self._heartbeat_verdict
            if reason is None or isinstance(exc, PeerUnresponsive):
                return exc
            new = PeerUnresponsive(exc.rcvd, exc.sent, exc.rcvd_then_sent, verdict=reason)
            new.__cause__ = exc.__cause__
            return new

        sub = type(cls.__name__, (cls,), {
            "_heartbeat_watched": True,
            "_heartbeat_verdict": None,
            "close_exc": property(close_exc),
            "__doc__": cls.__doc__,
        })
        _WATCHED[cls] = sub
    ws.__class__ = sub


def _mark_unresponsive(ws: Any, reason: DeathReason) -> None:
    """Records the verdict that ``ws.close_exc`` turns into :class:`PeerUnresponsive`."""
    ws._heartbeat_verdict = reason
