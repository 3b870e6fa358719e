import random

import pytest

from adlmon.net.backoff import MAX_RETRY_AFTER_S, Backoff, parse_retry_after


def test_delays_are_full_jitter_under_a_doubling_ceiling_capped_at_max():
    b = Backoff(1.0, 8.0, rng=random.Random(7))
    ceilings, delays = [], []
    for _ in range(12):
        ceilings.append(b.ceiling())
        delays.append(b.next_delay())
    assert ceilings == [1, 2, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings))
    assert len(set(delays)) == len(delays)  # jittered, not a fixed ladder


def test_reset_returns_to_the_initial_ceiling():
    b = Backoff(0.5, 30.0, rng=random.Random(1))
    for _ in range(5):
        b.next_delay()
    b.reset()
    assert b.ceiling() == 0.5


def test_retry_after_is_a_floor_bounded_by_a_sanity_maximum():
    b = Backoff(0.01, 0.02, rng=random.Random(3))
    assert b.next_delay(retry_after_s=2.0) == 2.0
    assert b.next_delay(retry_after_s=1e9) == MAX_RETRY_AFTER_S


def test_a_long_outage_does_not_overflow():
    b = Backoff(1.0, 60.0, rng=random.Random(0))
    b.attempt = 10_000
    assert 0 <= b.next_delay() <= 60.0


def test_bad_bounds_are_rejected():
    with pytest.raises(ValueError):
        Backoff(5.0, 1.0)


@pytest.mark.parametrize("value,expected", [("3", 3.0), (" 1.5 ", 1.5), ("-4", 0.0), ("", None),
                                            (None, None), ("soon", None)])
def test_retry_after_header_values(value, expected):
    assert parse_retry_after(value) == expected


def test_retry_after_as_http_date_in_the_past_is_zero():
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
