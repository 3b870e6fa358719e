"""Measures of one allocation and the per-round losses of the online-learning paper.

Notation (paper §1.3, §1.4, §3.7): winners i with PnL capacity u_i = (PnL_i)_+, haircut
x_i ≥ 0 (USD), realized haircut H = Σ_i x_i, ex-post needed budget B = B^needed_t,
loser-side deficit D = D_t, largest single loser shortfall Δ = Δ_t.

All functions are pure numpy, vectorised over accounts; ratios whose denominator is not
positive are NaN (undefined, never invented). Empty waves give H = 0, max share 0,
0 accounts touched and υ = 0.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "CAPACITY_ATOL_USD",
    "CAPACITY_RTOL",
    "EPS_USD",
    "SHARE_CONVENTIONS",
    "accounts_touched",
    "allocation_summary",
    "capacity_without_dust",
    "fairness_loss",
    "fairness_share",
    "max_share",
    "overshoot",
    "pmr",
    "ptsr",
    "rd_nse",
    "round_loss",
    "surrogate_loss",
    "top_survivor_usd",
    "total",
    "tracking_loss",
    "undershoot",
]

# ε of OL eq. (10)/(23): keeps x_i/(u_i + ε) finite for zero capacities (USD).
EPS_USD = 1e-12

# A capacity u_i = (PnL_i)+ is a difference of float products (size·(mark − entry), or
# closedPnl·|start|/sz), so a flat position leaves dust of the order 1e-16 of its notional
# instead of 0; a share x_i/u_i against that dust reads 1e15. Capacities at or below
# CAPACITY_RTOL·notional_i + CAPACITY_ATOL_USD count as zero (1e-9 of the notional is
# seven orders above double rounding and below a cent up to $10M; 1e-6 USD is the venue's
# closedPnl resolution).
CAPACITY_RTOL = 1e-9
CAPACITY_ATOL_USD = 1e-6

# Conventions of the per-policy share m_t of OL eq. 23 (fairness_share):
#   "equity": max_i x_i / e_i, the paper's reproduction code (paper §4.7.5), clipped to [0, 1];
#   "pnl":    max_i x_i / u_i, OL eq. 10 on PnL capacity, clipped to [0, 1] (a haircut on an
#             account without capacity counts as 1).
SHARE_CONVENTIONS = ("equity", "pnl")


def _arr(a) -> np.ndarray:
    return np.asarray(a, dtype=float)


def total(x) -> float:
    """H = Σ_i x_i (USD)."""
    return float(_arr(x).sum())


def overshoot(total_usd, needed_usd):
    """[H − B^needed]_+ (OL §3.7). Works on scalars or arrays of waves."""
    return np.maximum(_arr(total_usd) - _arr(needed_usd), 0.0)[()]


def undershoot(total_usd, needed_usd):
    """[B^needed − H]_+ (OL §3.7; its sum over waves is the failure metric V_T)."""
    return np.maximum(_arr(needed_usd) - _arr(total_usd), 0.0)[()]


def max_share(x, u, eps: float = EPS_USD) -> float:
    """m = max_i x_i/(u_i + ε) (OL eq. 10/23): the worst burden. Not clipped to 1, so a
    haircut above an account's capacity shows. 0 for an empty wave."""
    x, u = _arr(x), _arr(u)
    if x.size == 0:
        return 0.0
    return float((x / (u + eps)).max())


def capacity_without_dust(u, notional=0.0, *, rtol: float = CAPACITY_RTOL,
                          atol: float = CAPACITY_ATOL_USD) -> np.ndarray:
    """u_i, with capacities within rounding of zero (u_i <= rtol·|notional_i| + atol) set
    to exactly 0, so that no share is computed against float dust (paper §1.3: u = (PnL)+).
    A NaN notional counts as 0 (the absolute floor alone)."""
    u = np.maximum(_arr(u), 0.0)
    floor = rtol * np.abs(np.nan_to_num(_arr(notional))) + atol
    return np.where(u > floor, u, 0.0)


def fairness_share(summary, convention: str = "equity"):
    """The share m^π_t that enters the fairness term of OL eq. 23, in [0, 1] (or None when
    unknown), from an allocation summary (the report's ``ex_post`` entry).

    ``"equity"`` (default, the paper's convention, paper §4.7.5): ``max_share_equity``
    clipped to [0, 1]. ``"pnl"``: ``max_share`` (OL eq. 10) clipped to [0, 1]; a haircut on
    accounts with no PnL capacity (``max_share_unbounded_accounts`` > 0) is a share of 1.
    With m and m_ref in [0, 1], a round's fairness loss is at most λ·B^needed_t.
    """
    if convention not in SHARE_CONVENTIONS:
        raise ValueError(f"share convention {convention!r}: must be one of {SHARE_CONVENTIONS}")
    if summary is None:
        return None
    if convention == "pnl":
        if (summary.get("max_share_unbounded_accounts") or 0) > 0:
            return 1.0
        v = summary.get("max_share")
    else:
        v = summary.get("max_share_equity")
    if not isinstance(v, (int, float)) or isinstance(v, bool) or math.isnan(v):
        return None  # unknown (null in the report, or not a number)
    return min(max(float(v), 0.0), 1.0)


def accounts_touched(x, min_usd: float = 1e-9) -> int:
    """#{i : x_i > min_usd} (paper §3.1: the queue minimises it). The floor keeps
    floating-point dust of a water-fill from counting as a haircut."""
    return int(np.count_nonzero(_arr(x) > min_usd))


def top_survivor_usd(x, u) -> float:
    """υ^π = max_i (u_i − x_i)_+: the top winner's surviving capacity (paper §1.3)."""
    x, u = _arr(x), _arr(u)
    if u.size == 0:
        return 0.0
    return float(np.maximum(u - x, 0.0).max())


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def ptsr(x, u, deficit_usd: float, *, residual: bool = False) -> float:
    """Top-survivor ratio PTSR = υ^π / D^π (paper §1.4).

    Paper (default): D^π = θ·D with θ = min(1, H/D), i.e. the loss socialized onto
    winners, D^π = min(H, D) (§1.3 post-policy objects).
    ``residual=True``: the OSS reproduction code's υ^π / (D − H) (the deficit left after
    ADL), which is what the ``ptsr_*`` columns of its per-wave CSV hold.
    """
    ups = top_survivor_usd(x, u)
    h = total(x)
    den = deficit_usd - h if residual else min(h, deficit_usd)
    return _ratio(ups, den)


def pmr(x, u, deficit_usd: float, max_loss_usd: float, *, residual: bool = False) -> float:
    """Top-survivor over largest-loser ratio PMR = υ^π / Δ^π (paper §1.4), Δ^π = θ·Δ.

    Paper (default): θ = min(1, H/D). ``residual=True``: OSS's θ = clip((D − H)/D, 0, 1)."""
    ups = top_survivor_usd(x, u)
    h = total(x)
    if not deficit_usd > 0:
        return math.nan
    theta = (deficit_usd - h) / deficit_usd if residual else h / deficit_usd
    return _ratio(ups, min(1.0, max(0.0, theta)) * max_loss_usd)


def rd_nse(x, u, deficit_usd: float) -> float:
    """RD-NSE = υ^π / (υ^π + D − H) (paper §1.4, as the OSS code reports it); equals
    p/(1+p) with p the residual PTSR."""
    ups = top_survivor_usd(x, u)
    return _ratio(ups, ups + deficit_usd - total(x))


def tracking_loss(total_usd, needed_usd):
    """|H^π_t − B^needed_t| (OL eq. 23, first term). Scalars or arrays of waves."""
    return np.abs(_arr(total_usd) - _arr(needed_usd))[()]


def fairness_loss(needed_usd, max_share_policy, max_share_reference, lam: float = 1.0):
    """λ·B^needed_t·|m^π_t − m^ref_t| (OL eq. 23, second term; m^ref = the min–max integer
    program's max share in the same wave)."""
    return (lam * _arr(needed_usd) * np.abs(_arr(max_share_policy) - _arr(max_share_reference)))[()]


def round_loss(total_usd, needed_usd, max_share_policy, max_share_reference, lam: float = 1.0):
    """ℓ^λ_t(π) = |H^π_t − B^needed_t| + λ·B^needed_t·|m^π_t − m^ref_t| (OL eq. 23)."""
    return (tracking_loss(total_usd, needed_usd)
            + fairness_loss(needed_usd, max_share_policy, max_share_reference, lam))


def surrogate_loss(x, u, needed_usd: float, *, lam_track: float = 1.0, lam_fair: float = 1.0,
                   eps: float = EPS_USD) -> float:
    """Deployed convex surrogate ℓ_t(x) = λ_track·|Σx − B^needed| + λ_fair·max_i x_i/(u_i+ε)
    (OL §3.7); the loss of OL's queue-linear-regret example."""
    return lam_track * abs(total(x) - needed_usd) + lam_fair * max_share(x, u, eps)


def allocation_summary(x, u, *, needed_usd: float, deficit_usd: float | None = None,
                       max_loss_usd: float | None = None, eps: float = EPS_USD) -> dict:
    """Every measure of one allocation, keyed in the report's words.

    total_usd, overshoot_usd, undershoot_usd, max_share, accounts_touched,
    top_survivor_usd, and, when D (and Δ) are known, ptsr, pmr, rd_nse (paper
    definitions; None when unknown, NaN when undefined).
    """
    h = total(x)
    out = {
        "total_usd": h,
        "overshoot_usd": float(overshoot(h, needed_usd)),
        "undershoot_usd": float(undershoot(h, needed_usd)),
        "max_share": max_share(x, u, eps),
        "accounts_touched": accounts_touched(x),
        "top_survivor_usd": top_survivor_usd(x, u),
        "ptsr": None,
        "pmr": None,
        "rd_nse": None,
    }
    if deficit_usd is not None:
        out["ptsr"] = ptsr(x, u, deficit_usd)
        out["rd_nse"] = rd_nse(x, u, deficit_usd)
        if max_loss_usd is not None:
            out["pmr"] = pmr(x, u, deficit_usd, max_loss_usd)
    return out
