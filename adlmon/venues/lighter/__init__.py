"""Lighter (zkLighter), the venue's face (DESIGN §2; venues-wire.md §2; issue 10).

Lighter publishes every deleveraging fill on its public ``trade/{market}``
channel, with both account ids: adlmon reports every ADL wave, with B and H,
from public data alone. ``parse.py`` holds the definitions; ``ws.py`` and
``rest.py`` the collectors; ``fake.py`` a fake venue; ``sim.py`` a simulated
cascade as Lighter capture files.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from adlmon.venues import SourceContext, VenueFace
from adlmon.venues.lighter.config import LighterConfig

COVERAGE = (
    "Every ADL fill (trade type deleverage) and liquidation of every market, with both "
    "accounts: the taker is the deleveraged account, the maker the winner; marks from "
    "market_stats. B, H and the waves are exact from public data. Winner capacity comes "
    "from maker_position_size_before / maker_entry_quote_before where the trade carries "
    "them, else it is not public (counted as capacity_unknown). The deficit D is seen "
    "where the loser is the LLP pool (its account is public: the insurance fund); a "
    "user loser's equity is not, and D is then unknown. Marks missed during a "
    "reconnect cannot be recovered; trades are backfilled from recentTrades within the "
    "REST budget, the rest is announced as a FeedGap."
)


def _sources(ctx: SourceContext):
    from adlmon.venues.lighter.ws import LighterFeeds

    return LighterFeeds(ctx.cfg, ctx.publish, metrics=ctx.metrics, now_ms=ctx.now_ms,
                        capture=ctx.capture, rng=ctx.rng, supervisor=ctx.supervisor)


def _capture_parser(cfg: Any):
    from adlmon.venues.lighter.parse import LighterParser

    return LighterParser(cfg)


async def _fake(cascade_dir, speed: float = 1.0, **kw):
    from adlmon.venues.lighter.fake import FakeLighter

    return await FakeLighter(cascade_dir, speed=speed, **kw).start()


def _demo_config(cfg: LighterConfig, fake) -> LighterConfig:
    return dataclasses.replace(cfg, enabled=True, ws_url=fake.ws_url, rest_url=fake.rest_url)


def _simulate(out, **kw) -> dict:
    """The cascade as capture files in ``out``; returns truth.json's content."""
    from adlmon.venues.lighter.sim import simulate

    return simulate(out, **kw).truth


FACE = VenueFace(
    name="lighter", config=LighterConfig, sources=_sources, capture_parser=_capture_parser,
    coverage=COVERAGE, fake=_fake, demo_config=_demo_config, simulate=_simulate, gap_ms=5000,
)
