"""Rank audit: did the venue ADL the accounts its documented ranking puts first? (paper §3.1)

The venue's queue closes positions on the opposite side in decreasing score order
(Hyperliquid: (mark/entry)·(notional/account value); Binance: LeveragePnL; paper §3.1).
From the wave's ADL fills (who was hit, in which order, for how much notional) and the
ledger's candidates with the documented scores, :func:`rank_audit` measures:

* ``kendall_tau`` — Kendall τ-b between the actual order (first fill of each ADL'd
  account) and the predicted order (decreasing score), over the ADL'd accounts that are
  candidates: +1 = the venue followed the ranking exactly, −1 = reversed.
* ``inversions`` — pairs (i, j) of ADL'd candidates with i hit before j although
  score_i < score_j (ties in score are not inversions); out of ``pairs``.
* ``share_outside_head`` — share of the ADL'd notional taken from accounts outside the
  predicted head, the head being the top-k candidates by score where k is the smallest
  number whose cumulative candidate notional reaches the ADL'd notional. ADL'd accounts
  missing from the candidates count as outside (and are also reported as ``unknown_accounts``).

Call it per coin: ADL queues are per asset (paper §3.1, HMA: zero cross-asset ADL).
Pure numpy; Kendall τ in O(n log² n) without scipy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["RankAudit", "count_inversions", "kendall_tau", "rank_audit"]


def _dense_rank(a: np.ndarray) -> np.ndarray:
    """Ranks 0..k−1 with equal values sharing a rank."""
    _, inv = np.unique(a, return_inverse=True)
    return inv.astype(np.int64).reshape(-1)


def count_inversions(y) -> int:
    """#{(i, j) : i < j, y_i > y_j} (strict), by a bottom-up merge sort whose merge step
    counts, for every right-block element, the larger elements of its left block with one
    vectorised searchsorted per level: O(n log² n) in numpy."""
    y = _dense_rank(np.asarray(y))
    n = y.size
    if n < 2:
        return 0
    m = int(y.max()) + 1
    idx = np.arange(n, dtype=np.int64)
    arr = y.copy()
    inv = 0
    width = 1
    while width < n:
        pair = idx // (2 * width)
        right = (idx // width) % 2 == 1
        key = pair * m + arr  # blocks of `width` are sorted, so left keys are globally sorted
        left_keys = key[~right]
        r_keys = key[right]
        r_pair = pair[right]
        # left elements of the same pair greater than r: those with key in (r, pair*m + m)
        upper = np.searchsorted(left_keys, (r_pair + 1) * m, side="left")
        below = np.searchsorted(left_keys, r_keys, side="right")
        inv += int((upper - below).sum())
        arr = np.sort(key) - pair * m  # merge each pair (pairs keep their index ranges)
        width *= 2
    return inv


def _tie_pairs(a: np.ndarray) -> int:
    _, counts = np.unique(a, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def kendall_tau(x, y) -> float:
    """Kendall τ-b with ties (Knight's algorithm), the variant scipy.stats.kendalltau uses
    by default: τ_b = (n0 − n1 − n2 + n3 − 2·discordant)/√((n0 − n1)(n0 − n2)), n0 = n(n−1)/2,
    n1, n2 = pairs tied in x, in y, n3 = pairs tied in both. NaN when undefined (n < 2 or
    one side constant)."""
    x = np.asarray(x, dtype=float).reshape(-1)
    y = np.asarray(y, dtype=float).reshape(-1)
    if x.size != y.size:
        raise ValueError("x and y must have the same length")
    n = x.size
    if n < 2:
        return math.nan
    order = np.lexsort((y, x))  # by x, then y: pairs tied in x are never discordant
    xs, ys = x[order], y[order]
    discordant = count_inversions(ys)
    n0 = n * (n - 1) // 2
    n1 = _tie_pairs(xs)
    n2 = _tie_pairs(ys)
    xr, yr = _dense_rank(xs), _dense_rank(ys)
    n3 = _tie_pairs(xr * (int(yr.max()) + 1) + yr)
    den = math.sqrt(float(n0 - n1) * float(n0 - n2))
    if den == 0:
        return math.nan
    return (n0 - n1 - n2 + n3 - 2 * discordant) / den


@dataclass(frozen=True)
class RankAudit:
    kendall_tau: float  # actual vs predicted order over ADL'd candidates (NaN if < 2)
    inversions: int  # ADL'd candidate pairs hit against the score order
    pairs: int  # pairs compared (n(n−1)/2 over ADL'd candidates)
    share_outside_head: float  # of the ADL'd notional (NaN when nothing was ADL'd)
    head_size: int  # k: top-k candidates whose cumulative notional reaches the ADL'd one
    adl_accounts: int  # distinct ADL'd accounts
    candidates: int
    unknown_accounts: int  # ADL'd accounts absent from the candidates
    adl_notional_usd: float

    def to_dict(self) -> dict:
        return asdict(self)


def rank_audit(candidate_users: Sequence[str], scores, candidate_notional_usd,
               adl_users: Sequence[str], adl_notional_usd, adl_time_ms=None) -> RankAudit:
    """Compare the venue's ADL'd set and order with the documented ranking.

    candidate_users, scores, candidate_notional_usd: the ledger's eligible accounts for one
    coin (holders on the ADL'd side), the documented score (higher = ADL'd first) and their
    position notional (USD).
    adl_users, adl_notional_usd (, adl_time_ms): the wave's ADL fills of that coin, in the
    order the venue reported them; with times, fills are ordered by time (stable, so the
    venue's order breaks ties within a block). Each account's rank is its first fill.
    """
    cand = list(candidate_users)
    scores = np.asarray(scores, dtype=float).reshape(-1)
    cand_notional = np.asarray(candidate_notional_usd, dtype=float).reshape(-1)
    if not (len(cand) == scores.size == cand_notional.size):
        raise ValueError("candidate_users, scores and candidate_notional_usd must have one entry each")
    fills = list(adl_users)
    notional = np.asarray(adl_notional_usd, dtype=float).reshape(-1)
    if notional.size != len(fills):
        raise ValueError("adl_users and adl_notional_usd must have the same length")
    order = np.arange(len(fills))
    if adl_time_ms is not None:
        order = np.argsort(np.asarray(adl_time_ms, dtype=float), kind="stable")

    # distinct ADL'd accounts in order of first fill, with their total notional
    first: dict[str, int] = {}
    per_user: dict[str, float] = {}
    for k in order:
        u = fills[k]
        if u not in first:
            first[u] = len(first)
        per_user[u] = per_user.get(u, 0.0) + abs(float(notional[k]))
    adl_total = float(sum(per_user.values()))

    pos = {u: i for i, u in enumerate(cand)}
    hit = [u for u in first if u in pos]  # in order of first fill
    unknown = len(first) - len(hit)

    # predicted head: decreasing score; stable so equal scores keep candidate order
    by_score = np.argsort(-scores, kind="stable")
    cum = np.cumsum(np.abs(cand_notional[by_score]))
    if adl_total <= 0 or cum.size == 0:
        k = 0
    else:
        # smallest k with cum[k-1] ≥ ADL'd notional (all candidates if never reached)
        k = int(min(np.searchsorted(cum, adl_total * (1 - 1e-12), side="left") + 1, cum.size))
    head = {cand[i] for i in by_score[:k]}
    outside = sum(v for u, v in per_user.items() if u not in head)
    share = outside / adl_total if adl_total > 0 else math.nan

    hit_scores = np.array([scores[pos[u]] for u in hit], dtype=float)
    actual_rank = np.arange(len(hit), dtype=float)
    # predicted rank increases as the score decreases: compare with −score
    tau = kendall_tau(actual_rank, -hit_scores)
    inversions = count_inversions(-hit_scores)
    n = len(hit)
    return RankAudit(
        kendall_tau=tau,
        inversions=inversions,
        pairs=n * (n - 1) // 2,
        share_outside_head=share,
        head_size=k,
        adl_accounts=len(first),
        candidates=len(cand),
        unknown_accounts=unknown,
        adl_notional_usd=adl_total,
    )
