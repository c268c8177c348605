"""heartbeat.Machine: the sans-IO machine in float seconds.

A transcript shows the contract; random operation sequences (hypothesis) show that no call
order raises, and that the only exception any value raises is ValueError."""

import math

from hypothesis import given, settings
from hypothesis import strategies as st

import heartbeat
from heartbeat import Config, Machine, SendClose, SendPing, TimerKind


def test_transcript_ping_pong_then_death():
    m = Machine(Config(ping_interval=1, pong_timeout=1, liveness="pong"), seed=7)
    m.handle_connected(100.0)
    deadline = m.poll_timeout()
    assert (deadline.at, deadline.kind) == (101.0, TimerKind.PING) and m.next_deadline == 101.0
    assert m.poll_actions() == []
    m.handle_timeout(101.0)
    [ping] = m.poll_actions()
    assert isinstance(ping, SendPing) and len(ping.payload) == 8
    m.handle_ping_sent(101.0)
    assert m.poll_timeout().kind is TimerKind.PONG_TIMEOUT and m.next_deadline == 102.0
    outcome = m.handle_pong(101.25, ping.payload)
    assert outcome.matched and math.isclose(outcome.rtt, 0.25)
    assert m.rtt.last == 0.25 and m.rtt.smoothed == 0.25 and m.rtt.min == 0.25
    assert m.health is heartbeat.Health.HEALTHY
    m.handle_timeout(102.0)
    [ping2] = m.poll_actions()
    m.handle_ping_sent(102.0)
    m.handle_timeout(103.0)  # no pong
    dead, close = m.poll_actions()
    assert isinstance(dead, heartbeat.Dead) and dead.reason.kind == "pong_timeout" and dead.reason.waited == 1.0
    assert isinstance(close, SendClose) and (close.code, close.reason) == (1011, "keepalive ping timeout")
    assert m.state.name == "reconnecting" and m.state.reason == dead.reason
    assert m.stats.pong_timeouts == 1 and m.stats.pongs_matched == 1
    del ping2


def test_a_stall_gives_one_fresh_probe_not_a_verdict():
    m = Machine(Config(ping_interval=1, pong_timeout=1), seed=1)
    m.handle_connected(0.0)
    m.handle_timeout(1.0)
    m.poll_actions()
    m.handle_ping_sent(1.0)
    m.handle_timeout(4.0)  # woke 2 s after the pong deadline: our stall, not the peer's silence
    [probe] = m.poll_actions()
    assert isinstance(probe, SendPing)
    assert m.health is heartbeat.Health.SUSPECT and m.stats.missed_deadlines == 1


TIMES = st.one_of(
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.sampled_from([math.nan, -1.0, -0.0, math.inf, -math.inf, 1e300]),
)
PAYLOADS = st.binary(max_size=200)
CODES = st.one_of(st.none(), st.integers(min_value=-5, max_value=70000))

OPS = st.one_of(
    st.tuples(st.just("connect"), TIMES),
    st.tuples(st.just("close"), TIMES, st.integers(min_value=-5, max_value=70000)),
    st.tuples(st.just("handle_connected"), TIMES),
    st.tuples(st.just("handle_connect_failed"), TIMES),
    st.tuples(st.just("handle_retry_after"), TIMES, TIMES),
    st.tuples(st.just("handle_ping_sent"), TIMES),
    st.tuples(st.just("handle_close_sent"), TIMES),
    st.tuples(st.just("handle_frame"), TIMES),
    st.tuples(st.just("handle_pong"), TIMES, PAYLOADS),
    st.tuples(st.just("handle_pong_last_ping"), TIMES),
    st.tuples(st.just("handle_ping"), TIMES, PAYLOADS),
    st.tuples(st.just("handle_close"), TIMES, CODES),
    st.tuples(st.just("handle_transport_closed"), TIMES),
    st.tuples(st.just("handle_protocol_error"), TIMES),
    st.tuples(st.just("handle_timeout"), TIMES),
    st.tuples(st.just("handle_timeout_at_deadline")),
    st.tuples(st.just("handle_local_lag"), TIMES, TIMES),
    st.tuples(st.just("set_ping_interval"), TIMES),
    st.tuples(st.just("set_pong_timeout"), TIMES),
    st.tuples(st.just("poll")),
)


def _sendable(code: int) -> bool:
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _valid_time(t: float) -> bool:
    return math.isfinite(t) and 0 <= t <= 18446744073


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**64 - 1),
    liveness=st.sampled_from(["pong", "any"]),
    role=st.sampled_from(["client", "server"]),
    ops=st.lists(OPS, max_size=60),
)
def test_random_operations_raise_nothing_but_value_error(seed, liveness, role, ops):
    m = Machine(Config(ping_interval=1, pong_timeout=0.5, close_timeout=0.5, connect_timeout=0.5,
                       liveness=liveness, role=role, backoff_base=0.1, backoff_cap=1), seed)
    last_ping = b""
    for op in ops:
        name, args = op[0], op[1:]
        try:
            if name == "handle_pong_last_ping":
                m.handle_pong(args[0], last_ping)
            elif name == "handle_timeout_at_deadline":
                if m.next_deadline is not None:
                    m.handle_timeout(m.next_deadline)
            elif name == "poll":
                for action in m.poll_actions():
                    if isinstance(action, SendPing):
                        last_ping = action.payload
            else:
                getattr(m, name)(*args)
        except ValueError:
            # Only a value no clock gives, a close code no frame carries, or a runtime
            # interval outside its bounds may be refused.
            assert any(
                (isinstance(a, float) and not _valid_time(a)) or name.startswith("set_")
                or (name == "close" and isinstance(a, int) and not _sendable(a))
                or (name == "handle_close" and isinstance(a, int) and not 0 <= a <= 65535)
                for a in args
            ), (name, args)
            continue
        if name == "handle_timeout" and _valid_time(args[0]):
            deadline = m.poll_timeout()
            assert deadline is None or deadline.at >= min(args[0], m.now) - 1e-9
        assert len(m.poll_actions()) <= 6 if name != "poll" else True
    # Queries never raise either.
    m.state, m.health, m.rtt, m.stats.as_dict(), m.reason, m.local_lag, m.last_proof_of_life, repr(m)
