"""Each mechanism against an independently built model solved by a generic solver.

* capped pro-rata (paper.md §3.3) = the unique solution of min max_i x_i/u_i (LP: highspy simplex
  and scipy's interior point) and of min sum x_i^2/u_i (QP: highspy; KKT check at large n);
* RAP (§3.4) = the weighted min–max LP min max_i x_i/(u_i w~_i) and the QP
  min sum x_i^2/(u_i w~_i); the linear one-step-deficit program the paper also names is a
  fractional knapsack solved by a queue, not by RAP (checked, with a counterexample);
* the queue (§3.1) = the LP max <s, x>;
* the min–max integer program (§3.5) = scipy.optimize.milp on a separately built model, and
  brute force on tiny instances.
Models are written here in the haircut-fraction variables h = x/u (well scaled under heavy
tails), not taken from the code under test.
"""

from __future__ import annotations

import itertools

import highspy
import numpy as np
import pytest
import scipy.optimize as so
import scipy.sparse as sp

from adlmon.mechanisms import (
    allocate_capped_pro_rata,
    allocate_min_max_integer,
    allocate_rap,
    queue,
    rap,
)

SIZES = [1, 2, 7, 50, 500]


def make_instance(n: int, seed: int, kind: str):
    """Capacities with heavy tails (Pareto 1.1), ties and zero capacities; caps with ties and 0."""
    rng = np.random.default_rng(seed)
    if kind == "pareto":
        u = (rng.pareto(1.1, n) + 1e-3) * 100.0
    elif kind == "ties":
        u = rng.choice([0.5, 2.0, 2.0, 40.0], n)
    else:  # "zeros": a fifth of the accounts without PnL
        u = np.where(rng.random(n) < 0.2, 0.0, rng.lognormal(3.0, 2.0, n))
    beta = np.where(rng.random(n) < 0.4, 1.0, rng.choice([0.0, 0.25, 0.25, 0.6, 0.9], n))
    weights = np.where(rng.random(n) < 0.1, 0.0, rng.pareto(1.5, n) + 0.1)
    # At least one account that can be haircut by every rule.
    u[0], beta[0], weights[0] = max(u[0], 1.0), max(beta[0], 0.3), max(weights[0], 0.5)
    return rng, u, beta, weights


def instances():
    for n in SIZES:
        for kind in ("pareto", "ties", "zeros"):
            yield n, kind


def _highs():
    h = highspy.Highs()
    h.silent()
    for opt, val in (("primal_feasibility_tolerance", 1e-10), ("dual_feasibility_tolerance", 1e-10)):
        h.setOptionValue(opt, val)
    return h


def highs_min_max(u, beta, weight, budget, solver="simplex"):
    """min z  s.t. sum_i (u_i/B) h_i = 1,  h_i - z w_i <= 0,  0 <= h_i <= beta_i   (highspy)."""
    idx = np.flatnonzero((u > 0) & (beta > 0) & (weight > 0))
    m = idx.size
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = m + 1, m + 1
    lp.col_cost_ = np.r_[np.zeros(m), 1.0]
    lp.col_lower_ = np.zeros(m + 1)
    lp.col_upper_ = np.r_[beta[idx], inf]
    lp.row_lower_ = np.r_[1.0, np.full(m, -inf)]
    lp.row_upper_ = np.r_[1.0, np.zeros(m)]
    A = sp.vstack([sp.csr_matrix((u[idx] / budget)[None, :]), sp.eye(m)]).tocsc()
    A = sp.hstack([A, sp.csc_matrix(np.r_[0.0, -weight[idx]][:, None])]).tocsc()
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = A.indptr.astype(np.int32)
    lp.a_matrix_.index_ = A.indices.astype(np.int32)
    lp.a_matrix_.value_ = A.data.astype(np.float64)
    h = _highs()
    h.setOptionValue("solver", solver)
    h.passModel(lp)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    sol = np.asarray(h.getSolution().col_value)
    hx = np.zeros(u.size)
    hx[idx] = sol[:m]
    return hx, sol[m]


def linprog_min_max(u, beta, weight, budget):
    """The same LP through scipy.optimize.linprog (HiGHS interior point, no crossover to ours)."""
    idx = np.flatnonzero((u > 0) & (beta > 0) & (weight > 0))
    m = idx.size
    c = np.r_[np.zeros(m), 1.0]
    A_ub = sp.hstack([sp.eye(m), sp.csc_matrix(-weight[idx][:, None])]).tocsc()
    A_eq = sp.csr_matrix(np.r_[u[idx] / budget, 0.0][None, :])
    res = so.linprog(c, A_ub=A_ub, b_ub=np.zeros(m), A_eq=A_eq, b_eq=[1.0],
                     bounds=list(zip(np.zeros(m + 1), np.r_[beta[idx], np.inf])), method="highs-ipm")
    assert res.status == 0
    hx = np.zeros(u.size)
    hx[idx] = res.x[:m]
    return hx, res.x[m]


def highs_qp(u, beta, weight, budget):
    """min sum_i x_i^2 / (u_i w_i)  s.t. sum x = B, 0 <= x_i <= beta_i u_i   (HiGHS QP).

    Solved in y_i = x_i / sqrt(u_i w_i), where the Hessian is the identity: HiGHS regularises its
    QPs by 1e-7 * I, which only stays negligible when the Hessian is well scaled.
    """
    idx = np.flatnonzero((u > 0) & (beta > 0) & (weight > 0))
    root = np.sqrt(u[idx] * weight[idx])
    a = root / root.max()  # sum a_i y_i = B / root.max()
    y = highs_identity_qp(np.zeros(idx.size), beta[idx] * u[idx] / root, a, budget / root.max())
    hx = np.zeros(u.size)
    hx[idx] = y * root / u[idx]
    return hx


def highs_identity_qp(lower, upper, a, rhs):
    """min Σ y_i²  s.t.  Σ a_i y_i = rhs,  lower <= y <= upper   (HiGHS QP, Hessian 2·I)."""
    m = len(a)
    model = highspy.HighsModel()
    lp = model.lp_
    lp.num_col_, lp.num_row_ = m, 1
    lp.col_cost_ = np.zeros(m)
    lp.col_lower_, lp.col_upper_ = np.asarray(lower, dtype=float), np.asarray(upper, dtype=float)
    lp.row_lower_ = lp.row_upper_ = np.array([rhs], dtype=float)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.arange(m + 1, dtype=np.int32)
    lp.a_matrix_.index_ = np.zeros(m, dtype=np.int32)
    lp.a_matrix_.value_ = np.asarray(a, dtype=float)
    hess = model.hessian_
    hess.dim_ = m
    hess.format_ = highspy.HessianFormat.kTriangular
    hess.start_ = np.arange(m + 1, dtype=np.int32)
    hess.index_ = np.arange(m, dtype=np.int32)
    hess.value_ = np.full(m, 2.0)
    h = _highs()
    h.passModel(model)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return np.asarray(h.getSolution().col_value)


def kkt_residual(u, beta, weight, x, budget):
    """Largest KKT violation of min sum x_i^2/(u_i w_i) on {sum x = B, 0 <= x <= beta u}.

    Gradient/2 = h_i / w_i must equal one multiplier tau where 0 < x_i < beta_i u_i, be <= tau at
    the cap and >= tau at 0.
    """
    idx = np.flatnonzero((u > 0) & (beta > 0) & (weight > 0))
    h = x[idx] / u[idx]
    g = h / weight[idx]
    at_cap = np.isclose(h, beta[idx], rtol=1e-12, atol=0)
    at_zero = h == 0
    interior = ~(at_cap | at_zero)
    tau = np.median(g[interior]) if interior.any() else g[at_cap].max(initial=0.0)
    worst = 0.0
    if interior.any():
        worst = max(worst, np.abs(g[interior] / tau - 1).max())
    if at_cap.any() and interior.any():
        worst = max(worst, (g[at_cap] / tau - 1).max())
    return worst, abs(x.sum() / budget - 1)


# ---- capped pro-rata ----------------------------------------------------------------------------

@pytest.mark.parametrize("n,kind", list(instances()))
def test_capped_pro_rata_solves_the_min_max_lp_with_two_solvers(n, kind):
    rng, u, beta, _ = make_instance(n, seed=n * 7 + len(kind), kind=kind)
    budget = rng.uniform(0.05, 0.95) * float((u * beta).sum())
    a = allocate_capped_pro_rata(u, budget, beta)
    mine = np.divide(a.x, u, out=np.zeros(n), where=u > 0)
    ones = np.ones(n)
    for h_ref, z_ref in (highs_min_max(u, beta, ones, budget), linprog_min_max(u, beta, ones, budget)):
        assert a.level == pytest.approx(z_ref, rel=1e-6)
        live = (u > 0) & (beta > 0)
        np.testing.assert_allclose(mine[live], h_ref[live], atol=1e-6)


@pytest.mark.parametrize("n,kind", [(n, k) for n, k in instances() if n <= 50])
def test_capped_pro_rata_solves_the_quadratic_program(n, kind):
    rng, u, beta, _ = make_instance(n, seed=n * 11 + len(kind), kind=kind)
    budget = rng.uniform(0.05, 0.95) * float((u * beta).sum())
    x = allocate_capped_pro_rata(u, budget, beta).x
    h_ref = highs_qp(u, beta, np.ones(n), budget)
    live = (u > 0) & (beta > 0)
    np.testing.assert_allclose((x / np.where(u > 0, u, 1))[live], h_ref[live], atol=1e-6)


def test_capped_pro_rata_at_ten_thousand_accounts_matches_highs_and_kkt():
    rng, u, beta, _ = make_instance(10_000, seed=2024, kind="pareto")
    u[rng.random(u.size) < 0.1] = 0.0
    budget = 0.37 * float((u * beta).sum())
    a = allocate_capped_pro_rata(u, budget, beta)
    h_ref, z_ref = highs_min_max(u, beta, np.ones(u.size), budget)
    _, z_ipm = linprog_min_max(u, beta, np.ones(u.size), budget)
    assert a.level == pytest.approx(z_ref, rel=1e-6) and a.level == pytest.approx(z_ipm, rel=1e-6)
    live = (u > 0) & (beta > 0)
    np.testing.assert_allclose((a.x / np.where(u > 0, u, 1))[live], h_ref[live], atol=1e-6)
    stationarity, balance = kkt_residual(u, beta, np.ones(u.size), a.x, budget)
    assert stationarity < 1e-9 and balance < 1e-12


# ---- RAP ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,kind", list(instances()))
def test_rap_solves_the_weighted_min_max_lp(n, kind):
    rng, u, beta, w = make_instance(n, seed=n * 13 + len(kind), kind=kind)
    live = (u > 0) & (beta > 0) & (w > 0)
    budget = rng.uniform(0.05, 0.95) * float((u * beta)[live].sum())
    a = allocate_rap(u, budget, w, beta)
    mine = np.divide(a.x, u, out=np.zeros(n), where=u > 0)
    for h_ref, z_ref in (highs_min_max(u, beta, w, budget), linprog_min_max(u, beta, w, budget)):
        assert a.level == pytest.approx(z_ref, rel=1e-6)
        np.testing.assert_allclose(mine[live], h_ref[live], atol=1e-6)
    assert np.all(a.x[w == 0] == 0)


@pytest.mark.parametrize("n,kind", [(n, k) for n, k in instances() if n <= 50])
def test_rap_solves_the_weighted_quadratic_program(n, kind):
    rng, u, beta, w = make_instance(n, seed=n * 17 + len(kind), kind=kind)
    live = (u > 0) & (beta > 0) & (w > 0)
    budget = rng.uniform(0.05, 0.95) * float((u * beta)[live].sum())
    x = rap(u, budget, w, beta)
    h_ref = highs_qp(u, beta, w, budget)
    np.testing.assert_allclose((x / np.where(u > 0, u, 1))[live], h_ref[live], atol=1e-6)
    stationarity, balance = kkt_residual(u, beta, w, x, budget)
    assert stationarity < 1e-9 and balance < 1e-12


def test_rap_at_ten_thousand_accounts_satisfies_kkt_and_the_lp():
    rng, u, beta, w = make_instance(10_000, seed=99, kind="zeros")
    budget = 0.5 * float((u * beta)[w > 0].sum())
    a = allocate_rap(u, budget, w, beta)
    _, z_ref = highs_min_max(u, beta, w, budget)
    assert a.level == pytest.approx(z_ref, rel=1e-6)
    stationarity, balance = kkt_residual(u, beta, w, a.x, budget)
    assert stationarity < 1e-9 and balance < 1e-12


def lp_max_linear(u, beta, s, budget):
    """max sum_i s_i x_i  s.t. sum x = B, 0 <= x_i <= beta_i u_i (in y = x/B), via linprog."""
    res = so.linprog(-s, A_eq=np.ones((1, u.size)), b_eq=[1.0],
                     bounds=list(zip(np.zeros(u.size), beta * u / budget)), method="highs-ds")
    assert res.status == 0
    return res.x * budget


def test_the_linear_next_deficit_program_is_solved_by_a_queue_not_by_rap():
    """Paper §3.4 / P-v3 Prop. "RAP optimizes delta_T": delta is linear in x with
    -d delta / d x_i = rho_i e_i / u_i per PnL dollar, so min delta over the budget set is a
    fractional knapsack: its optimum is the queue by rho e / u. RAP(g*) allocates by water-filling
    and takes strictly less risk out of the next step here."""
    rng = np.random.default_rng(5)
    n = 30
    u = rng.lognormal(2.0, 1.0, n)
    e = u + rng.lognormal(3.0, 0.5, n)  # equity = collateral + PnL
    lam = rng.uniform(1.0, 30.0, n)
    rho = lam * np.maximum(0.0, 0.08 - 1.0 / lam + 0.02)  # any nonnegative perspective weights
    rho = np.where(rho > 0, rho, 1e-3)
    beta = np.ones(n)
    budget = 0.3 * u.sum()
    gain = rho * e / u
    x_lp = lp_max_linear(u, beta, gain, budget)
    x_queue = queue(u, budget, gain)
    np.testing.assert_allclose(x_queue / budget, x_lp / budget, atol=1e-9)
    x_rap = rap(u, budget, rho)
    assert gain @ x_rap < gain @ x_queue * (1 - 1e-3)


# ---- queue ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("n,kind", list(instances()) + [(10_000, "pareto")])
def test_queue_solves_the_lp_max_score_dot_x(n, kind):
    rng, u, beta, _ = make_instance(n, seed=n * 19 + len(kind), kind=kind)
    score = rng.permutation(n).astype(float) + rng.random(n) * 0.5  # distinct: the optimum is unique
    budget = rng.uniform(0.05, 0.95) * float((u * beta).sum())
    x = queue(u, budget, score, beta)
    np.testing.assert_allclose(x / budget, lp_max_linear(u, beta, score, budget) / budget, atol=1e-7)


def test_queue_with_tied_scores_attains_the_lp_value():
    rng, u, beta, _ = make_instance(200, seed=3, kind="ties")
    score = rng.choice([1.0, 2.0, 3.0], u.size)
    budget = 0.4 * float((u * beta).sum())
    x = queue(u, budget, score, beta)
    assert score @ x == pytest.approx(score @ lp_max_linear(u, beta, score, budget), rel=1e-9)


# ---- min–max integer program -----------------------------------------------------------------------

def milp_min_max(q, d, u, owner, budget):
    """Independent model: integer k_j in [0, floor(q_j)], z in [0, 1];
    sum d k >= B;  per account sum d k - z u_i <= 0. Returns optimal z."""
    m, n = q.size, u.size
    A_acc = sp.csr_matrix((d, (owner, np.arange(m))), shape=(n, m))
    A = sp.vstack([sp.hstack([sp.csr_matrix(d[None, :]), sp.csr_matrix((1, 1))]),
                   sp.hstack([A_acc, sp.csr_matrix(-u[:, None])])]).tocsr()
    cons = so.LinearConstraint(A, np.r_[budget, np.full(n, -np.inf)], np.r_[np.inf, np.zeros(n)])
    res = so.milp(np.r_[np.zeros(m), 1.0], constraints=cons, integrality=np.r_[np.ones(m), 0],
                  bounds=so.Bounds(np.zeros(m + 1), np.r_[np.floor(q), 1.0]),
                  options={"mip_rel_gap": 0.0, "time_limit": 60})
    assert res.status == 0, res.message
    return res.x[m]


def milp_capacity(q, d, u, owner):
    m, n = q.size, u.size
    A_acc = sp.csr_matrix((d, (owner, np.arange(m))), shape=(n, m))
    res = so.milp(-d, constraints=so.LinearConstraint(A_acc, -np.inf, u), integrality=np.ones(m),
                  bounds=so.Bounds(np.zeros(m), np.floor(q)), options={"mip_rel_gap": 0.0})
    assert res.status == 0
    return -res.fun


def ilp_instance(seed, m, n, multi):
    rng = np.random.default_rng(seed)
    owner = rng.integers(0, n, m) if multi else np.arange(m)
    q = rng.integers(0, 12, m).astype(float)
    d = rng.choice([1.0, 2.5, 4.0], m) if multi else np.full(m, rng.choice([1.0, 2.5, 4.0]))
    u = np.where(rng.random(n) < 0.15, 0.0, rng.pareto(1.2, n) * 15 + 0.5)
    return rng, q, d, u, owner


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("multi", [False, True])
def test_min_max_integer_matches_an_independent_milp(seed, multi):
    m = 12 if multi else 10
    n = 6 if multi else m
    rng, q, d, u, owner = ilp_instance(seed, m, n, multi)
    capacity = milp_capacity(q, d, u, owner)
    if capacity <= 0:
        pytest.skip("no coverable lot in this draw")
    budget = rng.uniform(0.05, 1.0) * capacity
    z_ref = milp_min_max(q, d, u, owner, budget)
    methods = ("mip", "auto") if not multi else ("mip",)
    for method in methods:
        a = allocate_min_max_integer(q, d, u, budget, 30.0, owner=None if not multi else owner, method=method)
        assert a.optimal, (method, a.status)
        assert a.max_share == pytest.approx(z_ref, abs=1e-9)
        assert a.x.sum() >= budget * (1 - 1e-9)
        if a.capacity_exact:
            assert a.capacity == pytest.approx(capacity, rel=1e-12)


def brute_force(q, d, u, owner, budget):
    grids = [np.arange(int(k) + 1) for k in q]
    K = np.array(list(itertools.product(*grids)), dtype=float)
    acc = np.zeros((K.shape[0], u.size))
    for j in range(q.size):
        acc[:, owner[j]] += K[:, j] * d[j]
    ok = (acc <= u).all(axis=1) & ((K * d).sum(axis=1) >= budget)
    share = np.where(acc > 0, acc / np.where(u > 0, u, 1), 0).max(axis=1)
    return share[ok].min() if ok.any() else None


@pytest.mark.parametrize("seed", range(25))
def test_min_max_integer_matches_brute_force_on_tiny_instances(seed):
    rng = np.random.default_rng(1000 + seed)
    m = int(rng.integers(1, 6))
    n = int(rng.integers(1, m + 1))
    owner = rng.integers(0, n, m)
    q = rng.integers(0, 4, m).astype(float)
    d = rng.choice([1.0, 3.0, 5.0], m)
    u = rng.choice([0.0, 2.0, 5.0, 9.0, 14.0], n)
    budget = float(rng.uniform(0.5, 20.0))
    a = allocate_min_max_integer(q, d, u, budget, 30.0, owner=owner)
    z = brute_force(q, d, u, owner, budget)
    if z is None:  # budget above capacity: the program covers the capacity instead
        assert not a.feasible
        z = brute_force(q, d, u, owner, a.capacity)
    assert a.optimal and a.max_share == pytest.approx(z, abs=1e-12)


def test_min_max_integer_out_of_time_bounds_the_true_optimum():
    # Accounts holding several coins make the program hard for HiGHS: this one takes scipy's
    # milp about half a second and is cut after 10 ms here.
    rng = np.random.default_rng(3)
    m, n = 60, 20
    owner = rng.integers(0, n, m)
    q = rng.integers(1, 30, m).astype(float)
    d = rng.choice([0.7, 1.3, 2.9, 5.1], m)
    u = rng.pareto(1.3, n) * 60 + 1
    budget = 0.25 * min(u.sum(), (q * d).sum())
    a = allocate_min_max_integer(q, d, u, budget, 0.01, owner=owner)
    z_ref = milp_min_max(q, d, u, owner, budget)
    assert a.bound <= z_ref + 1e-9 <= a.max_share + 2e-9
    assert a.optimal == (a.gap == 0.0)
    if not a.optimal:
        assert a.method in ("highs_mip", "fallback") and a.gap > 0
