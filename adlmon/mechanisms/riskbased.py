"""Risk-based ADL (Campbell, Hey, Moallemi, Nutz, arXiv 2603.15963; paper.md "Later work:
risk-based ADL"): the minimax-leverage policy, "leverage draining".

The mechanism allocates required position *reductions*, not PnL haircuts. Positions i on the
ADL'd side hold q_i >= 0 contracts; account equity e_i; directional exposure E_i (USD) and
exposure per contract g_i (USD). Leverage after reducing r_i contracts is
ℓ_i(r_i) = (E_i − g_i r_i) / e_i. Given the contracts to match, Q, the program solved is

    min_r  Σ_i e_i φ(ℓ_i(r_i))    s.t.  Σ_i r_i = min(Q, Σ q_i),  0 <= r_i <= q_i      (RB)

for any strictly convex increasing φ (the risk-neutral expected shortfall of an isolated
account, e·E[(ℓ·Z − 1)+] for a price shock Z, is of this form; the paper's Theorem: the
optimum minimises the maximum leverage). KKT of (RB): φ'(ℓ_i) equal on every partly reduced
position, so there is a cutoff L with

    r_i = clip((E_i − L e_i) / g_i, 0, q_i),   L solving Σ_i r_i = min(Q, Σ q_i)        (WF)

— the most levered accounts are drained first, down to one common leverage L (water-filling).
(WF) does not depend on φ (distribution-free), and it also attains the minimax program
min_r max_i ℓ_i(r_i) under the same constraints. Splitting an account into parts with the same
leverage (E, e, q scaled alike) leaves every part's reduction the same fraction of the whole:
Sybil resistant.

Forms:
  * single asset, isolated (the paper's main case): E_i = q_i·mark, g_i = mark, so
    ℓ_i = notional_i / e_i (gross leverage in that coin).
  * one dominant risk factor, cross margin (the paper's multi-asset case): E_i = s_i Σ_c β_c n_ic
    (the account's net β-weighted notional, signed towards the reduced position's side s_i),
    g_i = β_coin · mark: the factor-adjusted leverage; a hedged account (small E_i) is reduced
    less than its gross leverage suggests. ASSUMPTION where adlmon uses it: β_c = 1 for every
    coin (the crypto market factor at unit beta), since adlmon estimates no betas.

Conventions: equity <= 0 (infinite leverage) is drained before anyone else, pro rata by
contracts among such positions; unknown equity (NaN) or g_i = 0 (a reduction that changes no
leverage) only after every ranked position is closed, pro rata by contracts. USD haircut at
the transfer-price gap: x_i = r_i · gap_i (the mechanism's "haircut at the wave's gap").
O(n log n): Σ r_i(L) is piecewise linear; it is evaluated at all 2n breakpoints at once
(sorted prefix sums) and L interpolated on the segment that holds Q.
"""

from __future__ import annotations

import numpy as np

from .allocation import ContractAllocation, as_budget, as_capacity, as_scores, is_feasible


def _pro_rata_contracts(q: np.ndarray, need: float) -> np.ndarray:
    total = float(q.sum())
    if need >= total:
        return q.copy()
    return q * (need / total) if total > 0 else np.zeros_like(q)


def drain_level(exposure, equity, per_contract, q, contracts) -> tuple[np.ndarray, float]:
    """(r, L) of (WF) for positions with e_i > 0 and g_i > 0: reductions r and the cutoff L.

    ``contracts`` is clipped to [0, Σq]. At 0 the level is the current maximum leverage.
    """
    E, e, g = exposure, equity, per_contract
    if q.size == 0:
        return np.zeros(0), float("nan")
    lo = (E - g * q) / e  # at or below this level the position is closed whole
    hi = E / e  # at or above this level it is untouched
    total = float(q.sum())
    need = min(max(contracts, 0.0), total)
    if need <= 0.0:
        return np.zeros_like(q), float(hi.max())
    if need >= total:  # every position closed: the largest cutoff that closes them all
        return q.copy(), float(lo.min())
    # Σr(L) at every breakpoint at once: with a = E/g, b = e/g,
    # Σr(L) = Σ_{lo_i >= L} q_i + Σ_{lo_i < L} (a_i − L b_i) − Σ_{hi_i <= L} (a_i − L b_i).
    a, b = E / g, e / g
    cuts = np.unique(np.concatenate([lo, hi]))
    o_lo, o_hi = np.argsort(lo), np.argsort(hi)

    def csum(v):
        return np.concatenate([[0.0], np.cumsum(v)])

    q_lo, a_lo, b_lo = csum(q[o_lo]), csum(a[o_lo]), csum(b[o_lo])
    a_hi, b_hi = csum(a[o_hi]), csum(b[o_hi])
    k_lo = np.searchsorted(lo[o_lo], cuts, side="left")  # #{lo_i < L}
    k_hi = np.searchsorted(hi[o_hi], cuts, side="right")  # #{hi_i <= L}
    red = (total - q_lo[k_lo]) + (a_lo[k_lo] - cuts * b_lo[k_lo]) - (a_hi[k_hi] - cuts * b_hi[k_hi])
    # red is non-increasing in L: the last cut still reducing >= need, and the next one.
    k = int(np.searchsorted(-red, -need, side="right")) - 1
    k = min(max(k, 0), cuts.size - 2)
    r0, r1 = float(red[k]), float(red[k + 1])
    level = float(cuts[k]) if r0 <= r1 else float(
        cuts[k] + (r0 - need) / (r0 - r1) * (cuts[k + 1] - cuts[k]))  # Σr is linear in between
    r = np.clip((E - level * e) / g, 0.0, q)
    # One rounding correction on the partly reduced positions keeps Σr = need to ~1 ulp.
    err = need - float(r.sum())
    part = (r > 0.0) & (r < q)
    if err != 0.0 and part.any():
        w = e[part] / g[part]
        r[part] = np.clip(r[part] + err * w / w.sum(), 0.0, q[part])
    return r, level


def allocate_risk_based(q, mark, equity, contracts_needed, gap_per_contract=0.0, *,
                        exposure=None, factor_beta=1.0) -> ContractAllocation:
    """Leverage draining (WF) of program (RB), module docstring.

    q                contracts per position (>= 0) on the ADL'd side.
    mark             the coin's mark per position (USD, > 0 to be ranked).
    equity           account equity per position (USD; <= 0 first, NaN last).
    contracts_needed Q, the contracts to match (the bankrupt side's size).
    gap_per_contract USD the winner loses per contract closed (transfer price vs mark).
    exposure         E_i in USD; None = q·mark (single-asset gross leverage). For the
                     factor form pass the account's net β-notional signed to the side.
    factor_beta      β of the reduced coin (g_i = β·mark).

    Returns a ContractAllocation: contracts r, x = r·gap, level = the cutoff L, feasible iff
    Q <= Σq (above: everything closed, feasible=False).
    """
    q = as_capacity(q, "q")
    n = q.size
    m = as_scores(mark, n, "mark")
    e = as_scores(equity, n, "equity")
    gap = np.broadcast_to(as_capacity(gap_per_contract, "gap_per_contract"), q.shape).astype(np.float64)
    need = as_budget(contracts_needed)
    beta = as_scores(factor_beta, n, "factor_beta")
    g = beta * m
    E = q * g if exposure is None else as_scores(exposure, n, "exposure")
    if n and not (np.all(np.isfinite(E)) and np.all(np.isfinite(np.nan_to_num(g, nan=0.0)))):
        raise ValueError("exposure and mark must be finite")
    ranked_g = np.isfinite(g) & (g > 0.0)
    first = ranked_g & ~np.isnan(e) & (e <= 0.0) & (q > 0.0)  # infinite leverage
    ranked = ranked_g & (e > 0.0) & (q > 0.0)
    last = (q > 0.0) & ~first & ~ranked
    r = np.zeros(n)
    left = need
    r[first] = _pro_rata_contracts(q[first], left)
    left -= float(r[first].sum())
    # The cutoff: inf while only infinitely levered positions are reduced.
    level = float("inf") if first.any() and left <= 0.0 else float("nan")
    if ranked.any():
        r_ranked, lvl = drain_level(E[ranked], e[ranked], g[ranked], q[ranked], left)
        r[ranked] = r_ranked
        left -= float(r_ranked.sum())
        if not level == float("inf"):
            level = lvl
    if left > 0.0 and last.any():
        r[last] = _pro_rata_contracts(q[last], left)
    total = float(q.sum())
    uniform_gap = bool(n == 0 or np.all(gap == gap[0]))
    return ContractAllocation(
        x=r * gap,
        budget=min(need, total) * float(gap[0]) if (n and uniform_gap) else float("nan"),
        capacity=float((q * gap).sum()),
        feasible=is_feasible(need, total),
        level=level,
        contracts=r,
        contracts_needed=need,
    )


def risk_based(q, mark, equity, contracts_needed, gap_per_contract=0.0, *, exposure=None,
               factor_beta=1.0) -> np.ndarray:
    """USD haircut per position of leverage draining; see ``allocate_risk_based``."""
    return allocate_risk_based(q, mark, equity, contracts_needed, gap_per_contract,
                               exposure=exposure, factor_beta=factor_beta).x


def post_leverage(q, mark, equity, contracts, *, exposure=None, factor_beta=1.0) -> np.ndarray:
    """ℓ_i(r_i) = (E_i − g_i r_i)/e_i after reducing ``contracts`` (inf where e <= 0)."""
    q = np.asarray(q, dtype=np.float64)
    g = np.asarray(factor_beta, dtype=np.float64) * np.asarray(mark, dtype=np.float64)
    E = q * g if exposure is None else np.asarray(exposure, dtype=np.float64)
    e = np.asarray(equity, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(e > 0.0, (E - g * np.asarray(contracts, dtype=np.float64)) / e, np.inf)
