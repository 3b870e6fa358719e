"""Binance USDⓈ-M futures, the venue's face (venues.md §2, venues-wire.md §5; issue 11).

Binance has no public ADL trigger: ``symbolAdlRisk`` ``high`` is a warning,
adlmon's own fund estimate may add one; liquidations are a one-per-symbol-per-
second sample (lower bounds).
"""

from __future__ import annotations

import dataclasses

from adlmon.venues.binance import rules
from adlmon.venues.binance.config import BinanceConfig
from adlmon.venues.cexface import cex_face

COVERAGE = (
    "Public: liquidations (!forceOrder@arr: at most one order per symbol per second, so "
    "every liquidation count, notional and fund-loss figure is a LOWER BOUND; order "
    "(bankruptcy) price and average fill, no account), marks every second, insurance-fund "
    "snapshots per pool group (periodic, not live; USD-like assets only) and symbolAdlRisk "
    "(high = a warning, updated every 30 min). No public ADL trigger: adl_armed is never set "
    "for Binance; adlmon's fund drawdown/shortfall estimate may warn. Not public: ADL fills, "
    "accounts, a liquidation backfill. With a read-only key: your own adl_autoclose fills "
    "and adlQuantile."
)


def _demo_config(cfg: BinanceConfig, fake) -> BinanceConfig:
    return dataclasses.replace(
        cfg, enabled=True, rest_url=fake.rest_url,
        ws_url=fake.ws_url("/market/stream?streams=!forceOrder@arr/!markPrice@arr@1s"))


FACE = cex_face("binance", BinanceConfig, COVERAGE, rule=lambda cfg: rules.RULE,
                demo_config=_demo_config)
