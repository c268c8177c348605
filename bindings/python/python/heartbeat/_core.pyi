"""Type stubs of heartbeat._core, the Rust extension (heartbeat-core bound with PyO3).

Times are float seconds from the caller's monotonic clock (``time.monotonic()``,
``loop.time()``); spans are float seconds. A time or span that no clock gives (NaN, negative,
infinite) raises ``ValueError``; nothing else about the order of calls ever raises.
"""

from typing import ClassVar, Literal, final

MAX_CONTROL_PAYLOAD: int
"""The largest ping/pong payload a WebSocket control frame may carry (125 bytes)."""

class ConfigError(ValueError):
    """A configuration value was rejected. The message names the argument, the value given and
    the allowed range; ``field`` is the keyword argument's name."""

    field: str

@final
class Config:
    """A validated heartbeat configuration; every argument is keyword-only and defaults to
    heartbeat-core's default. Durations are float seconds, like websockets'.

    Raises ``ConfigError`` (a ``ValueError``) naming the field, the value and the allowed range.
    """

    def __new__(
        cls,
        *,
        role: Literal["client", "server"] = "client",
        ping_interval: float = 20.0,
        pong_timeout: float = 20.0,
        close_timeout: float = 10.0,
        connect_timeout: float = 10.0,
        liveness: Literal["pong", "any"] = "any",
        idle_only: bool = False,
        stall_threshold: float = 1.0,
        max_local_lag: float = 5.0,
        dead_close_code: int = 1011,
        adaptive: tuple[float, float] | None = None,
        interval_bounds: tuple[float, float] = (0.01, 86400.0),
        timeout_bounds: tuple[float, float] = (0.01, 3600.0),
        ping_flood: tuple[int, float, int] | None = (10, 1.0, 2),
        backoff_base: float = 1.0,
        backoff_multiplier: float = 2.0,
        backoff_cap: float = 60.0,
        jitter: Literal["full", "equal", "none"] = "full",
        max_attempts: int | None = None,
        reset_after: float = 10.0,
        max_requested_delay: float = 600.0,
        reconnect_on_permanent_close: bool = False,
    ) -> Config: ...
    @property
    def role(self) -> Literal["client", "server"]:
        """"client" (reconnects) or "server" (a dead connection is finished)."""
    @property
    def ping_interval(self) -> float:
        """Seconds between pings."""
    @property
    def pong_timeout(self) -> float:
        """Seconds to wait for a pong after the ping was handed to the transport."""
    @property
    def close_timeout(self) -> float:
        """Seconds to wait for the close handshake."""
    @property
    def connect_timeout(self) -> float:
        """Seconds one connection attempt (TCP, TLS, upgrade) may take."""
    @property
    def liveness(self) -> Literal["pong", "any"]:
        """Which inbound evidence proves the peer alive: only pongs, or any frame."""
    @property
    def idle_only(self) -> bool:
        """Whether pings are sent only when nothing arrived for a whole interval."""
    @property
    def stall_threshold(self) -> float:
        """Seconds a timer may fire late before the lateness is blamed on a local stall."""
    @property
    def max_local_lag(self) -> float:
        """The most local lag, in seconds, a pong deadline is extended by."""
    @property
    def dead_close_code(self) -> int:
        """The close code sent when the peer is declared dead (1011 by default)."""
    @property
    def adaptive(self) -> tuple[float, float] | None:
        """Adaptive pong timeout bounds (SRTT + 4 RTTVAR, clamped), or None for a fixed timeout."""
    @property
    def interval_bounds(self) -> tuple[float, float]:
        """Allowed range of the ping interval, at construction and at runtime."""
    @property
    def timeout_bounds(self) -> tuple[float, float]:
        """Allowed range of the fixed pong timeout, at construction and at runtime."""
    @property
    def ping_flood(self) -> tuple[int, float, int] | None:
        """Inbound ping budget ``(max_pings, window_seconds, max_strikes)``, or None."""
    @property
    def backoff_base(self) -> float:
        """The first reconnect delay ceiling, in seconds."""
    @property
    def backoff_multiplier(self) -> float:
        """Growth of the delay ceiling per attempt."""
    @property
    def backoff_cap(self) -> float:
        """The largest delay ceiling, in seconds."""
    @property
    def jitter(self) -> Literal["full", "equal", "none"]:
        """How reconnect delays are randomised below their ceiling."""
    @property
    def max_attempts(self) -> int | None:
        """Consecutive failed attempts before giving up, or None (never)."""
    @property
    def reset_after(self) -> float:
        """Seconds a connection must prove healthy before the attempt counter resets."""
    @property
    def max_requested_delay(self) -> float:
        """The largest server-requested delay (Retry-After) honoured, in seconds."""
    @property
    def reconnect_on_permanent_close(self) -> bool:
        """Whether permanent close codes (1002, 1003, 1007-1010) still reconnect."""
    def with_role(self, role: Literal["client", "server"]) -> Config:
        """The same configuration for another role."""
    def detection_bound(self, write_delay: float = 0.0) -> float:
        """The longest a connection stays open after its last proof of life, in seconds:
        interval + write delay + pong timeout (the largest adaptive timeout if adaptive)."""

# ----- actions ------------------------------------------------------------------------------

@final
class SendPing:
    """Send a ping with ``payload``, then call ``Machine.handle_ping_sent(now)`` once the
    transport took it: the pong timer starts then."""

    __match_args__: ClassVar[tuple[str]]
    @property
    def payload(self) -> bytes:
        """The ping's payload (the machine's 8-byte sequence number)."""

@final
class SendPong:
    """Send a pong echoing the peer's ping ``payload``."""

    __match_args__: ClassVar[tuple[str]]
    @property
    def payload(self) -> bytes:
        """The payload to echo."""

@final
class Dead:
    """Tell the application, now, that the connection is over and why."""

    __match_args__: ClassVar[tuple[str]]
    @property
    def reason(self) -> DeathReason:
        """Why the connection is over."""

@final
class SendClose:
    """Send a close frame; call ``Machine.handle_close_sent(now)`` once flushed and keep
    reading until ``Disconnect``."""

    __match_args__: ClassVar[tuple[str, str]]
    @property
    def code(self) -> int:
        """The close code (never 1005, 1006 or 1015)."""
    @property
    def reason(self) -> str:
        """A short reason for the close frame."""

@final
class Disconnect:
    """Drop the transport (or the connection attempt): the machine is done with it."""

@final
class Connect:
    """Start a connection attempt, then report ``handle_connected`` or ``handle_connect_failed``."""

    __match_args__: ClassVar[tuple[str]]
    @property
    def attempt(self) -> int:
        """0 for the first connection, then the consecutive retry."""

Action = SendPing | SendPong | Dead | SendClose | Disconnect | Connect
"""Everything ``Machine.poll_action`` returns."""

# ----- reasons, outcomes, enumerations --------------------------------------------------------

@final
class DeathReason:
    """Why a connection (or attempt) is over; ``str()`` is a sentence."""

    @property
    def kind(
        self,
    ) -> Literal["pong_timeout", "peer_closed", "transport_closed", "protocol_error", "ping_flood", "local_close", "connect_failed"]:
        """What ended the connection."""
    @property
    def waited(self) -> float | None:
        """Seconds waited: for the pong since the ping was sent, or for the attempt."""
    @property
    def code(self) -> int | None:
        """The close code: the peer's ("peer_closed") or ours ("local_close")."""
    @property
    def detail(self) -> str | None:
        """A finer cause ("control_frame_too_long", "invalid_close_code", "malformed", "timed_out", "error")."""
    @property
    def is_fault(self) -> bool:
        """Whether the peer or the network is at fault."""

@final
class PongOutcome:
    """What ``Machine.handle_pong`` made of a pong."""

    @property
    def kind(self) -> Literal["matched", "stale", "unsolicited"]:
        """Matched one of our pings, an already acknowledged one, or none."""
    @property
    def seq(self) -> int | None:
        """The sequence number the pong carried."""
    @property
    def rtt(self) -> float | None:
        """The round trip in seconds (matched, latest ping only)."""
    @property
    def matched(self) -> bool:
        """Whether the pong answered one of our pings."""

@final
class PingOutcome:
    """What ``Machine.handle_ping`` made of a ping."""

    ANSWERED: ClassVar[PingOutcome]
    """A pong is queued."""
    REFUSED: ClassVar[PingOutcome]
    """Over the ping budget: not answered."""
    VIOLATION: ClassVar[PingOutcome]
    """The ping ended the connection (too long, or a repeated flood)."""
    IGNORED: ClassVar[PingOutcome]
    """No connection is open."""

@final
class Health:
    """A graded view of the peer's liveness."""

    HEALTHY: ClassVar[Health]
    """Liveness proven recently enough."""
    SUSPECT: ClassVar[Health]
    """Not proven (connecting, a pong overdue, or a local stall forced a fresh probe); not a verdict."""
    DEAD: ClassVar[Health]
    """The connection is over."""

@final
class TimerKind:
    """Why the machine wants to be woken."""

    ACTIONS: ClassVar[TimerKind]
    """Actions are queued: poll them now."""
    PING: ClassVar[TimerKind]
    """The next ping is due."""
    PONG_TIMEOUT: ClassVar[TimerKind]
    """The pong is due: take in what the transport holds before judging."""
    CLOSE_TIMEOUT: ClassVar[TimerKind]
    """The close handshake must have finished."""
    CONNECT: ClassVar[TimerKind]
    """The connection attempt must have finished."""
    RECONNECT: ClassVar[TimerKind]
    """The backoff delay is over."""

@final
class Deadline:
    """When to call ``Machine.handle_timeout`` next, and why."""

    __match_args__: ClassVar[tuple[str, str]]
    @property
    def at(self) -> float:
        """Seconds on the caller's clock."""
    @property
    def kind(self) -> TimerKind:
        """Why."""

@final
class State:
    """Where the machine stands; every state after a death carries its reason."""

    @property
    def name(self) -> Literal["idle", "connecting", "open", "closing", "reconnecting", "finished"]:
        """The state's name."""
    @property
    def reason(self) -> DeathReason | None:
        """Why the last connection ended (every state after a death)."""
    @property
    def attempt(self) -> int | None:
        """The attempt number (connecting, reconnecting)."""
    @property
    def at(self) -> float | None:
        """When the next attempt starts (reconnecting)."""

@final
class Rtt:
    """Round-trip figures from matched pongs, in seconds (None before the first sample)."""

    @property
    def last(self) -> float | None:
        """The most recent sample."""
    @property
    def min(self) -> float | None:
        """The smallest sample."""
    @property
    def smoothed(self) -> float | None:
        """RFC 6298 SRTT."""
    @property
    def variance(self) -> float | None:
        """RFC 6298 RTTVAR."""
    @property
    def samples(self) -> int:
        """How many samples were taken."""

@final
class Stats:
    """Counters of everything that happened on a machine, across its connections."""

    @property
    def pings_sent(self) -> int:
        """Pings the machine asked the driver to send."""
    @property
    def pongs_matched(self) -> int:
        """Pongs that answered one of our pings."""
    @property
    def unsolicited_pongs(self) -> int:
        """Pongs that matched no outstanding ping; ignored."""
    @property
    def pings_received(self) -> int:
        """Pings received from the peer."""
    @property
    def pongs_sent(self) -> int:
        """Pongs the machine asked the driver to send."""
    @property
    def pings_refused(self) -> int:
        """Pings not answered because they exceeded the ping budget."""
    @property
    def missed_deadlines(self) -> int:
        """Timers that fired later than the stall allowance (a local stall)."""
    @property
    def pong_timeouts(self) -> int:
        """Pong timeouts that declared a peer dead."""
    @property
    def close_timeouts(self) -> int:
        """Close handshakes cut short."""
    @property
    def connects(self) -> int:
        """Connections opened."""
    @property
    def connect_failures(self) -> int:
        """Connection attempts that failed."""
    @property
    def connect_timeouts(self) -> int:
        """Connection attempts abandoned after ``connect_timeout``."""
    @property
    def lag_extensions(self) -> int:
        """Reports of local lag that moved a pong deadline later."""
    @property
    def reconnects(self) -> int:
        """Reconnects scheduled."""
    @property
    def clock_anomalies(self) -> int:
        """Times ``now`` went backwards and was clamped."""
    @property
    def ignored_calls(self) -> int:
        """Calls that made no sense in the current state (caller misuse), ignored."""
    def as_dict(self) -> dict[str, int]:
        """Every counter by name."""

# ----- the machine ----------------------------------------------------------------------------

@final
class Machine:
    """The sans-IO heartbeat of one logical connection (and, as a client, its successors).

    The contract: after any ``handle_*`` call, drain ``poll_action()`` until None, then sleep
    until ``next_deadline`` and call ``handle_timeout``. Feed everything readable from the
    transport before expiring deadlines at the same moment. Calling ``handle_timeout`` early or
    twice is harmless. No call order raises; only values no clock gives raise ``ValueError``.
    """

    def __new__(cls, config: Config | None = None, seed: int | None = None) -> Machine:
        """A machine with nothing started; ``seed`` drives reconnect jitter (None: random).
        A seed outside 0 to 2**64 - 1 raises ``ValueError``."""
    def connect(self, now: float) -> None:
        """Starts the first connection attempt (queues ``Connect(attempt=0)``)."""
    def close(self, now: float, code: int = 1000) -> None:
        """Close with ``code`` (a sendable close code, else ValueError) and never reconnect."""
    def handle_connected(self, now: float) -> None:
        """The transport is up: starts the ping schedule."""
    def handle_connect_failed(self, now: float) -> None:
        """The connection attempt failed: a client schedules the next one with backoff."""
    def handle_retry_after(self, now: float, delay: float) -> None:
        """The server asked for ``delay`` seconds before the next attempt."""
    def handle_ping_sent(self, now: float) -> None:
        """The last ``SendPing`` was handed to the transport: the pong timer starts now."""
    def handle_close_sent(self, now: float) -> None:
        """The close frame of the last ``SendClose`` was flushed."""
    def handle_frame(self, now: float) -> None:
        """An inbound data frame arrived (proof of life under liveness "any")."""
    def handle_pong(self, now: float, payload: bytes) -> PongOutcome:
        """A pong arrived; returns what it meant."""
    def handle_ping(self, now: float, payload: bytes) -> PingOutcome:
        """A ping arrived; returns what it meant."""
    def handle_close(self, now: float, code: int | None = None) -> None:
        """The peer sent a close frame with ``code`` (0-65535, else ValueError)."""
    def handle_transport_closed(self, now: float) -> None:
        """The transport ended (EOF, reset, error)."""
    def handle_protocol_error(self, now: float) -> None:
        """The driver saw a malformed frame: the connection is closed with 1002."""
    def handle_timeout(self, now: float) -> None:
        """Time has reached ``now``: fire what is due."""
    def handle_local_lag(self, now: float, lag: float) -> None:
        """The driver measured its own lateness: pong deadlines are extended by it (capped)."""
    def set_ping_interval(self, interval: float) -> None:
        """Changes the ping interval within ``interval_bounds`` (else ConfigError)."""
    def set_pong_timeout(self, timeout: float) -> None:
        """Changes the fixed pong timeout within ``timeout_bounds`` (else ConfigError)."""
    def poll_action(self) -> Action | None:
        """The next action to execute, or None when all are drained."""
    def poll_actions(self) -> list[Action]:
        """Every queued action, in order."""
    def poll_timeout(self) -> Deadline | None:
        """When to call ``handle_timeout`` next and why, or None when nothing is armed."""
    @property
    def next_deadline(self) -> float | None:
        """The next deadline's time alone, or None."""
    @property
    def state(self) -> State:
        """Where the machine stands."""
    @property
    def health(self) -> Health:
        """Healthy, suspect or dead, as of the last ``now`` seen."""
    @property
    def rtt(self) -> Rtt:
        """RTT figures from matched pongs."""
    @property
    def stats(self) -> Stats:
        """Counters."""
    @property
    def now(self) -> float:
        """The latest ``now`` the machine has seen."""
    @property
    def config(self) -> Config:
        """The configuration it was built with."""
    @property
    def ping_interval(self) -> float:
        """The ping interval in force."""
    @property
    def pong_timeout(self) -> float:
        """The pong timeout in force (adaptive once it has a sample)."""
    @property
    def local_lag(self) -> float:
        """The local lag in force (capped at ``max_local_lag``)."""
    @property
    def last_proof_of_life(self) -> float | None:
        """The last proof of life on the current connection (None unless open)."""
    @property
    def reason(self) -> DeathReason | None:
        """Why the last connection ended, if it did."""
