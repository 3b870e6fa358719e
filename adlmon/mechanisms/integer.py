"""Integer (lot-grid) mechanisms: contract pro-rata (paper.md §3.2) and the min–max integer
program (§3.5, OL eq. 8).

A venue closes whole lots, so a haircut is x_j = k_j * lot * gap_j with k_j an integer number of
lots, 0 <= k_j <= floor(q_j / lot). ``gap_j`` is the transfer-price gap per contract (USD per
contract, OSS ``gap_per_contract_usd`` = wave-average |mark - exec|). lot = 1 reproduces the OSS
reference (whole contracts); pass the venue's size step for a finer grid.

Integer mechanisms cannot hit B exactly: they cover it, sum(x) >= min(B, capacity), the
contract pro-rata by less than one lot's gap.
"""

from __future__ import annotations

import numpy as np

from .allocation import (
    ContractAllocation,
    IntegerAllocation,
    as_budget,
    as_capacity,
    is_feasible,
)
from .prorata import allocate_capped_pro_rata

# Sizes within this many lots below a grid point count as on it (q = 0.30000000000000004).
_GRID_SLACK = 1e-9


def _lots(q: np.ndarray, lot: float) -> np.ndarray:
    return np.floor(q / lot + _GRID_SLACK)


def _check_lot(lot) -> float:
    lot = float(lot)
    if not (np.isfinite(lot) and lot > 0.0):
        raise ValueError(f"lot must be finite and > 0, got {lot!r}")
    return lot


def _lots_needed(budget: float, usd_per_lot: float) -> float:
    """ceil(B / d) lots, ignoring float noise of a ratio that is an integer in exact arithmetic."""
    ratio = budget / usd_per_lot
    return float(np.ceil(ratio * (1.0 - 1e-12)))


def allocate_contract_pro_rata(q, gap_per_contract, budget, *, lot=1.0) -> ContractAllocation:
    """Contract pro-rata by largest remainder (paper.md §3.2, OSS ``contracts_pro_rata_close_integer``
    with rounding="ceil", weights = position sizes).

    One market, one gap g per contract (scalar; an array must be constant — call once per coin
    with the coin's budget share, as the OSS does). Q = ceil(B / (g lot)) lots; ideal_i =
    Q q_i / sum q (positions below one lot have weight 0); k_i = min(floor(ideal_i), K_i),
    K_i = floor(q_i/lot); the remaining Q - sum k go one lot each by decreasing fractional part
    (ties: lower index), skipping full positions, repeated until placed. x_i = k_i lot g, so
    B <= sum x < B + lot g. Q > sum K: every lot closed, feasible=False.
    Contract pro-rata is Hamilton apportionment, hence not monotone in B (Alabama paradox); its
    loss ignores the capacity u (x_i may exceed (PnL_i)+; cap it where it is compared).
    O(n log n).
    """
    q = as_capacity(q, "q")
    b = as_budget(budget)
    lot = _check_lot(lot)
    g = as_capacity(gap_per_contract, "gap_per_contract")
    if g.size > 1 and not np.all(g == g[0]):
        raise ValueError("contract_pro_rata takes one gap per call (one market); split by coin")
    g = float(g[0]) if g.size else 0.0
    n = q.size
    K = _lots(q, lot)
    d = g * lot
    capacity_lots = float(K.sum())
    capacity = capacity_lots * d
    zeros = np.zeros(n)
    Q = 0.0 if b <= 0.0 else (_lots_needed(b, d) if d > 0.0 else np.inf)
    if Q == 0.0 or capacity_lots <= 0.0 or d <= 0.0:  # a zero gap covers nothing: close nothing
        return ContractAllocation(zeros, b, capacity, is_feasible(b, capacity),
                                  contracts=zeros.copy(), contracts_needed=Q * lot)
    if Q >= capacity_lots:
        return ContractAllocation(K * d, b, capacity, Q <= capacity_lots,
                                  contracts=K * lot, contracts_needed=Q * lot)
    weight = np.where(K > 0.0, q, 0.0)
    ideal = Q * weight / weight.sum()
    base = np.floor(ideal)
    k = np.minimum(base, K)
    remaining = int(round(Q - k.sum()))
    order = np.argsort(-(ideal - base), kind="stable")
    while remaining > 0:
        room = order[k[order] < K[order]]
        if room.size == 0:
            break
        give = room[:remaining]
        k[give] += 1.0
        remaining -= give.size
    return ContractAllocation(k * d, b, capacity, True, contracts=k * lot, contracts_needed=Q * lot)


def contract_pro_rata(q, gap_per_contract, budget, *, lot=1.0) -> np.ndarray:
    """USD loss per position of contract pro-rata (paper.md §3.2); see ``allocate_contract_pro_rata``."""
    return allocate_contract_pro_rata(q, gap_per_contract, budget, lot=lot).x


# ---- min–max integer program ------------------------------------------------------------------

class _Problem:
    """Preprocessed data of the min–max program.

    Position j (owner i = owner_j) may close k_j in [0, kmax_j] lots of d_j USD each, where
    kmax_j = min(floor(q_j/lot), floor(u_i/d_j)): a position whose single lot exceeds its
    account's capacity can never be touched when z <= 1, which also keeps every coefficient
    d_j/u_i of the MIP in (0, 1].
    """

    def __init__(self, q, gap, u, lot, owner):
        self.q = as_capacity(q, "q")
        m = self.q.size
        self.u = as_capacity(u, "u")
        n = self.u.size
        gap = as_capacity(gap, "gap_per_contract")
        if gap.size == 1:
            gap = np.full(m, float(gap[0]))
        if gap.shape != (m,):
            raise ValueError(f"gap_per_contract must be a scalar or have shape ({m},)")
        if owner is None:
            if n != m:
                raise ValueError("without owner, u and q must have the same length")
            owner = np.arange(m)
        owner = np.asarray(owner)
        if owner.shape != (m,) or (m and (owner.min() < 0 or owner.max() >= n)):
            raise ValueError(f"owner must have shape ({m},) with values in [0, {n})")
        if m and not np.issubdtype(owner.dtype, np.integer):
            raise ValueError("owner must be integer account indices")
        self.owner = owner.astype(np.int64)
        self.lot = lot
        self.d = gap * lot
        K = _lots(self.q, lot)
        uo = self.u[self.owner]
        with np.errstate(divide="ignore", invalid="ignore"):
            by_u = np.where(self.d > 0.0, np.floor(uo / self.d), 0.0)
        # floor(u/d) can round one below the exact quotient; take the extra lot when it fits.
        by_u = by_u + ((by_u + 1.0) * self.d <= uo)
        self.kmax = np.where(self.d > 0.0, np.minimum(K, by_u), 0.0)
        self.active = self.kmax > 0.0
        self.dar = self.d * self.kmax  # USD at risk per position
        self.account_dar = np.bincount(self.owner, self.dar, minlength=n) if m else np.zeros(n)
        self.single = bool(m == 0 or np.bincount(self.owner[self.active], minlength=n).max(initial=0) <= 1)

    def account_x(self, k: np.ndarray) -> np.ndarray:
        return np.bincount(self.owner, k * self.d, minlength=self.u.size) if self.q.size else np.zeros(self.u.size)

    def share(self, k: np.ndarray) -> float:
        ax = self.account_x(k)
        pos = ax > 0.0
        return float((ax[pos] / self.u[pos]).max()) if pos.any() else 0.0

    def total(self, k: np.ndarray) -> float:
        return float((k * self.d).sum())

    # Parametric search. At level z, account i may lose at most z u_i; split that target over
    # its positions in proportion to their USD at risk and round down to whole lots. T(z) is
    # nondecreasing, so the least z with T(z) >= B is found by bisection. With one position per
    # account this is exact: any k with max share <= z has k_j <= min(kmax_j, floor(z u_i/d_j)),
    # which is what is taken, so no allocation at a lower level covers B.
    def at_level(self, z: float) -> np.ndarray:
        target = np.minimum(z * self.u, self.account_dar)
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(self.account_dar > 0.0, target / self.account_dar, 0.0)
            k = np.floor(frac[self.owner] * self.dar / self.d * (1.0 + 1e-15))
        k = np.where(self.active, np.minimum(np.nan_to_num(k), self.kmax), 0.0)
        # Never exceed z u_i through the (1 + 1e-15) nudge.
        over = self.account_x(k) > z * self.u * (1.0 + 1e-12)
        if over.any():
            k = np.where(over[self.owner], np.maximum(k - 1.0, 0.0), k)
        return k

    def parametric(self, budget: float) -> tuple[np.ndarray, bool]:
        """Least-level allocation covering ``budget``; (k, reached)."""
        k_hi = self.at_level(1.0)
        if self.total(k_hi) < budget * (1.0 - 1e-12):
            return k_hi, False
        lo, hi = 0.0, 1.0
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if mid <= lo or mid >= hi:
                break
            k_mid = self.at_level(mid)
            if self.total(k_mid) >= budget * (1.0 - 1e-12):
                hi, k_hi = mid, k_mid
            else:
                lo = mid
        return k_hi, True

    def trim(self, k: np.ndarray, budget: float) -> np.ndarray:
        """Drop lots while the total still covers ``budget`` (never raises a share).

        Largest lots first; within one lot size, from the most burdened accounts.
        """
        k = k.copy()
        total = self.total(k)
        excess = total - budget
        if excess <= 0.0:
            return k
        ax = self.account_x(k)
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(self.u > 0.0, ax / self.u, 0.0)[self.owner]
        for dv in np.unique(self.d[k > 0.0])[::-1]:
            r = np.floor(excess / dv)
            if total - r * dv < budget:  # the difference or the quotient rounded up
                r -= 1.0
            if r < 1.0:
                continue
            idx = np.flatnonzero((self.d == dv) & (k > 0.0))
            idx = idx[np.argsort(-share[idx], kind="stable")]
            before = np.concatenate(([0.0], np.cumsum(k[idx])[:-1]))
            drop = np.clip(r - before, 0.0, k[idx])
            k[idx] -= drop
            total = self.total(k)
            excess = total - budget
        return k

    def lp_bound(self, budget: float) -> float:
        """LP relaxation of the min–max program: min z with sum_i min(z u_i, dar_i) >= B."""
        with np.errstate(divide="ignore", invalid="ignore"):
            beta = np.where(self.u > 0.0, np.minimum(self.account_dar / self.u, 1.0), 0.0)
        return float(allocate_capped_pro_rata(self.u, budget, beta).level)


def _highs():
    import highspy

    # The bare core class: highspy.Highs() prints a banner to stdout on construction. It is
    # private, so fall back to the public class if a later highspy drops it.
    h = getattr(highspy, "_Highs", highspy.Highs)()
    h.setOptionValue("output_flag", False)
    return h, highspy


def _pass_mip(h, highspy, pb: _Problem, cols: np.ndarray, budget: float, objective: str) -> None:
    """Build the MIP with CSC arrays (no per-variable Python calls).

    Columns: k_j for j in ``cols`` (integer, [0, kmax_j]), then z (continuous, [0, 1]).
    Row 0: sum_j (d_j / B) k_j >= 1 (budget, scaled); when B is at most the smallest lot this is
    the equivalent, well-scaled sum_j k_j >= 1. Rows 1..: for each account with a column,
    sum_{j of i} (d_j / u_i) k_j - z <= 0.
    objective "min_z": minimise z; "capacity": maximise sum d_j k_j with z fixed to 1 and no
    budget row bound.
    """
    inf = highspy.kHighsInf
    m = cols.size
    acc, acc_row = np.unique(pb.owner[cols], return_inverse=True)
    n_acc = acc.size
    d = pb.d[cols]
    ucol = pb.u[pb.owner[cols]]
    start = np.empty(m + 2, dtype=np.int32)
    start[: m + 1] = 2 * np.arange(m + 1, dtype=np.int32)
    start[m + 1] = 2 * m + n_acc
    index = np.empty(2 * m + n_acc, dtype=np.int32)
    value = np.empty(2 * m + n_acc)
    index[0 : 2 * m : 2] = 0
    index[1 : 2 * m : 2] = 1 + acc_row
    value[0 : 2 * m : 2] = 1.0 if budget <= float(d.min()) else d / budget
    value[1 : 2 * m : 2] = d / ucol
    index[2 * m :] = 1 + np.arange(n_acc, dtype=np.int32)
    value[2 * m :] = -1.0

    lp = highspy.HighsLp()
    lp.num_col_ = m + 1
    lp.num_row_ = n_acc + 1
    if objective == "min_z":
        lp.col_cost_ = np.concatenate((np.zeros(m), [1.0]))
        lp.row_lower_ = np.concatenate(([1.0], np.full(n_acc, -inf)))
    else:
        lp.col_cost_ = np.concatenate((-d / max(float(d.max()), 1e-300), [0.0]))
        lp.row_lower_ = np.full(n_acc + 1, -inf)
    lp.col_lower_ = np.zeros(m + 1)
    lp.col_upper_ = np.concatenate((pb.kmax[cols], [1.0]))
    lp.row_upper_ = np.concatenate(([inf], np.zeros(n_acc)))
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = start
    lp.a_matrix_.index_ = index
    lp.a_matrix_.value_ = value
    lp.integrality_ = [highspy.HighsVarType.kInteger] * m + [highspy.HighsVarType.kContinuous]
    h.passModel(lp)


def _set_start(h, highspy, values: np.ndarray) -> None:
    sol = highspy.HighsSolution()
    sol.col_value = list(map(float, values))
    h.setSolution(sol)


def _run(h, seconds_left: float) -> float:
    """One HiGHS run within what is left of the caller's time limit; returns what is left after.

    HiGHS applies ``time_limit`` to each run while ``getRunTime`` accumulates over runs.
    """
    start = h.getRunTime()
    h.setOptionValue("time_limit", max(seconds_left, 1e-3))
    h.run()
    return seconds_left - (h.getRunTime() - start)


def _solved_k(h, highspy, m: int) -> np.ndarray | None:
    if h.getInfo().primal_solution_status != highspy.kSolutionStatusFeasible:
        return None
    vals = np.asarray(h.getSolution().col_value[:m], dtype=np.float64)
    return np.rint(vals)


def allocate_min_max_integer(
    q,
    gap_per_contract,
    u,
    budget,
    time_limit_s: float = 10.0,
    *,
    lot: float = 1.0,
    owner=None,
    method: str = "mip",
    min_overshoot: bool = True,
) -> IntegerAllocation:
    """Min–max integer program on the lot grid (paper.md §3.5, OL eq. 8, OSS
    ``_fixed_point_ilp_integer_contracts``):

        minimise  z
        s.t.      sum_j d_j k_j >= B*                       (cover the budget)
                  sum_{j of account i} d_j k_j <= z u_i     (burden share, every account)
                  0 <= z <= 1,  k_j in {0, ..., floor(q_j/lot)}

    d_j = gap_j * lot (USD per lot), B* = min(B, C) with C the integer capacity (largest
    coverable sum with every account within its u_i). OL writes sum x = B and x/(u + eps); on a
    lot grid equality is generally infeasible, so B is covered as in the OSS, and u_i = 0
    accounts are simply untouchable. The OSS divides by equity; pass equity as ``u`` for that.

    Positions are the arrays q, gap; ``owner[j]`` maps position j to its account in u (default:
    one position per account). Solved with HiGHS MIP (highspy, CSC model, ``time_limit_s``
    in total), warm-started from the parametric search below. With ``min_overshoot`` a second
    solve at z fixed to its optimum minimises sum x (the first only fixes z).

    Fallback / parametric search: bisection on the level z of "each account loses at most
    z u_i, split over its positions in proportion to USD at risk, rounded down to lots" (the
    OSS fallback of scaled pro-rata + greedy rounding with bisection, in level form), then
    surplus lots trimmed. It is exact when every account has one position — then
    method="auto" skips HiGHS — and a heuristic otherwise.

    Returns an IntegerAllocation: ``optimal`` is True only when proven (HiGHS optimal, or the
    exact parametric case); otherwise ``method`` says which solution was kept, ``bound`` is the
    best proven lower bound on z (HiGHS dual bound or the LP relaxation) and ``gap`` the relative
    distance. Infeasible B (above C): B* = C and feasible=False. Empty input / B = 0: zeros.
    method: "mip" (default) | "auto" | "fallback".

    Complexity: model build O(m log m) with arrays (no per-variable calls); the MIP is NP-hard in
    general and bounded by ``time_limit_s`` (with one position per account HiGHS proves 10^4
    accounts optimal in ~0.2 s; accounts in several coins can leave a gap after 10 s, see
    BENCHMARKS.md); the parametric search is at most 200 bisection steps of O(m).
    """
    if method not in ("mip", "auto", "fallback"):
        raise ValueError("method must be 'mip', 'auto' or 'fallback'")
    b = as_budget(budget)
    lot = _check_lot(lot)
    pb = _Problem(q, gap_per_contract, u, lot, owner)
    m = pb.q.size
    zeros = np.zeros(m)

    def result(k, *, capacity, feasible, bound, optimal, method, status, capacity_exact=True):
        share = pb.share(k)
        gap = 0.0 if optimal or share <= 0.0 else max(share - bound, 0.0) / share
        return IntegerAllocation(
            x=k * pb.d, budget=b, capacity=capacity, feasible=feasible, contracts=k * lot,
            contracts_needed=float("nan"), account_x=pb.account_x(k), max_share=share,
            bound=share if optimal else bound, gap=gap, optimal=optimal, method=method,
            status=status, capacity_exact=capacity_exact, level=share,
        )

    k_cap = pb.at_level(1.0)
    capacity = pb.total(k_cap)
    capacity_exact = pb.single
    if b <= 0.0 or not pb.active.any():
        return result(zeros, capacity=capacity, feasible=is_feasible(b, capacity), bound=0.0,
                      optimal=True, method="trivial", status="nothing to solve")

    seconds_left = float(time_limit_s)
    h = highspy = None
    cols = np.flatnonzero(pb.active)
    if not pb.single and b > capacity * (1.0 + 1e-12) and method != "fallback":
        # Multi-position accounts: the capacity is a knapsack per account; solve it.
        h, highspy = _highs()
        _pass_mip(h, highspy, pb, cols, b, "capacity")
        h.setOptionValue("mip_rel_gap", 1e-9)
        seconds_left = _run(h, seconds_left)
        kc = _solved_k(h, highspy, cols.size)
        if kc is not None:
            k_full = zeros.copy()
            k_full[cols] = kc
            if pb.total(k_full) > capacity:
                capacity, k_cap = pb.total(k_full), k_full
        capacity_exact = h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    feasible = is_feasible(b, capacity)
    target = min(b, capacity)

    k_fb, reached = pb.parametric(target)
    if not reached:  # only possible with multi-position accounts: the knapsack beat the heuristic
        k_fb = k_cap
    if min_overshoot:
        k_fb = pb.trim(k_fb, target)
    lp_bound = pb.lp_bound(target)
    if pb.single and method in ("auto", "fallback"):
        return result(k_fb, capacity=capacity, feasible=feasible, bound=pb.share(k_fb), optimal=True,
                      method="parametric", status="exact parametric search (one position per account)")
    if method == "fallback":
        return result(k_fb, capacity=capacity, feasible=feasible, bound=lp_bound, optimal=False,
                      method="fallback", status="fallback requested",
                      capacity_exact=capacity_exact)

    if h is None:
        h, highspy = _highs()
    _pass_mip(h, highspy, pb, cols, target, "min_z")
    h.setOptionValue("mip_rel_gap", 1e-9)
    h.setOptionValue("mip_abs_gap", 1e-12)
    h.setOptionValue("mip_feasibility_tolerance", 1e-9)
    h.setOptionValue("primal_feasibility_tolerance", 1e-9)
    fb_share = pb.share(k_fb)
    _set_start(h, highspy, np.concatenate((k_fb[cols], [fb_share])))
    seconds_left = _run(h, seconds_left)
    status = h.getModelStatus()
    status_name = h.modelStatusToString(status)
    mip_optimal = status == highspy.HighsModelStatus.kOptimal
    info = h.getInfo()
    dual_bound = float(info.mip_dual_bound) if np.isfinite(info.mip_dual_bound) else 0.0
    bound = max(lp_bound, min(dual_bound, 1.0))
    k_mip = None
    kc = _solved_k(h, highspy, cols.size)
    if kc is not None:
        k_mip = zeros.copy()
        k_mip[cols] = kc
        if pb.total(k_mip) < target * (1.0 - 1e-9):  # within tolerance but below B: reject
            k_mip, mip_optimal = None, False

    if k_mip is not None and min_overshoot and mip_optimal:
        z1 = pb.share(k_mip)
        if seconds_left > 1e-3:
            h.changeColBounds(cols.size, 0.0, z1 * (1.0 + 1e-9))
            h.changeColsCost(cols.size + 1, np.arange(cols.size + 1, dtype=np.int32),
                             np.concatenate((pb.d[cols] / float(pb.d[cols].max()), [0.0])))
            _set_start(h, highspy, np.concatenate((k_mip[cols], [z1])))
            _run(h, seconds_left)
            k2c = _solved_k(h, highspy, cols.size)
            if k2c is not None:
                k2 = zeros.copy()
                k2[cols] = k2c
                if (pb.total(k2) >= target * (1.0 - 1e-9) and pb.total(k2) <= pb.total(k_mip)
                        and pb.share(k2) <= z1 * (1.0 + 1e-9)):
                    k_mip = k2

    if k_mip is not None and pb.share(k_mip) <= fb_share * (1.0 + 1e-12):
        share = pb.share(k_mip)
        proven = mip_optimal or share <= bound * (1.0 + 1e-9)
        return result(k_mip, capacity=capacity, feasible=feasible, bound=bound, optimal=proven,
                      method="highs_mip", status=status_name,
                      capacity_exact=capacity_exact)
    # HiGHS found nothing better than the parametric start within the limit.
    exact = pb.single or fb_share <= bound * (1.0 + 1e-9)
    return result(k_fb, capacity=capacity, feasible=feasible, bound=bound if not exact else fb_share,
                  optimal=exact, method="parametric" if pb.single else "fallback",
                  status=status_name, capacity_exact=capacity_exact)


def min_max_integer(q, gap_per_contract, u, budget, time_limit_s: float = 10.0, *, lot: float = 1.0,
                    owner=None, method: str = "mip") -> np.ndarray:
    """USD haircut per position of the min–max integer program (paper.md §3.5); see
    ``allocate_min_max_integer`` for optimality, bound and feasibility."""
    return allocate_min_max_integer(q, gap_per_contract, u, budget, time_limit_s, lot=lot,
                                    owner=owner, method=method).x
