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


# Beyond what any clock gives: huge ints (no float holds 10**400), negative ones, 2**64.
BIG_INTS = st.one_of(
    st.sampled_from([2**63, 2**64, 2**70, 10**400, -(10**400), -(2**64), -1]),
    st.integers(min_value=2**64, max_value=2**200),
    st.integers(min_value=-(2**200), max_value=-1),
)
TIMES = st.one_of(
    st.floats(min_value=0, max_value=1e6, allow_nan=False),
    st.integers(min_value=0, max_value=10**6),
    st.sampled_from([math.nan, -1.0, -0.0, math.inf, -math.inf, 1e300, 1e11]),
    BIG_INTS,
)
PAYLOADS = st.binary(max_size=200)
CODES = st.one_of(st.integers(min_value=-5, max_value=70000), BIG_INTS)
SEEDS = st.one_of(st.none(), st.integers(min_value=0, max_value=2**64 - 1), BIG_INTS)

# The life of a healthy connection, at the machine's own clock: these make the random walk
# reach matched pongs, RTT samples and adaptive timeouts often, not by a fluke.
FLOW = st.one_of(
    st.tuples(st.just("connected_now")),
    st.tuples(st.just("handle_timeout_at_deadline")),
    st.tuples(st.just("ping_sent_now")),
    st.tuples(st.just("answer_last_ping"), st.floats(min_value=0, max_value=1)),
)

ANY_OP = st.one_of(
    st.tuples(st.just("connect"), TIMES),
    st.tuples(st.just("close"), TIMES, CODES),
    st.tuples(st.just("handle_connected"), TIMES),
    st.tuples(st.just("handle_connect_failed"), TIMES),
    st.tuples(st.just("handle_retry_after"), TIMES, TIMES),
    st.tuples(st.just("handle_ping_sent"), TIMES),
    st.tuples(st.just("handle_close_sent"), TIMES),
    st.tuples(st.just("handle_frame"), TIMES),
    st.tuples(st.just("handle_pong"), TIMES, PAYLOADS),
    st.tuples(st.just("handle_pong_last_ping"), TIMES),
    st.tuples(st.just("handle_ping"), TIMES, PAYLOADS),
    st.tuples(st.just("handle_close"), TIMES, st.one_of(st.none(), CODES)),
    st.tuples(st.just("handle_transport_closed"), TIMES),
    st.tuples(st.just("handle_protocol_error"), TIMES),
    st.tuples(st.just("handle_timeout"), TIMES),
    st.tuples(st.just("handle_timeout_at_deadline")),
    st.tuples(st.just("handle_local_lag"), TIMES, TIMES),
    st.tuples(st.just("set_ping_interval"), TIMES),
    st.tuples(st.just("set_pong_timeout"), TIMES),
    st.tuples(st.just("poll")),
)
# Half the operations follow a healthy connection's life (hypothesis flattens a nested
# one_of into one uniform choice, which would make these rare).
OPS = st.booleans().flatmap(lambda flow: FLOW if flow else ANY_OP)


def _sendable(code: int) -> bool:
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _valid_time(t: float) -> bool:
    if isinstance(t, int):
        return 0 <= t <= 18446744073  # compared exactly: no float holds 10**400
    return math.isfinite(t) and 0 <= t <= 18446744073


def _refusable(name: str, args: tuple) -> bool:
    """Whether operation ``name`` may refuse ``args`` with ValueError: a time (or span) no clock
    gives, a close code no frame carries, or a runtime interval outside its bounds."""
    if name.startswith("set_"):
        return True
    times = args[:2] if name in ("handle_retry_after", "handle_local_lag") else args[:1]
    if any(not _valid_time(a) for a in times):
        return True
    if name == "close":
        return not _sendable(args[1])
    if name == "handle_close":
        return args[1] is not None and not 0 <= args[1] <= 65535
    return False


CONFIGS = st.builds(
    lambda liveness, idle_only, adaptive, flood, role: Config(
        ping_interval=1, pong_timeout=0.5, close_timeout=0.5, connect_timeout=0.5, backoff_base=0.1,
        backoff_cap=1, liveness=liveness, idle_only=idle_only and liveness == "any", adaptive=adaptive,
        ping_flood=flood, role=role),
    liveness=st.sampled_from(["pong", "any"]),
    idle_only=st.booleans(),
    adaptive=st.one_of(st.none(), st.just((0.2, 2.0)), st.just((0.05, 0.5))),
    flood=st.one_of(st.none(), st.just((10, 1.0, 2)), st.just((1, 0.5, 1))),
    role=st.sampled_from(["client", "server"]),
)


def _random_walk(seed, config, ops):
    """Feeds ``ops`` to a machine; only ValueError may come out, and only for a bad value."""
    try:
        m = Machine(config, seed)
    except ValueError:
        assert seed is not None and not 0 <= seed < 2**64, seed
        m = Machine(config, 0)
    last_ping = b""
    reached = set()
    for op in ops:
        name, args = op[0], op[1:]
        try:
            if name in ("handle_pong_last_ping", "answer_last_ping"):
                when = args[0] if name == "handle_pong_last_ping" else m.now + args[0]
                outcome = m.handle_pong(when, last_ping)
                if outcome.matched:
                    reached.add("matched")
                    if outcome.rtt is not None and m.rtt.samples:
                        reached.add("rtt")
                        if config.adaptive is not None:
                            reached.add("adaptive")
            elif name == "connected_now":
                m.handle_connected(m.now)
            elif name == "ping_sent_now":
                m.handle_ping_sent(m.now)
            elif name == "handle_timeout_at_deadline":
                if m.next_deadline is not None:
                    m.handle_timeout(m.next_deadline)
            elif name == "poll":
                pass  # the drain below takes every action
            else:
                getattr(m, name)(*args)
        except ValueError:
            # Only a value no clock gives, a close code no frame carries, or a runtime
            # interval outside its bounds may be refused.
            assert _refusable(name, args), (name, args)
            continue
        if name == "handle_timeout" and _valid_time(args[0]):
            deadline = m.poll_timeout()
            assert deadline is None or deadline.at >= min(args[0], m.now) - 1e-9
        actions = m.poll_actions()
        assert len(actions) <= 6
        for action in actions:
            if isinstance(action, SendPing):
                last_ping = action.payload  # so that a later pong can answer it
    # Queries never raise either.
    m.state, m.health, m.rtt, m.stats.as_dict(), m.reason, m.local_lag, m.last_proof_of_life, repr(m)
    REACHED.update(reached)


REACHED: set[str] = set()
WALKS = {"seed": SEEDS, "config": CONFIGS, "ops": st.lists(OPS, max_size=60)}

test_random_operations_raise_nothing_but_value_error = settings(max_examples=300, deadline=None)(
    given(**WALKS)(_random_walk)
)


def test_random_operations_reach_matched_pongs():
    """The random walk answers its own pings: matched pongs, RTT samples and adaptive timeouts
    occur (the same walk, derandomized so that this holds on every run)."""
    REACHED.clear()
    long_walks = {**WALKS, "ops": st.lists(OPS, min_size=20, max_size=60)}
    settings(max_examples=100, deadline=None, derandomize=True, database=None)(given(**long_walks)(_random_walk))()
    assert {"matched", "rtt", "adaptive"} <= REACHED, REACHED


@given(ops=st.lists(st.sampled_from(["ping", "pong", "late"]), min_size=1, max_size=40), config=CONFIGS)
@settings(max_examples=100, deadline=None)
def test_answered_pings_keep_an_open_machine_alive(ops, config):
    """Every ping answered within the timeout: never a verdict, RTT figures populated."""
    m = Machine(config, 1)
    now = 0.0
    m.handle_connected(now)
    for op in ops:
        now = m.next_deadline if m.next_deadline is not None else now + 0.1
        m.handle_timeout(now)
        for action in m.poll_actions():
            assert not isinstance(action, heartbeat.Dead), action
            if isinstance(action, SendPing):
                m.handle_ping_sent(now)
                answer = now + (0.01 if op != "late" else 0.04)
                m.handle_pong(answer, action.payload)
                now = answer
    assert m.state.name == "open"
    assert m.stats.pong_timeouts == 0
    if m.stats.pongs_matched:
        assert m.rtt.samples == m.stats.pongs_matched and m.rtt.min is not None


def test_huge_numbers_are_value_errors():
    """Ints beyond any machine number are bad values (ValueError naming the argument), not OverflowError."""
    import pytest

    for call, words in [
        (lambda: Machine(None, -1), ["seed = -1", "0 to 18446744073709551615"]),
        (lambda: Machine(None, 2**64), ["seed = 18446744073709551616"]),
        (lambda: Machine().close(1.0, 2**70), ["code = 1180591620717411303424", "1000 to 1003"]),
        (lambda: Machine().handle_close(1.0, 2**70), ["code = 1180591620717411303424", "0 to 65535"]),
        (lambda: Machine().handle_timeout(10**400), ["now = 1000", "401 characters", "within 0 to 18446744073"]),
        (lambda: Machine().handle_pong(-(10**400), b""), ["now = -1000"]),
        (lambda: Machine().handle_local_lag(1.0, 2**1100), ["lag = "]),
    ]:
        with pytest.raises(ValueError) as info:
            call()
        assert type(info.value) is ValueError
        for word in words:
            assert word in str(info.value), (word, str(info.value))
    assert Machine(None, 2**64 - 1).state.name == "idle"
