"""Queue ADL (paper.md §3.1): the production family, wealth space and contract space, and the
venues' ranking scores.

Wealth-space queue (P-v3 eq. pl-ranking, OL Def. 1): sort by decreasing score, take full
capacity from the head, one partial account, zeros after. It is the optimum of the LP
max <s, x> over X(B, u) = {0 <= x <= beta u, sum x = B} (a fractional knapsack), always an
extreme point of X.

Contract-space queue (production, T1's reading of Dan Robinson's example): close positions in
rank order until the loser's contracts are matched; each closed contract costs the winner the
transfer-price gap, so the USD loss is contracts x gap — not the winner's whole PnL.

Tie-break everywhere: equal scores keep input order (stable sort), NaN scores rank last.
"""

from __future__ import annotations

import numpy as np

from .allocation import (
    Allocation,
    ContractAllocation,
    as_beta,
    as_budget,
    as_capacity,
    as_scores,
    is_feasible,
)


def _queue_order(score: np.ndarray) -> np.ndarray:
    """Indices by decreasing score; ties by index; NaN last. O(n log n) stable sort."""
    key = -score
    key[np.isnan(key)] = np.inf
    return np.argsort(key, kind="stable")


def _greedy_prefix(cap: np.ndarray, budget: float, order: np.ndarray) -> np.ndarray:
    """x_sigma(j) = min(cap_sigma(j), (B - sum_{l<j} cap_sigma(l))+), vectorised."""
    c = cap[order]
    before = np.empty_like(c)
    if c.size:
        before[0] = 0.0
        np.cumsum(c[:-1], out=before[1:])
    take = np.clip(budget - before, 0.0, c)
    x = np.empty_like(cap)
    x[order] = take
    return x


def allocate_queue(u, budget, score, beta=None) -> Allocation:
    """Wealth-space queue (paper.md §3.1, P-v3 eq. pl-ranking): greedy prefix by score.

    x_sigma(j) = min{beta u_sigma(j), B - sum_{l<j} x_sigma(l)} with sigma sorting score
    descending (ties: lower index first; NaN scores last). Equals the LP max <score, x> over
    {sum x = B, 0 <= x_i <= beta_i u_i} (unique when the scores of accounts with capacity are
    distinct). B > C = sum beta u: everyone at cap, feasible=False. O(n log n).
    """
    u = as_capacity(u)
    b = as_budget(budget)
    s = as_scores(score, u.size)
    cap = u * as_beta(beta, u.size)
    capacity = float(cap.sum())
    if u.size == 0:
        return Allocation(np.zeros(0), b, 0.0, is_feasible(b, 0.0))
    # At or over capacity everyone is at cap (exactly, not via a rounded prefix sum).
    x = cap.copy() if b >= capacity else _greedy_prefix(cap, b, _queue_order(s))
    return Allocation(x, b, capacity, is_feasible(b, capacity))


def queue(u, budget, score, beta=None) -> np.ndarray:
    """Greedy prefix by score (paper.md §3.1); see ``allocate_queue``."""
    return allocate_queue(u, budget, score, beta).x


def allocate_contract_queue(q, gap_per_contract, contracts_needed, score, *, lot=None) -> ContractAllocation:
    """Contract-space queue (paper.md §3.1 "Contract-space queue", §3.9 sketch).

    Positions (sizes q_i >= 0 contracts, on the ADL'd winners' side) are closed whole in score
    order until ``contracts_needed`` (the bankrupt position's size) is matched; the last one is
    closed only as far as needed. USD loss x_i = contracts_i * gap_i, gap = |transfer price -
    mark| per contract (scalar or per position). With ``lot`` the sizes are read on that grid
    (floor(q/lot) lots) so that the partial close stays on it; None keeps exact sizes.
    contracts_needed > sum q: every position closed, feasible=False. O(n log n).
    """
    q = as_capacity(q, "q")
    gap = np.broadcast_to(as_capacity(gap_per_contract, "gap_per_contract"), q.shape).astype(np.float64)
    need = as_budget(contracts_needed)
    s = as_scores(score, q.size)
    if lot is not None:
        lot = float(lot)
        if not lot > 0.0:
            raise ValueError("lot must be > 0")
        size = np.floor(q / lot + 1e-9)
        need_units = np.ceil(need / lot - 1e-9)
    else:
        lot = 1.0
        size, need_units = q, need
    total = float(size.sum())
    closed = size.copy() if need_units >= total else _greedy_prefix(size, need_units, _queue_order(s))
    contracts = closed * lot
    x = contracts * gap
    uniform_gap = bool(q.size == 0 or np.all(gap == gap[0]))
    g0 = float(gap[0]) if q.size else 0.0
    return ContractAllocation(
        x=x,
        budget=need_units * lot * g0 if uniform_gap else float("nan"),
        capacity=float((size * lot * gap).sum()),
        feasible=is_feasible(need_units, total),
        contracts=contracts,
        contracts_needed=need_units * lot,
    )


def contract_queue(q, gap_per_contract, contracts_needed, score, *, lot=None) -> np.ndarray:
    """USD loss per position of the contract-space queue; see ``allocate_contract_queue``."""
    return allocate_contract_queue(q, gap_per_contract, contracts_needed, score, lot=lot).x


# ---- scores (paper.md §3.1 "Scores", venues.md §1.4 and §2) --------------------------------

def _clean(score: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Unrankable entries (bankrupt account, zero price) become -inf: last in the queue."""
    out = np.where(valid & np.isfinite(score), score, -np.inf)
    return out.astype(np.float64)


def hyperliquid_index(mark, entry, notional, account_value, side) -> np.ndarray:
    """Hyperliquid's documented ADL sorting index (venues.md §1.4):
    (mark / entry) * (notional / account_value) for longs.

    For shorts the docs give no sign convention; GUESS (venues.md): entry / mark, so that a
    profitable short (mark < entry) also scores above 1 x leverage. ``side`` is +1 long / -1
    short (any signed size works: only its sign is read). notional = |size| * mark (USD).
    account_value <= 0 or non-positive prices give -inf (such an account is being liquidated,
    not ranked as a counterparty).
    """
    mark = np.asarray(mark, dtype=np.float64)
    entry = np.asarray(entry, dtype=np.float64)
    notional = np.abs(np.asarray(notional, dtype=np.float64))
    av = np.asarray(account_value, dtype=np.float64)
    long_side = np.asarray(side, dtype=np.float64) >= 0.0
    valid = (av > 0.0) & (mark > 0.0) & (entry > 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        price_ratio = np.where(long_side, mark / entry, entry / mark)
        score = price_ratio * notional / av
    return _clean(score, valid)


def binance_leverage_pnl(unrealized_pnl, notional, wallet_balance) -> np.ndarray:
    """Binance ADL ranking, current FAQ version (venues.md §2):
    PNL% = uPnL / |notional|, EffectiveLeverage = |notional| / (wallet balance + uPnL),
    score = PNL% * EffLev if PNL% >= 0 else PNL% / EffLev.

    For Portfolio Margin pass the account equity minus uPnL as ``wallet_balance`` so that the
    denominator is the account equity. Zero notional gives score 0; margin balance <= 0 gives
    -inf (bankrupt, not a counterparty).
    """
    upnl = np.asarray(unrealized_pnl, dtype=np.float64)
    notional = np.abs(np.asarray(notional, dtype=np.float64))
    margin_balance = np.asarray(wallet_balance, dtype=np.float64) + upnl
    with np.errstate(divide="ignore", invalid="ignore"):
        pnl_pct = np.where(notional > 0.0, upnl / notional, 0.0)
        eff_lev = notional / margin_balance
        score = np.where(pnl_pct >= 0.0, pnl_pct * eff_lev, pnl_pct / eff_lev)
    score = np.where(notional > 0.0, score, 0.0)
    return _clean(score, margin_balance > 0.0)


def binance_leverage_pnl_legacy(unrealized_pnl, wallet_balance, maint_margin) -> np.ndarray:
    """Binance LeveragePnL, older version (venues.md §2, dev.binance.vision t/17801):
    PnlPercent = max(0, uPnL) / max(1, WalletBalance),
    MarginRatio = MaintMargin / (WalletBalance + uPnL), 0 if that denominator <= 0,
    LeveragePnL = PnlPercent * MarginRatio.
    """
    upnl = np.asarray(unrealized_pnl, dtype=np.float64)
    wb = np.asarray(wallet_balance, dtype=np.float64)
    mm = np.asarray(maint_margin, dtype=np.float64)
    pnl_pct = np.maximum(upnl, 0.0) / np.maximum(wb, 1.0)
    denom = wb + upnl
    with np.errstate(divide="ignore", invalid="ignore"):
        margin_ratio = np.where(denom > 0.0, mm / denom, 0.0)
    score = pnl_pct * margin_ratio
    return _clean(score, np.ones(score.shape, dtype=bool))


def pnl_score(unrealized_pnl) -> np.ndarray:
    """Plain PnL ranking: score = unrealized PnL (USD)."""
    s = np.array(unrealized_pnl, dtype=np.float64)
    return _clean(s, np.ones(s.shape, dtype=bool))
