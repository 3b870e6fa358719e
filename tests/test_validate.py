"""adlmon.validate: the boundary's vocabulary against independent references."""

from __future__ import annotations

import calendar
import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adlmon import validate
from adlmon.events import Fill, Mark, ParseError


def why(fn, *args) -> str:
    with pytest.raises(ParseError) as err:
        fn(*args)
    return err.value.reason


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_number_is_its_decimal_reading_within_the_range_else_out_of_range(x):
    text = repr(x)
    exact = Decimal(text)
    if abs(exact) <= Decimal(validate.MAX_ABS):
        assert validate.number(text, "x") == x == float(exact)
    else:
        assert why(validate.number, text, "x") == "out_of_range"


@pytest.mark.parametrize("bad", ["nan", "inf", "-Infinity", True, None, [], {}, "1,5", "²"])
def test_what_is_not_a_finite_number_is_bad_number(bad):
    assert why(validate.number, bad, "x") == "bad_number"


@given(st.integers(0, validate.MAX_TIME_MS // 1000 - 1), st.integers(0, 999_999_999))
def test_iso_times_are_utc_milliseconds_as_calendar_computes_them(sec, ns):
    import time

    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{ns:09d}"
    expected = calendar.timegm(time.gmtime(sec)) * 1000 + ns // 1_000_000
    assert validate.time_ms(text) == expected


@given(st.integers(-(2 ** 70), 2 ** 70))
def test_integer_times_and_ids_are_kept_only_within_their_range(n):
    if 0 <= n <= validate.MAX_TIME_MS:
        assert validate.time_ms(n) == validate.time_ms(str(n)) == n
    else:
        assert why(validate.time_ms, n) == "out_of_range"
    if 0 <= n < 2 ** 63:
        assert validate.ident(n) == n
    else:
        assert why(validate.ident, n) == "out_of_range"


def test_names_are_non_empty_bounded_strings():
    assert validate.name("BTC", "coin") == "BTC"
    assert why(validate.name, "", "coin") == "missing_field"
    assert why(validate.name, ["BTC"], "coin") == "bad_value"
    assert why(validate.name, "x" * (validate.MAX_NAME_CHARS + 1), "coin") == "bad_value"


def test_check_event_names_the_field_that_breaks_the_rules():
    ok = Mark("hyperliquid", "BTC", 1.0, None, 5)
    validate.check_event(ok)
    with pytest.raises(ParseError, match="Mark.coin"):
        validate.check_event(Mark("hyperliquid", ["BTC"], 1.0, None, 5))
    with pytest.raises(ParseError, match="Fill.time_ms"):
        validate.check_event(Fill("hyperliquid", "BTC", "u", "buy", 1.0, 1.0, 2 ** 63, 0.0, "open", 0.0, 0.0,
                                  1, "", None, "Buy"))
    with pytest.raises(ParseError, match="Fill.sz"):
        validate.check_event(Fill("hyperliquid", "BTC", "u", "buy", 1.0, 1e-300, 5, 0.0, "open", 0.0, 0.0,
                                  1, "", None, "Buy"))
    assert math.isfinite(1e18 * 1e18 / validate.MIN_POSITIVE)  # the bounds keep ratios finite
