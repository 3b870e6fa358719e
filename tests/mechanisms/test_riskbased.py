"""Risk-based ADL (leverage draining, adlmon/mechanisms/riskbased.py): properties and optimality.

The references are built here, not taken from the code under test:
* the minimax program min_r max_i (E_i − g_i r_i)/e_i, Σr = Q, 0 <= r <= q as an LP (HiGHS);
* the separable convex program min Σ e_i ℓ_i², ℓ_i = (E_i − g_i r_i)/e_i (HiGHS QP), whose
  unique minimiser must be the water-filling itself.
"""

from __future__ import annotations

import highspy
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from adlmon.mechanisms import allocate_risk_based, post_leverage
from test_optimality import _highs, highs_identity_qp

PROPS = settings(max_examples=150, deadline=None)


@st.composite
def book(draw, factor: bool = False):
    n = draw(st.integers(1, 12))
    q = np.array(draw(st.lists(st.floats(0.0, 50.0), min_size=n, max_size=n)))
    e = np.array(draw(st.lists(st.floats(0.5, 1e4), min_size=n, max_size=n)))
    mark = draw(st.floats(0.01, 1e4))
    frac = draw(st.floats(0.0, 1.2))
    assume(q.sum() > 0)
    exposure = None
    if factor:  # net factor exposure: the coin's notional minus a hedge of up to 80% of it
        hedge = np.array(draw(st.lists(st.floats(0.0, 0.8), min_size=n, max_size=n)))
        exposure = q * mark * (1.0 - hedge)
    return q, mark, e, frac * float(q.sum()), exposure


@PROPS
@given(book())
def test_budget_balance_and_caps(b):
    q, mark, e, need, _ = b
    a = allocate_risk_based(q, mark, e, need, 2.0)
    r = a.contracts
    assert np.all(r >= 0) and np.all(r <= q * (1 + 1e-12))
    assert r.sum() == pytest.approx(min(need, q.sum()), rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(a.x, 2.0 * r)
    assert a.feasible == (need <= q.sum() * (1 + 1e-12))


@PROPS
@given(st.one_of(book(), book(factor=True)))
def test_leverage_equalised_above_the_cutoff(b):
    q, mark, e, need, exposure = b
    a = allocate_risk_based(q, mark, e, need, exposure=exposure)
    r, level = a.contracts, a.level
    before = post_leverage(q, mark, e, 0.0, exposure=exposure)
    after = post_leverage(q, mark, e, r, exposure=exposure)
    tol = 1e-7 * max(1.0, float(np.abs(before).max()))
    part = (r > 1e-9 * q) & (r < q * (1 - 1e-9))
    np.testing.assert_allclose(after[part], level, atol=tol)
    assert np.all(before[(q > 0) & (r <= 1e-12 * q)] <= level + tol)  # untouched: at or below the cutoff
    assert np.all(after[(q > 0) & (r >= q * (1 - 1e-12))] >= level - tol)  # closed whole: could not go lower
    assert after.max() == pytest.approx(max(level, after.max()), abs=tol)


@PROPS
@given(book(), st.integers(0, 11), st.floats(0.05, 0.95))
def test_splitting_an_account_changes_nothing(b, k, alpha):
    q, mark, e, need, _ = b
    k = k % q.size
    r = allocate_risk_based(q, mark, e, need).contracts
    q2 = np.r_[q, q[k] * (1 - alpha)]
    e2 = np.r_[e, e[k] * (1 - alpha)]
    q2[k] *= alpha
    e2[k] *= alpha
    r2 = allocate_risk_based(q2, mark, e2, need).contracts
    tol = 1e-7 * max(1.0, float(q.sum()))
    assert r2[k] + r2[-1] == pytest.approx(r[k], abs=tol)
    np.testing.assert_allclose(np.delete(r2[:-1], k), np.delete(r, k), atol=tol)


def test_most_levered_drained_first_hand_computed():
    # leverages 1, 2, 0.5 at mark 10; 2 contracts: account 1 to 1x (1 contract), then 0 and 1
    # together to 0.5x (0.5 each) — account 2 is at the cutoff and untouched.
    a = allocate_risk_based([1, 2, 3], 10.0, [10, 10, 60], 2.0, 1.5)
    np.testing.assert_allclose(a.contracts, [0.5, 1.5, 0.0])
    np.testing.assert_allclose(a.x, [0.75, 2.25, 0.0])
    assert a.level == pytest.approx(0.5)


def test_hedged_account_is_reduced_less_in_the_factor_form():
    # Same gross position and equity; account 1 holds a hedge of half its notional elsewhere.
    q, mark, e = np.array([10.0, 10.0]), 100.0, np.array([500.0, 500.0])
    exposure = np.array([1000.0, 500.0])
    gross = allocate_risk_based(q, mark, e, 4.0).contracts
    factor = allocate_risk_based(q, mark, e, 4.0, exposure=exposure).contracts
    np.testing.assert_allclose(gross, [2.0, 2.0])
    np.testing.assert_allclose(factor, [4.0, 0.0])  # 2x -> 1.2x; the hedged one sits at 1x


def test_bankrupt_first_unknown_last_and_bad_input():
    a = allocate_risk_based([1, 1, 1], 10.0, [-5.0, 10.0, np.nan], 1.5)
    np.testing.assert_allclose(a.contracts, [1.0, 0.5, 0.0])
    a = allocate_risk_based([1, 1, 1], 10.0, [-5.0, 10.0, np.nan], 5.0)
    np.testing.assert_allclose(a.contracts, [1.0, 1.0, 1.0])
    assert not a.feasible
    assert allocate_risk_based([], 1.0, [], 1.0).contracts.size == 0
    with pytest.raises(ValueError):
        allocate_risk_based([-1.0], 1.0, [1.0], 1.0)
    with pytest.raises(ValueError):
        allocate_risk_based([1.0], 1.0, [1.0], -1.0)


# ---- optimality against HiGHS ---------------------------------------------------------------

def _csc(h_lp, A):
    A = sp.csc_matrix(A)
    h_lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    h_lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    h_lp.a_matrix_.index_ = A.indices.astype(np.int32)
    h_lp.a_matrix_.value_ = A.data.astype(np.float64)


def highs_minimax(E, g, e, q, need):
    """The optimal value t of ``minimax_lp`` (HiGHS)."""
    h = _highs()
    h.passModel(minimax_lp(E, g, e, q, need))
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return float(h.getSolution().col_value[q.size])


def minimax_lp(E, g, e, q, need):
    """min t  s.t. (E_i − g_i r_i)/e_i − t <= 0,  Σ r = need,  0 <= r <= q  (variables r, t);
    benchmarks/riskbased.py times HiGHS on it too."""
    n = q.size
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = n + 1, n + 1
    lp.col_cost_ = np.r_[np.zeros(n), 1.0]
    lp.col_lower_ = np.r_[np.zeros(n), -inf]
    lp.col_upper_ = np.r_[q, inf]
    lp.row_lower_ = np.r_[np.full(n, -inf), need]
    lp.row_upper_ = np.r_[-E / e, need]
    A = sp.vstack([sp.hstack([sp.diags(-g / e), -np.ones((n, 1))]),
                   sp.csr_matrix(np.r_[np.ones(n), 0.0][None, :])])
    _csc(lp, A)
    return lp


def highs_convex(E, g, e, q, need):
    """min Σ (e_i/ē) ℓ_i²  s.t. Σ (e_i/g_i) ℓ_i = Σ E_i/g_i − need,  ℓ_i ∈ [(E−gq)/e, E/e]
    (HiGHS QP in the leverage variables); returns r_i = (E_i − e_i ℓ_i)/g_i.
    Solved in y_i = c·√(e_i/ē)·ℓ_i (c puts the bounds at order 1), where the Hessian is the identity (HiGHS regularises QPs
    by 1e-7·I, negligible only when the Hessian is well scaled)."""
    root = np.sqrt(e / e.max())
    lo, hi = root * (E - g * q) / e, root * E / e
    c = 1.0 / max(float(np.abs(lo).max()), float(np.abs(hi).max()))  # bounds of order 1
    root = root * c
    a = e / g / root
    scale = a.max()
    y = highs_identity_qp(lo * c, hi * c, a / scale, float((E / g).sum() - need) / scale)
    return (E - e * (y / root)) / g


def random_book(n, seed, factor):
    rng = np.random.default_rng(seed)
    q = np.where(rng.random(n) < 0.1, 0.0, rng.lognormal(1.0, 1.0, n))
    q[0] = max(q[0], 1.0)
    e = rng.lognormal(6.0, 1.0, n)
    mark = rng.uniform(1.0, 1000.0)
    g = np.full(n, mark * (rng.uniform(0.5, 1.5) if factor else 1.0))
    E = q * g * (1.0 - rng.uniform(0.0, 0.9, n)) if factor else q * g
    if factor:  # and some net exposure from other coins on top
        E = E + rng.normal(0.0, 0.2, n) * q * g
    need = rng.uniform(0.05, 0.95) * float(q.sum())
    return E, g, e, q, need


@pytest.mark.parametrize("factor", [False, True])
@pytest.mark.parametrize("n,seed", [(1, 1), (2, 2), (7, 3), (50, 4), (500, 5), (2000, 6)])
def test_water_filling_is_the_minimax_and_the_convex_optimum(n, seed, factor):
    E, g, e, q, need = random_book(n, seed + 100 * factor, factor)
    a = allocate_risk_based(q, g, e, need, exposure=E, factor_beta=1.0)
    r = a.contracts
    lev_after = (E - g * r) / e
    t_ref = highs_minimax(E, g, e, q, need)
    assert lev_after.max() == pytest.approx(t_ref, rel=1e-7, abs=1e-9)
    if n <= 50:  # HiGHS's QP solver loses primal feasibility on the larger factor books
        r_ref = highs_convex(E, g, e, q, need)
        np.testing.assert_allclose(r, r_ref, atol=1e-5 * max(1.0, float(q.max())))
    else:  # KKT of the convex program with one g per coin: ℓ equal where 0 < r < q
        part = (r > 1e-9 * q) & (r < q * (1 - 1e-9))
        assert part.any()
        np.testing.assert_allclose(lev_after[part], a.level, rtol=1e-9)
        assert np.all(lev_after[(q > 0) & (r == 0)] <= a.level * (1 + 1e-9) + 1e-12)
