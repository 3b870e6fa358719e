"""Bybit v5, the venue's face (venues.md §3, venues-wire.md §3; issue 11).

Bybit's ADL fills are private; its public data shows what triggers ADL:
``adlAlert`` (the venue's own per-symbol trigger inputs, every second),
insurance pools and every liquidation with its bankruptcy price. ``parse.py``
holds the shapes, ``rules.py`` the trigger, ``ws.py`` the collectors,
``fake.py`` a fake venue, ``private.py`` your own ADL fills (read-only keys).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from adlmon.venues import SourceContext, VenueFace
from adlmon.venues.bybit import rules
from adlmon.venues.bybit.config import BybitConfig
from adlmon.venues.cexface import adl_rule, fake_factory

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


def _sources(ctx: SourceContext):
    from adlmon.venues.bybit.ws import feeds

    return feeds(ctx)


def _capture_parser(cfg: Any):
    from adlmon.venues.bybit.parse import BybitParser

    return BybitParser()


def _demo_config(cfg: BybitConfig, fake) -> BybitConfig:
    return dataclasses.replace(cfg, enabled=True, linear_url=fake.ws_url("/v5/public/linear"),
                               inverse_url=fake.ws_url("/v5/public/inverse"),
                               private_url=fake.ws_url("/v5/private"), rest_url=fake.rest_url)


async def _fake(cascade_dir=None, speed: float = 1.0, **kw):
    from adlmon.venues.bybit.fake import FakeBybit

    return await fake_factory(FakeBybit)(cascade_dir, speed, **kw)


FACE = VenueFace(
    name="bybit", config=BybitConfig, sources=_sources, capture_parser=_capture_parser,
    coverage=COVERAGE, fake=_fake, demo_config=_demo_config,
    extra={"adl_rule": adl_rule(lambda cfg: rules.RULE)},
)
