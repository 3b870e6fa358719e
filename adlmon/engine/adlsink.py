"""The ADL state tracker's outputs in the daemon: metrics and log lines (issue 11).

``AdlStateSink(tracker, metrics).apply(events)`` is what the daemon calls with
every published batch (the tracker stays pure; this is its only sink): each
transition sets ``adlmon_adl_armed`` / ``adlmon_adl_warning`` of its scope and
is logged (armed at WARNING, the rest at INFO); each pool touched gets its
drawdown, losses and shortfall gauges and its balance; liquidation orders are
counted with their notional (qty × bankruptcy price).
"""

from __future__ import annotations

import logging
from typing import Iterable

from adlmon.engine.adlstate import AdlStateTracker, Transition
from adlmon.events import InsuranceFund, LiquidationOrder

log = logging.getLogger(__name__)


class AdlStateSink:
    def __init__(self, tracker: AdlStateTracker, metrics=None):
        self.tracker = tracker
        self.metrics = metrics

    def apply(self, events: Iterable) -> list[Transition]:
        out: list[Transition] = []
        pools: set[tuple[str, str]] = set()
        liq: dict[str, list] = {}
        for e in events:
            out += self.tracker.apply(e)
            if isinstance(e, InsuranceFund):
                pools.add((e.venue, e.pool))
            elif isinstance(e, LiquidationOrder):
                agg = liq.setdefault(e.venue, [0, 0.0])
                agg[0] += 1
                agg[1] += e.qty * e.bankruptcy_px
                pools.update(self._pools_of(e))
        for tr in out:
            (log.warning if tr.armed else log.info)(
                "ADL %s: %s %s at %d (%s)", tr.level, tr.venue, tr.scope, tr.t_ms, tr.reason)
        m = self.metrics
        if m is None:
            return out
        for tr in out:
            m.set_adl_level(tr.venue, tr.scope, tr.level)
        for est in self.tracker.estimates():
            if (est.venue, est.pool) in pools:
                m.set_insurance_fund(est.venue, est.pool, est.balance_usd, time_ms=est.t_ms)
                m.set_pool_estimate(est.venue, est.pool, est.drawdown_ratio, est.losses_8h_usd,
                                    est.shortfall_usd)
        for venue, (n, notional) in liq.items():
            m.observe_liquidations(venue, n, notional)
        return out

    def _pools_of(self, liq: LiquidationOrder):
        name = liq.pool or self.tracker.pool_of(liq.venue, liq.symbol)
        return [(liq.venue, name)] if name else []
