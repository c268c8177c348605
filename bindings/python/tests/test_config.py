"""heartbeat.Config: the core's defaults, and every bad value a ValueError that names the
argument, the value and the allowed range."""

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import heartbeat
from heartbeat import Config, ConfigError


def test_defaults_are_the_cores():
    c = Config()
    assert (c.ping_interval, c.pong_timeout, c.close_timeout, c.connect_timeout) == (20.0, 20.0, 10.0, 10.0)
    assert c.liveness == "any" and c.role == "client" and c.adaptive is None
    assert c.dead_close_code == 1011 and c.ping_flood == (10, 1.0, 2)
    assert (c.backoff_base, c.backoff_multiplier, c.backoff_cap, c.jitter) == (1.0, 2.0, 60.0, "full")
    assert c.detection_bound() == 40.0


def test_every_argument_round_trips():
    c = Config(ping_interval=5, pong_timeout=2.5, close_timeout=1, liveness="pong", adaptive=(0.5, 4),
               ping_flood=None, max_attempts=3, jitter="equal", role="server", dead_close_code=4000)
    assert (c.ping_interval, c.pong_timeout, c.close_timeout) == (5.0, 2.5, 1.0)
    assert (c.liveness, c.adaptive, c.ping_flood, c.max_attempts, c.jitter) == ("pong", (0.5, 4.0), None, 3, "equal")
    assert c.role == "server" and c.dead_close_code == 4000
    assert c.with_role("client").role == "client"


@pytest.mark.parametrize(
    "kwargs, field, words",
    [
        ({"ping_interval": 0.001}, "ping_interval", ["1ms", "interval_bounds", "10ms", "86400s"]),
        ({"pong_timeout": 7200}, "pong_timeout", ["7200s", "timeout_bounds", "10ms", "3600s"]),
        ({"ping_interval": 0}, "ping_interval", ["zero", "greater than zero"]),
        ({"close_timeout": 0}, "close_timeout", ["zero"]),
        ({"ping_interval": math.nan}, "ping_interval", ["NaN", "finite", "within 0 to 18446744073"]),
        ({"pong_timeout": -1.0}, "pong_timeout", ["-1", "finite", "within 0 to 18446744073"]),
        ({"ping_interval": 1e11}, "ping_interval", ["100000000000", "within 0 to 18446744073"]),
        ({"close_timeout": 10**400}, "close_timeout", ["1000", "401 characters", "within 0 to 18446744073"]),
        ({"max_attempts": 2**70}, "max_attempts", ["1180591620717411303424", "0 to 4294967295"]),
        ({"dead_close_code": 2**70}, "dead_close_code", ["1180591620717411303424", "1000 to 1003"]),
        ({"dead_close_code": -(2**200)}, "dead_close_code", ["-1606938", "1000 to 1003"]),
        ({"ping_flood": (2**70, 1, 2)}, "ping_flood", ["max_pings = 1180591620717411303424", "0 to 4294967295"]),
        ({"ping_flood": (10, 1, 2**64)}, "ping_flood", ["max_strikes = 18446744073709551616"]),
        ({"ping_flood": (10, 10**400, 2)}, "ping_flood", ["window = 1000"]),
        ({"adaptive": (0.1, 2**1100)}, "adaptive", ["adaptive max", "within 0 to 18446744073"]),
        ({"connect_timeout": math.inf}, "connect_timeout", ["inf", "finite"]),
        ({"adaptive": (2, 1)}, "adaptive", ["2s", "above", "1s"]),
        ({"adaptive": (math.nan, 1)}, "adaptive", ["NaN"]),
        ({"backoff_multiplier": 0.5}, "backoff_multiplier", ["0.5", "at least 1"]),
        ({"backoff_multiplier": math.nan}, "backoff_multiplier", ["NaN", "at least 1"]),
        ({"backoff_cap": 0.5}, "backoff_cap", ["500ms", "backoff_base", "1s"]),
        ({"max_attempts": 0}, "max_attempts", ["max_attempts", "zero"]),
        ({"max_attempts": -3}, "max_attempts", ["-3", "0 to"]),
        ({"idle_only": True, "liveness": "pong"}, "idle_only", ['liveness = "any"']),
        ({"liveness": "frames"}, "liveness", ['"frames"', '"pong" or "any"']),
        ({"jitter": "some"}, "jitter", ['"some"', '"full"']),
        ({"role": "peer"}, "role", ['"peer"', '"client" or "server"']),
        ({"dead_close_code": 1005}, "dead_close_code", ["1005", "1000 to 1003", "3000 to 4999"]),
        ({"interval_bounds": (5, 1)}, "interval_bounds", ["5s", "above", "1s"]),
        ({"ping_flood": (0, 1.0, 2)}, "ping_flood", ["max_pings", "zero"]),
    ],
)
def test_bad_values_name_field_value_and_range(kwargs, field, words):
    with pytest.raises(ConfigError) as info:
        Config(**kwargs)
    assert isinstance(info.value, ValueError)
    assert info.value.field == field
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def test_runtime_changes_are_checked_against_the_bounds():
    m = heartbeat.Machine(Config(ping_interval=5, interval_bounds=(1, 10)))
    m.set_ping_interval(2)
    assert m.ping_interval == 2.0
    with pytest.raises(ConfigError, match="ping_interval = 20s is outside interval_bounds; it must lie within 1s to 10s"):
        m.set_ping_interval(20)
    with pytest.raises(ConfigError, match="NaN") as info:
        m.set_pong_timeout(math.nan)
    assert info.value.field == "pong_timeout"
    # Out of any duration's range or out of the bounds: the same ConfigError the stub promises.
    for value, words in [(1e12, "within 0 to 18446744073"), (10**400, "401 characters"), (0, "interval_bounds")]:
        with pytest.raises(ConfigError, match=words) as info:
            m.set_ping_interval(value)
        assert info.value.field == "ping_interval"
    assert m.ping_interval == 2.0


def test_the_runtime_docstring_lists_every_argument():
    doc = Config.__doc__
    assert doc is not None
    for name in ("role", "ping_interval", "pong_timeout", "close_timeout", "connect_timeout", "liveness",
                 "idle_only", "stall_threshold", "max_local_lag", "dead_close_code", "adaptive",
                 "interval_bounds", "timeout_bounds", "ping_flood", "backoff_base", "backoff_multiplier",
                 "backoff_cap", "jitter", "max_attempts", "reset_after", "max_requested_delay",
                 "reconnect_on_permanent_close"):
        assert f"`{name}`" in doc, name
    # The defaults it states are the ones in force.
    import ast
    import re

    stated = dict(re.findall(r"`(\w+)` = (\([^)]*\)|[^,:]+)", doc))
    assert len(stated) == 22, stated
    for name, value in stated.items():
        assert getattr(Config(), name) == ast.literal_eval(value), (name, value)
    # So are the defaults help() and stubtest read (a text signature written out by hand).
    import inspect

    for name, param in inspect.signature(Config).parameters.items():
        assert getattr(Config(), name) == param.default, (name, param.default)


# Any int, however large (no machine integer or float holds 10**400), and any float.
INTS = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([10**400, -(10**400), 2**64, 2**70, 0, 1, -1]),
)
NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), INTS)
SECONDS = ["ping_interval", "pong_timeout", "close_timeout", "connect_timeout", "stall_threshold", "max_local_lag",
           "backoff_base", "backoff_multiplier", "backoff_cap", "reset_after", "max_requested_delay"]
COUNTS = ["dead_close_code", "max_attempts"]
PAIRS = ["adaptive", "interval_bounds", "timeout_bounds"]


@settings(max_examples=300, deadline=None)
@given(
    seconds=st.dictionaries(st.sampled_from(SECONDS), NUMBERS, max_size=4),
    counts=st.dictionaries(st.sampled_from(COUNTS), INTS, max_size=2),
    pairs=st.dictionaries(st.sampled_from(PAIRS), st.tuples(NUMBERS, NUMBERS), max_size=2),
    flood=st.one_of(st.none(), st.tuples(INTS, NUMBERS, INTS)),
)
def test_any_number_for_any_argument_is_a_config_or_a_config_error(seconds, counts, pairs, flood):
    kwargs = {**seconds, **counts, **pairs, "ping_flood": flood}
    try:
        Config(**kwargs)
    except ConfigError as exc:
        assert exc.field in {*SECONDS, *COUNTS, *PAIRS, "ping_flood"}, exc.field
