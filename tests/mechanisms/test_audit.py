"""Rank audit of the venue's ADL order against its documented ranking (paper §3.1)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from adlmon.mechanisms.audit import count_inversions, kendall_tau, rank_audit

small_ints = st.lists(st.integers(0, 6), min_size=0, max_size=40)


@settings(max_examples=300, deadline=None)
@given(small_ints)
def test_count_inversions_equals_brute_force(y):
    brute = sum(1 for i, j in itertools.combinations(range(len(y)), 2) if y[i] > y[j])
    assert count_inversions(y) == brute


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=2, max_size=60))
def test_kendall_tau_equals_scipy_tau_b_with_ties(pairs):
    x = [p[0] for p in pairs]
    y = [p[1] for p in pairs]
    ours = kendall_tau(x, y)
    theirs = scipy.stats.kendalltau(x, y).statistic
    if math.isnan(theirs):
        assert math.isnan(ours)
    else:
        assert ours == pytest.approx(theirs, abs=1e-12)


def test_kendall_tau_on_large_continuous_samples_equals_scipy():
    rng = np.random.default_rng(7)
    x = rng.standard_normal(20_000)
    y = x + rng.standard_normal(20_000)
    assert kendall_tau(x, y) == pytest.approx(scipy.stats.kendalltau(x, y).statistic, abs=1e-12)


def test_kendall_tau_is_undefined_for_fewer_than_two_points_or_a_constant_side():
    assert math.isnan(kendall_tau([1.0], [2.0]))
    assert math.isnan(kendall_tau([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]))


# --- rank_audit --------------------------------------------------------------------------

USERS = ["a", "b", "c", "d"]
SCORES = [4.0, 3.0, 2.0, 1.0]
NOTIONAL = [100.0, 100.0, 100.0, 100.0]


def test_venue_following_the_ranking_gives_tau_one_and_nothing_outside_the_head():
    audit = rank_audit(USERS, SCORES, NOTIONAL, ["a", "a", "b", "c"], [60.0, 40.0, 100.0, 50.0])
    assert audit.kendall_tau == pytest.approx(1.0)
    assert audit.inversions == 0 and audit.pairs == 3
    assert audit.head_size == 3  # 250 USD ADL'd needs the top three (300 USD)
    assert audit.share_outside_head == 0.0
    assert (audit.adl_accounts, audit.candidates, audit.unknown_accounts) == (3, 4, 0)
    assert audit.adl_notional_usd == 250.0


def test_venue_reversing_the_ranking_gives_tau_minus_one_and_every_pair_inverted():
    audit = rank_audit(USERS, SCORES, NOTIONAL, ["d", "c", "b", "a"], [100.0] * 4)
    assert audit.kendall_tau == pytest.approx(-1.0)
    assert audit.inversions == 6 == audit.pairs
    assert audit.share_outside_head == 0.0  # all four candidates are needed for 400 USD


def test_share_outside_head_counts_notional_taken_below_the_predicted_head():
    # hand case: A(3, 100) B(2, 50) C(1, 200); the venue hits C for 60 then A for 40.
    # ADL'd notional 100 = A's size, so the head is {A}; C's 60 is outside: 0.6.
    audit = rank_audit(["A", "B", "C"], [3.0, 2.0, 1.0], [100.0, 50.0, 200.0],
                       ["C", "A"], [60.0, 40.0])
    assert audit.head_size == 1
    assert audit.share_outside_head == pytest.approx(0.6)
    assert audit.kendall_tau == pytest.approx(-1.0)  # C (lower score) went first
    assert audit.inversions == 1


def test_accounts_missing_from_the_candidates_are_outside_the_head():
    audit = rank_audit(["A", "B"], [2.0, 1.0], [100.0, 100.0], ["A", "ghost"], [50.0, 50.0])
    assert audit.unknown_accounts == 1
    assert audit.share_outside_head == pytest.approx(0.5)
    assert math.isnan(audit.kendall_tau)  # only one ADL'd candidate to order


def test_fill_times_order_the_accounts_and_ties_keep_the_venues_order():
    # listed out of time order; by time the venue hit b, then a and c in one block (a first)
    audit = rank_audit(["a", "b", "c"], [3.0, 2.0, 1.0], [10.0, 10.0, 10.0],
                       ["a", "c", "b"], [10.0, 10.0, 10.0], adl_time_ms=[2000, 2000, 1000])
    # actual order b, a, c vs predicted a, b, c: one inversion (b before a)
    assert audit.inversions == 1
    assert audit.kendall_tau == pytest.approx(1 / 3)


def test_equal_scores_are_not_inversions():
    audit = rank_audit(["a", "b"], [1.0, 1.0], [10.0, 10.0], ["b", "a"], [5.0, 5.0])
    assert audit.inversions == 0
    assert math.isnan(audit.kendall_tau)  # predicted order carries no information


def test_a_wave_without_adl_fills_has_undefined_share_and_tau():
    audit = rank_audit(USERS, SCORES, NOTIONAL, [], [])
    assert math.isnan(audit.share_outside_head) and math.isnan(audit.kendall_tau)
    assert audit.head_size == 0 and audit.adl_accounts == 0
    assert set(audit.to_dict()) >= {"kendall_tau", "inversions", "share_outside_head", "head_size"}


def test_adl_beyond_all_candidates_size_makes_every_candidate_the_head():
    audit = rank_audit(["a", "b"], [2.0, 1.0], [10.0, 10.0], ["b", "a"], [50.0, 50.0])
    assert audit.head_size == 2 and audit.share_outside_head == 0.0


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError):
        rank_audit(["a"], [1.0, 2.0], [1.0], [], [])
    with pytest.raises(ValueError):
        rank_audit(["a"], [1.0], [1.0], ["a"], [])
