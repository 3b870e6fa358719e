"""Properties of every allocator (paper.md §3): budget balance up to capacity, caps, lot grid,
monotonicity, scale invariance, ties and edge cases; hand checks of the venue scores."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from adlmon.mechanisms import (
    allocate_capped_pro_rata,
    allocate_contract_pro_rata,
    allocate_contract_queue,
    allocate_min_max_integer,
    allocate_pro_rata,
    allocate_queue,
    allocate_rap,
    binance_leverage_pnl,
    binance_leverage_pnl_legacy,
    capped_pro_rata,
    contract_pro_rata,
    contract_queue,
    empirical_psi,
    g_cvar,
    g_linear,
    g_power,
    g_star,
    gaussian_psi,
    hyperliquid_index,
    min_max_integer,
    pnl_score,
    pro_rata,
    queue,
    rap,
    rap_weights,
)
from adlmon.mechanisms.prorata import _erfc

PROPS = settings(max_examples=150, deadline=None)

# Capacities: zeros, a few repeated values (ties) and a heavy tail spanning 9 decades.
capacity = st.one_of(
    st.just(0.0),
    st.sampled_from([1.0, 2.5, 100.0]),
    st.floats(1e-3, 1e6, allow_nan=False),
)
capacities = st.lists(capacity, min_size=0, max_size=40).map(np.array)
fractions = st.floats(0.0, 1.0)


@st.composite
def instance(draw, with_beta=True, with_weights=False):
    u = draw(capacities)
    n = u.size
    beta = np.array(draw(st.lists(st.one_of(st.just(1.0), fractions), min_size=n, max_size=n))) if with_beta else None
    weights = None
    if with_weights:
        weights = np.array(draw(st.lists(st.one_of(st.just(0.0), st.just(1.0), st.floats(1e-3, 1e3)), min_size=n, max_size=n)))
    cap = u * (beta if beta is not None else 1.0)
    if weights is not None:
        cap = np.where(weights > 0, cap, 0.0)
    total = float(cap.sum())
    # Budgets below, at and above capacity.
    scale = draw(st.one_of(st.floats(0.0, 1.0), st.just(1.0), st.floats(1.0, 3.0)))
    budget = scale * total if total > 0 else draw(st.floats(0.0, 10.0))
    return u, beta, weights, budget


def assert_budget_balance(x, budget, capacity):
    target = min(budget, capacity)
    assert abs(x.sum() - target) <= 1e-9 * target + 1e-300, (x.sum(), target)


def wealth_allocations(u, beta, weights, budget):
    """Every wealth-space allocator on one instance, with the capacity of its feasible set."""
    cap = u * (beta if beta is not None else 1.0)
    score = np.arange(u.size)[::-1].astype(float)
    out = {
        "queue": (allocate_queue(u, budget, score, beta), cap),
        "pro_rata": (allocate_pro_rata(u, budget), u),
        "capped_pro_rata": (allocate_capped_pro_rata(u, budget, beta), cap),
    }
    w = weights if weights is not None else np.ones(u.size)
    out["rap"] = (allocate_rap(u, budget, w, beta), np.where(w > 0, cap, 0.0))
    return out


# ---- budget balance, caps, feasibility -------------------------------------------------------

@PROPS
@given(instance(with_weights=True))
def test_wealth_allocators_take_min_of_budget_and_capacity_within_caps(inst):
    u, beta, weights, budget = inst
    for name, (a, cap) in wealth_allocations(u, beta, weights, budget).items():
        capacity = float(cap.sum())
        assert a.x.shape == u.shape, name
        assert np.all(a.x >= 0.0), name
        assert np.all(a.x <= cap), name
        assert_budget_balance(a.x, budget, capacity)
        assert a.feasible == (budget <= capacity * (1 + 1e-12)), name
        assert math.isclose(a.capacity, capacity, rel_tol=1e-12, abs_tol=1e-300), name
        if not a.feasible:
            np.testing.assert_array_equal(a.x, cap)
            assert a.shortfall_usd == pytest.approx(budget - capacity, rel=1e-9)


@PROPS
@given(instance(with_beta=True))
def test_capped_pro_rata_is_a_water_level(inst):
    u, beta, _, budget = inst
    a = allocate_capped_pro_rata(u, budget, beta)
    active = (u > 0) & (beta > 0)
    assume(a.feasible and active.any() and budget > 0)
    h = a.x[active] / u[active]
    np.testing.assert_allclose(h, np.minimum(a.level, beta[active]), rtol=1e-9, atol=1e-15)


@PROPS
@given(instance(with_beta=False))
def test_plain_functions_return_the_allocation_vector(inst):
    u, _, _, budget = inst
    score = -u
    np.testing.assert_array_equal(pro_rata(u, budget), allocate_pro_rata(u, budget).x)
    np.testing.assert_array_equal(capped_pro_rata(u, budget), allocate_capped_pro_rata(u, budget).x)
    np.testing.assert_array_equal(queue(u, budget, score), allocate_queue(u, budget, score).x)
    np.testing.assert_array_equal(rap(u, budget, np.ones(u.size)), allocate_rap(u, budget, np.ones(u.size)).x)


@PROPS
@given(instance(with_beta=False))
def test_capped_pro_rata_without_caps_is_pro_rata_and_rap_with_equal_weights_too(inst):
    u, _, _, budget = inst
    expected = pro_rata(u, budget)
    np.testing.assert_allclose(capped_pro_rata(u, budget, np.ones(u.size)), expected, rtol=1e-9, atol=1e-12 * max(budget, 1))
    np.testing.assert_allclose(rap(u, budget, np.full(u.size, 3.0)), expected, rtol=1e-9, atol=1e-12 * max(budget, 1))


# ---- monotonicity and scale invariance (pro-rata family) -------------------------------------

@PROPS
@given(instance(with_weights=True), st.floats(0.0, 1.0))
def test_pro_rata_rules_are_monotone_in_budget(inst, shrink):
    u, beta, weights, budget = inst
    small = wealth_allocations(u, beta, weights, budget * shrink)
    large = wealth_allocations(u, beta, weights, budget)
    for name in small:
        tol = 1e-9 * max(budget, 1e-300)
        assert np.all(small[name][0].x <= large[name][0].x + tol), name


@PROPS
@given(instance(with_weights=True), st.integers(0, 39), st.floats(1.0, 100.0))
def test_pro_rata_rules_are_monotone_in_capacity(inst, j, grow):
    u, beta, weights, budget = inst
    assume(u.size > 0)
    j %= u.size
    u2 = u.copy()
    u2[j] = max(u[j], 1e-3) * grow
    before = wealth_allocations(u, beta, weights, budget)
    after = wealth_allocations(u2, beta, weights, budget)
    tol = 1e-9 * max(budget, 1e-300)
    for name in ("pro_rata", "capped_pro_rata", "rap"):
        x0, x1 = before[name][0].x, after[name][0].x
        assert x1[j] >= x0[j] - tol, name  # more capacity never lowers one's own haircut
        others = np.arange(u.size) != j
        assert np.all(x1[others] <= x0[others] + tol), name  # and never raises anyone else's


@PROPS
@given(instance(with_weights=True), st.floats(1e-3, 1e3), st.floats(1e-3, 1e3))
def test_pro_rata_rules_are_scale_invariant(inst, c, weight_scale):
    u, beta, weights, budget = inst
    base = wealth_allocations(u, beta, weights, budget)
    scaled = wealth_allocations(c * u, beta, weights, c * budget)
    for name in base:
        np.testing.assert_allclose(scaled[name][0].x, c * base[name][0].x, rtol=1e-9, atol=1e-12 * c * max(budget, 1e-300))
    if weights is not None:
        np.testing.assert_allclose(rap(u, budget, weights * weight_scale, beta), base["rap"][0].x,
                                   rtol=1e-9, atol=1e-12 * max(budget, 1e-300))


@PROPS
@given(instance(with_beta=False), st.randoms())
def test_pro_rata_rules_are_identity_agnostic(inst, rnd):
    u, _, _, budget = inst
    perm = np.arange(u.size)
    rnd.shuffle(perm)
    beta = np.linspace(0.2, 1.0, u.size)
    for f in (lambda v, b: capped_pro_rata(v, budget, b), lambda v, b: rap(v, budget, 1.0 + b, b)):
        np.testing.assert_allclose(f(u[perm], beta[perm]), f(u, beta)[perm], rtol=1e-12, atol=1e-12 * max(budget, 1))


@PROPS
@given(instance(with_beta=False))
def test_pro_rata_preserves_the_order_of_survivors(inst):
    """Monotonicity axiom (paper.md §1.4): w_i >= w_j  =>  (1-h_i) w_i >= (1-h_j) w_j."""
    u, _, _, budget = inst
    beta = np.full(u.size, 0.7)
    for x in (pro_rata(u, budget), capped_pro_rata(u, budget, beta)):
        order = np.argsort(u, kind="stable")
        survivors = (u - x)[order]
        assert np.all(np.diff(survivors) >= -1e-9 * max(u.max(initial=0), 1))


# ---- queue ------------------------------------------------------------------------------------

@PROPS
@given(instance(), st.lists(st.sampled_from([0.0, 1.0, 2.0, np.nan]), min_size=40, max_size=40))
def test_queue_is_a_greedy_prefix_with_at_most_one_partial_account(inst, raw_scores):
    u, beta, _, budget = inst
    score = np.array(raw_scores[: u.size])
    x = queue(u, budget, score, beta)
    cap = u * beta
    key = np.where(np.isnan(score), -np.inf, score)
    order = sorted(range(u.size), key=lambda i: (-key[i], i))  # the documented tie-break
    taken = x[order]
    full = np.isclose(taken, cap[order], rtol=1e-12, atol=0)
    empty = taken == 0
    partial = ~(full | empty)
    assert partial.sum() <= 1
    # Everything before the first account not taken in full is taken in full.
    first_short = np.argmax(~full) if (~full).any() else u.size
    assert np.all(taken[first_short + 1:] == 0) or not (taken[first_short + 1:] > 0).any()


def test_queue_breaks_ties_by_input_order_and_puts_nan_scores_last():
    u = np.array([5.0, 5.0, 5.0, 5.0])
    score = np.array([np.nan, 1.0, 1.0, 2.0])
    np.testing.assert_array_equal(queue(u, 12.0, score), [0.0, 5.0, 2.0, 5.0])
    np.testing.assert_array_equal(queue(u, 17.0, score), [2.0, 5.0, 5.0, 5.0])


def test_queue_over_capacity_takes_everything_and_says_so():
    a = allocate_queue(np.array([1.0, 2.0]), 10.0, np.array([0.0, 1.0]), beta=np.array([0.5, 1.0]))
    np.testing.assert_array_equal(a.x, [0.5, 2.0])
    assert not a.feasible and a.capacity == 2.5 and a.shortfall_usd == 7.5


@PROPS
@given(st.lists(st.floats(0.0, 50.0), min_size=0, max_size=30), st.floats(0.0, 2.0),
       st.lists(st.integers(0, 5), min_size=30, max_size=30))
def test_contract_queue_closes_whole_positions_in_rank_order(sizes, fraction, ranks):
    q = np.round(np.array(sizes), 3)
    score = np.array(ranks[: q.size], dtype=float)
    need = round(fraction * float(q.sum()), 3)
    a = allocate_contract_queue(q, 750.0, need, score, lot=0.001)
    closed = a.contracts
    assert np.all(closed >= 0) and np.all(closed <= q + 1e-12)
    assert closed.sum() == pytest.approx(min(need, q.sum()), abs=1e-6)
    np.testing.assert_allclose(a.x, closed * 750.0)
    lots = closed / 0.001
    np.testing.assert_allclose(lots, np.round(lots), atol=1e-6)
    order = sorted(range(q.size), key=lambda i: (-score[i], i))
    c = closed[order]
    not_full = np.flatnonzero(c < q[order] - 1e-9)
    if not_full.size:  # nothing after the first position not closed in full
        assert np.all(c[not_full[0] + 1:] == 0)
    assert a.feasible == (need <= q.sum() + 1e-9)


def test_contract_queue_accepts_per_position_gaps():
    x = contract_queue(np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0, 30.0]), 2.5, np.array([3.0, 2.0, 1.0]))
    np.testing.assert_allclose(x, [10.0, 1.5 * 20.0, 0.0])


# ---- contract pro-rata -------------------------------------------------------------------------

@PROPS
@given(st.lists(st.one_of(st.just(0.0), st.integers(1, 30).map(float), st.floats(0.0, 30.0)), min_size=0, max_size=30),
       st.floats(0.01, 1000.0), st.floats(0.0, 1.5), st.sampled_from([1.0, 0.1, 0.001]))
def test_contract_pro_rata_covers_the_budget_on_the_lot_grid(sizes, gap, fraction, lot):
    q = np.array(sizes)
    K = np.floor(q / lot + 1e-9)
    capacity = float(K.sum()) * lot * gap
    budget = fraction * capacity
    a = allocate_contract_pro_rata(q, gap, budget, lot=lot)
    lots = a.x / (gap * lot)
    np.testing.assert_allclose(lots, np.round(lots), atol=1e-6)
    assert np.all(np.round(lots) <= K) and np.all(a.x >= 0)
    target = min(budget, capacity)
    assert a.x.sum() >= target * (1 - 1e-9)
    if a.feasible:
        assert a.x.sum() < target + gap * lot * (1 + 1e-9)
    else:
        assert a.x.sum() == pytest.approx(capacity)
    np.testing.assert_allclose(a.contracts * gap, a.x)


def test_contract_pro_rata_follows_the_largest_remainder_rule():
    # Q = ceil(10 / 1) = 10 contracts over sizes 3, 3, 4 -> ideal 3, 3, 4: exact.
    np.testing.assert_array_equal(contract_pro_rata(np.array([3.0, 3.0, 4.0]), 1.0, 10.0), [3.0, 3.0, 4.0])
    # Q = 5 over 5, 3, 2: ideal 2.5, 1.5, 1.0 -> floors 2, 1, 1, one left; fractional parts tie
    # (0.5, 0.5) so the lower index gets it.
    np.testing.assert_array_equal(contract_pro_rata(np.array([5.0, 3.0, 2.0]), 1.0, 4.2), [3.0, 1.0, 1.0])
    # A position below one lot has no weight (OSS: floor(q) = 0 is not eligible).
    np.testing.assert_array_equal(contract_pro_rata(np.array([0.5, 4.0]), 2.0, 3.0), [0.0, 4.0])


def test_contract_pro_rata_is_not_house_monotone():
    """Hamilton's method shows the Alabama paradox: one more contract to close can take one away
    from a position. Contract pro-rata inherits it (so no budget-monotonicity claim is made)."""
    q = np.array([6.0, 6.0, 2.0])
    ten = contract_pro_rata(q, 1.0, 10.0)
    eleven = contract_pro_rata(q, 1.0, 11.0)
    assert ten.sum() == 10 and eleven.sum() == 11
    assert eleven[2] < ten[2]


def test_contract_pro_rata_edge_cases():
    a = allocate_contract_pro_rata(np.array([2.0, 3.0]), 0.0, 5.0)  # a zero gap covers nothing
    assert a.x.tolist() == [0.0, 0.0] and a.contracts.tolist() == [0.0, 0.0] and not a.feasible
    a = allocate_contract_pro_rata(np.array([2.0, 3.0]), 4.0, 100.0)  # above capacity: close all
    assert a.contracts.tolist() == [2.0, 3.0] and a.x.sum() == 20.0 and not a.feasible
    assert allocate_contract_pro_rata(np.zeros(0), 1.0, 1.0).x.size == 0
    np.testing.assert_array_equal(contract_pro_rata(np.array([7.0]), 2.0, 5.0), [6.0])  # n = 1


def test_contract_pro_rata_rejects_two_gaps_in_one_call():
    with pytest.raises(ValueError, match="one gap"):
        contract_pro_rata(np.array([1.0, 2.0]), np.array([1.0, 2.0]), 1.0)


# ---- min–max integer program --------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.floats(0.0, 60.0), st.integers(0, 4)), min_size=1, max_size=8),
       st.sampled_from([1.0, 2.5, 7.0]), st.floats(0.0, 1.3), st.booleans())
def test_min_max_integer_stays_on_the_grid_and_within_capacity(rows, gap, fraction, shared):
    q = np.array([r[0] for r in rows], dtype=float)
    owner = np.array([r[2] for r in rows]) if shared else None
    n_acc = 5 if shared else len(rows)
    u = np.array([r[1] for r in rows] + [10.0] * max(0, n_acc - len(rows)))[:n_acc]
    budget = fraction * min(float(u.sum()), float(q.sum()) * gap)
    for method in ("mip", "auto"):
        a = allocate_min_max_integer(q, gap, u, budget, 5.0, owner=owner, method=method)
        lots = a.x / gap
        np.testing.assert_allclose(lots, np.round(lots), atol=1e-9)
        assert np.all(np.round(lots) <= q)
        assert np.all(a.account_x <= u * (1 + 1e-12))
        assert a.x.sum() >= min(budget, a.capacity) * (1 - 1e-9)
        assert a.feasible == (budget <= a.capacity * (1 + 1e-12))
        assert 0.0 <= a.bound <= a.max_share + 1e-12 and a.max_share <= 1.0 + 1e-12
        if a.optimal:
            assert a.gap == 0.0


def test_min_max_integer_with_nothing_to_do_is_trivially_optimal():
    a = allocate_min_max_integer(np.array([1.0]), 1.0, np.array([5.0]), 0.0)
    assert a.optimal and a.method == "trivial" and a.x.tolist() == [0.0]
    a = allocate_min_max_integer(np.zeros(0), 1.0, np.zeros(0), 3.0)
    assert a.x.size == 0 and not a.feasible and a.method == "trivial"
    # A lot larger than the account's PnL can never be taken.
    a = allocate_min_max_integer(np.array([3.0]), 10.0, np.array([5.0]), 4.0)
    assert a.x.tolist() == [0.0] and not a.feasible and a.capacity == 0.0


def test_min_max_integer_reports_its_fallback_honestly():
    rng = np.random.default_rng(3)
    m, n = 600, 200
    owner = rng.integers(0, n, m)
    q = rng.integers(1, 40, m).astype(float)
    gaps = rng.choice([0.7, 1.3, 2.9, 5.1, 11.0], m)
    u = rng.pareto(1.3, n) * 100 + 1
    budget = 0.3 * min(u.sum(), (q * gaps).sum())
    a = allocate_min_max_integer(q, gaps, u, budget, 1e-3, owner=owner, method="fallback")
    assert a.method == "fallback" and not a.optimal
    assert 0 < a.bound < a.max_share and a.gap == pytest.approx((a.max_share - a.bound) / a.max_share)
    assert a.x.sum() >= budget * (1 - 1e-9)


def test_min_max_integer_plain_function_returns_position_usd():
    q = np.array([2.0, 1.0, 3.0])
    u = np.array([100.0, 40.0])
    owner = np.array([0, 1, 0])
    x = min_max_integer(q, 10.0, u, 50.0, owner=owner)
    a = allocate_min_max_integer(q, 10.0, u, 50.0, owner=owner)
    np.testing.assert_array_equal(x, a.x)
    np.testing.assert_array_equal(a.account_x, np.bincount(owner, a.x, minlength=2))


# ---- edge cases ---------------------------------------------------------------------------------

@pytest.mark.parametrize("f", [
    lambda u, b: queue(u, b, np.zeros(u.size)),
    pro_rata,
    capped_pro_rata,
    lambda u, b: capped_pro_rata(u, b, np.full(u.size, 0.5)),
    lambda u, b: rap(u, b, np.ones(u.size)),
])
def test_edge_cases_empty_single_zero(f):
    assert f(np.zeros(0), 5.0).shape == (0,)
    np.testing.assert_array_equal(f(np.zeros(3), 5.0), np.zeros(3))
    np.testing.assert_array_equal(f(np.array([4.0, 0.0]), 0.0), [0.0, 0.0])
    x = f(np.array([4.0]), 1.0)
    assert x.shape == (1,) and x[0] == pytest.approx(1.0)


def test_rap_never_touches_zero_weight_accounts():
    a = allocate_rap(np.array([10.0, 10.0, 10.0]), 25.0, np.array([1.0, 0.0, 2.0]))
    assert a.x[1] == 0.0 and not a.feasible and a.capacity == 20.0
    np.testing.assert_array_equal(a.x, [10.0, 0.0, 10.0])
    a = allocate_rap(np.array([10.0, 10.0, 10.0]), 6.0, np.array([1.0, 0.0, 2.0]))
    np.testing.assert_allclose(a.x, [2.0, 0.0, 4.0])
    assert a.level == pytest.approx(0.2)


@pytest.mark.parametrize("bad", [
    lambda: pro_rata(np.array([1.0, np.nan]), 1.0),
    lambda: pro_rata(np.array([1.0, -1.0]), 1.0),
    lambda: pro_rata(np.array([1.0]), -1.0),
    lambda: capped_pro_rata(np.array([1.0, 2.0]), 1.0, np.array([0.5])),
    lambda: rap(np.array([1.0]), 1.0, np.array([-1.0])),
    lambda: queue(np.array([1.0, 2.0]), 1.0, np.array([1.0, 2.0, 3.0])),
    lambda: min_max_integer(np.array([1.0, 2.0]), 1.0, np.array([1.0]), 1.0),
])
def test_bad_input_raises_value_error(bad):
    with pytest.raises(ValueError):
        bad()


def test_beta_outside_unit_interval_is_clipped():
    np.testing.assert_allclose(capped_pro_rata(np.array([10.0, 10.0]), 15.0, np.array([1.7, -0.3])), [10.0, 0.0])


# ---- scores --------------------------------------------------------------------------------------

def test_hyperliquid_index_by_hand():
    # Long: mark 110, entry 100, notional 11,000, account value 2,000 -> 1.1 * 5.5 = 6.05.
    # Short (guess entry/mark): mark 90, entry 100, notional 9,000, av 3,000 -> (100/90) * 3.
    s = hyperliquid_index([110.0, 90.0, 100.0], [100.0, 100.0, 100.0], [11_000.0, 9_000.0, 1_000.0],
                          [2_000.0, 3_000.0, -5.0], [1, -1, 1])
    np.testing.assert_allclose(s[:2], [6.05, 100.0 / 90.0 * 3.0])
    assert s[2] == -np.inf


def test_binance_leverage_pnl_current_version_by_hand():
    # uPnL 500 on |notional| 10,000 with wallet 1,500: PNL% 0.05, EffLev 10,000/2,000 = 5 -> 0.25.
    # Losing position: uPnL -200, notional 4,000, wallet 1,200: PNL% -0.05, EffLev 4 -> -0.0125.
    s = binance_leverage_pnl([500.0, -200.0, 10.0, 0.0], [10_000.0, -4_000.0, 100.0, 0.0], [1_500.0, 1_200.0, -50.0, 10.0])
    np.testing.assert_allclose(s[:2], [0.25, -0.0125])
    assert s[2] == -np.inf and s[3] == 0.0


def test_binance_leverage_pnl_legacy_version_by_hand():
    # PnlPercent = 500/max(1, 1500); MarginRatio = 50/(1500+500) -> (1/3) * 0.025.
    s = binance_leverage_pnl_legacy([500.0, -10.0, 5.0], [1_500.0, 100.0, 0.5], [50.0, 5.0, 1.0])
    np.testing.assert_allclose(s, [500 / 1500 * 50 / 2000, 0.0, 5.0 * 1.0 / 5.5])


def test_pnl_score_ranks_by_unrealized_pnl():
    u = np.array([1.0, 1.0, 1.0])
    np.testing.assert_array_equal(queue(u, 1.5, pnl_score([10.0, 30.0, 20.0])), [0.0, 1.0, 0.5])


# ---- risk models ----------------------------------------------------------------------------------

def test_risk_weights_are_lambda_times_g():
    lam = np.array([0.0, 0.5, 2.0, 10.0])
    np.testing.assert_allclose(rap_weights(lam, g_linear), lam**2)
    np.testing.assert_allclose(rap_weights(lam, lambda v: g_power(v, 1.5)), lam**2.5)
    np.testing.assert_allclose(rap_weights(lam, lambda v: g_cvar(v, 1.0)), lam * np.maximum(lam - 1, 0))


def test_shock_kernel_weights_match_the_perspective_transform():
    """w~ = lambda g*(lambda) = rho(lambda) = lambda psi(1/lambda) (paper.md §3.4)."""
    rng = np.random.default_rng(7)
    shocks = rng.normal(-0.01, 0.08, 400_000)
    lam = np.array([0.0, 1.0, 5.0, 20.0, 80.0])
    gauss = rap_weights(lam, lambda v: g_star(v, lambda b: gaussian_psi(b, 0.08, -0.01)))
    empir = rap_weights(lam, lambda v: g_star(v, lambda b: empirical_psi(b, shocks)))
    assert gauss[0] == 0.0 and empir[0] == 0.0
    np.testing.assert_allclose(empir[1:], gauss[1:], rtol=0.05, atol=1e-12)
    assert np.all(np.diff(gauss) > 0)  # more leverage, more risk per unit of PnL


def test_empirical_psi_by_hand():
    # z = (-0.3, -0.1, 0.2): psi(0.15) = mean((0.15 + z)_-) = (0.15 + 0 + 0) / 3.
    np.testing.assert_allclose(empirical_psi(np.array([0.15, 0.0, 1.0]), [-0.3, -0.1, 0.2]),
                               [0.15 / 3, 0.4 / 3, 0.0])


def test_erfc_matches_the_standard_library():
    xs = np.linspace(-6.0, 26.0, 3201)
    ref = np.array([math.erfc(v) for v in xs])
    np.testing.assert_allclose(_erfc(xs), ref, rtol=1e-12, atol=1e-300)
