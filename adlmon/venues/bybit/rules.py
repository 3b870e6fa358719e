"""Bybit's documented ADL trigger, per symbol (venues-wire.md §3.2; issue 11 "ADL state").

Armed when ``b ≤ 0`` (until ``b > 0``: cases 2 and 3 of the doc), or when
``b > adl_tt`` and ``pr < i_pr`` (until ``pr > adl_sr``: case 1 with its stop
ratio). Comparisons are exact: ``b == 0`` is armed, ``pr == i_pr`` does not arm,
``pr == adl_sr`` keeps an armed drawdown armed. ``b`` of a shared pool is T+1
(refreshed 00:00 UTC), so rule 2 can lag by up to a day on those pools; the venue
does not publish the per-symbol PnL behind ``pr``.
"""

from __future__ import annotations

from adlmon.engine.adlstate import ARMED, NORMAL, AdlRule
from adlmon.events import AdlSignal

EQUITY, DRAWDOWN = "b <= 0", "b > adl_tt and pr < i_pr"


def judge(sig: AdlSignal, prev: str) -> tuple[str, str]:
    d = sig.details
    b, pr = d["b"], d["pr"]
    if b <= 0:
        return ARMED, EQUITY
    if prev == DRAWDOWN and pr <= d["adl_sr"]:
        return ARMED, DRAWDOWN  # stays on until pr > adl_sr
    if b > d["adl_tt"] and pr < d["i_pr"]:
        return ARMED, DRAWDOWN
    return NORMAL, ("pr > adl_sr" if prev == DRAWDOWN else "b > 0" if prev == EQUITY else "normal")


RULE = AdlRule(judge)
