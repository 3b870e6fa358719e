"""The small fuzz run of ``make test`` (the full one is ``make fuzz``, tests/fuzz/run.py):
every registered entry point gets hypothesis-driven inputs (the mutator draws from
hypothesis' Random, so a failure shrinks) and a seeded batch, through parse ->
engine; no uncaught exception, every refusal a declared error with a bounded reason."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adlmon.engine.engine import Engine
from adlmon.events import ParseError
from tests.fuzz import entry_points  # noqa: F401 - registers every entry point
from tests.fuzz.harness import REGISTRY, Stats, _finish, check_one, make_input, register, run

NAMES = sorted(REGISTRY)
SMALL_RUN = 1500


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rnd=st.randoms(use_true_random=False))
def test_hypothesis_inputs_are_events_or_counted_refusals(name, rnd):
    ep = REGISTRY[name]
    stats = Stats(name)
    engine = Engine(ep.venue, 5000, (0, 1000)) if ep.events else None
    check_one(ep, make_input(ep, rnd, stats), engine, stats)
    if engine is not None:
        _finish(ep, engine, stats)
    assert stats.inputs == 1 and stats.accepted + sum(stats.rejected.values()) == 1


@pytest.mark.parametrize("name", NAMES)
def test_a_seeded_batch_goes_through_parse_and_engine(name):
    s = run(REGISTRY[name], SMALL_RUN, seed=1)
    assert s.inputs == SMALL_RUN == s.accepted + sum(s.rejected.values())
    assert s.generated + s.mutated == SMALL_RUN
    # the mutator reaches both sides: some inputs pass, most are refused
    assert s.accepted > 0 and sum(s.rejected.values()) > SMALL_RUN // 4


def test_the_harness_catches_a_parser_that_raises_outside_its_contract():
    def fragile(doc):
        return [doc["a"]["b"]]  # a TypeError/KeyError on most mutations

    ep = register("test.fragile", fragile, [{"a": {"b": 1}}], events=False)
    try:
        with pytest.raises(AssertionError, match="test.fragile"):
            run(ep, 500)
    finally:
        del REGISTRY["test.fragile"]


def test_an_unbounded_reason_is_a_failure():
    def chatty(doc):
        raise ParseError(f"reason-{doc!r}", "a reason per input would explode the metric labels")

    ep = register("test.chatty", chatty, [{"a": 1}], events=False)
    try:
        with pytest.raises(AssertionError, match="unbounded reason"):
            run(ep, 10)
    finally:
        del REGISTRY["test.chatty"]
