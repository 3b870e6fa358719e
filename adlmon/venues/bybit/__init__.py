"""Bybit v5, the venue's face (venues.md §3, venues-wire.md §3; issue 11).

Bybit's ADL fills are private; its public data shows what triggers ADL:
``adlAlert`` (the venue's own per-symbol trigger inputs, every second),
insurance pools and every liquidation with its bankruptcy price. ``parse.py``
holds the shapes, ``rules.py`` the trigger, ``ws.py`` the collectors,
``fake.py`` a fake venue, ``private.py`` your own ADL fills (read-only keys).
"""

from __future__ import annotations

import dataclasses

from adlmon.venues.bybit import rules
from adlmon.venues.bybit.config import BybitConfig
from adlmon.venues.cexface import cex_face

COVERAGE = (
    "Public: the venue's own ADL trigger per symbol (adlAlert: pool balance b, 8 h drawdown "
    "ratio pr against i_pr/adl_sr/adl_tt), so adl_armed is the documented rule itself; "
    "isolated insurance pools every second, shared pools only by REST and T+1 (b of a shared "
    "pool is yesterday's: the b <= 0 rule can lag a day there); every liquidation "
    "(allLiquidation, one subscription per symbol) with its bankruptcy price but no fill "
    "price or account, so fund losses are estimated against the mark. Not public: ADL fills, "
    "the ADL'd accounts, the per-symbol PnL behind pr, a liquidation backfill (a reconnect "
    "gap is lost). With a read-only key: your own AdlTrade fills and adlRankIndicator."
)


def _demo_config(cfg: BybitConfig, fake) -> BybitConfig:
    return dataclasses.replace(cfg, enabled=True, linear_url=fake.ws_url("/v5/public/linear"),
                               inverse_url=fake.ws_url("/v5/public/inverse"),
                               private_url=fake.ws_url("/v5/private"), rest_url=fake.rest_url)


FACE = cex_face("bybit", BybitConfig, COVERAGE, rule=lambda cfg: rules.RULE,
                demo_config=_demo_config)
