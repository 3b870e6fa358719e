"""dYdX v4: ADL is public (the indexer's ``v4_trades`` with ``type: "DELEVERAGED"``).

The venue's face (``adlmon.venues``), how the core uses it:

* ``config``: :class:`~.config.DydxConfig` (``[venues.dydx]``, off by default);
  :func:`.config.check` lists the value rules it breaks (``RULES``).
* ``sources(ctx)``: :class:`~.ws.DydxSources` (``start``/``stop``/``status``,
  and ``watermark_ms()``: a live clock ticking the engine must not pass it,
  the merge holds ``merge_hold_ms`` back). Uses ``ctx.publish``, ``ctx.now_ms``
  (also the capture's ``t``), ``ctx.capture`` (a ``CaptureWriter``: every
  frame, REST answer and open/close mark), ``ctx.metrics``, ``ctx.supervisor``.
* ``capture_parser(cfg)``: a fresh :class:`~.parse.DydxStream`:
  ``parse(record)`` per capture record in file order, then ``finish()`` for
  what the merge still holds; a ``PartialParseError`` carries events to keep.
  Replay with the section the live run had (``merge_hold_ms``,
  ``node_rest_url``/``decode_wait_ms``) gives the live run's events.
* ``fake(cascade_dir, speed=..., **kw)``: a started :class:`~.fake.FakeDydx`
  playing the capture in ``cascade_dir`` (``ws_url``, ``rest_url``,
  ``now_ms()``, ``resume()``, ``stop()``, ``done``); ``demo_config(cfg, fake)``
  points the section at it (set ``node_rest_url = fake.rest_url`` too for the
  block decode).
* ``simulate(out, seed=..., **params)``: writes the capture, ``node_blocks.json``
  and ``truth.json``; returns the truth dict (``truth["files"]["capture"]``).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from adlmon.venues import VenueFace
from adlmon.venues.dydx.config import DydxConfig
from adlmon.venues.dydx.parse import VENUE, DydxStream, stream

COVERAGE = (
    "Every ADL (DELEVERAGED) and liquidation (LIQUIDATED) fill of every subscribed market, with "
    "price, size, side and block time, and the oracle price of every block: every ADL wave, its "
    "needed budget B and production haircut H are observable from public data alone. Not "
    "public: the accounts. Each ADL fill counts as its own winner (H is an upper bound of the "
    "per-winner figure), the loser is unknown (the deficit is unknown, not zero) and winners' "
    "capacities are unknown except for watched subaccounts (v4_subaccounts). DELEVERAGED "
    "trades of a market in FINAL_SETTLEMENT are delisting closes, not ADL. The insurance fund "
    "is read only with a node's Cosmos REST (lcd_url); without it the fund is unseen."
)


def _sources(ctx):
    from adlmon.venues.dydx.ws import DydxSources
    return DydxSources(ctx)


def _capture_parser(cfg: Any) -> DydxStream:
    return stream(cfg if cfg is not None else DydxConfig())


async def _fake(cascade_dir, speed: float = 1.0, **kw):
    from adlmon.venues.dydx.fake import start_fake
    return await start_fake(cascade_dir, speed=speed, **kw)


def _demo_config(cfg: DydxConfig, fake) -> DydxConfig:
    return replace(cfg, enabled=True, ws_url=fake.ws_url, rest_url=fake.rest_url)


def _simulate(out, **kw):
    from adlmon.venues.dydx.sim import simulate
    return simulate(out, **kw)


FACE = VenueFace(name=VENUE, config=DydxConfig, sources=_sources, capture_parser=_capture_parser,
                 coverage=COVERAGE, fake=_fake, demo_config=_demo_config, simulate=_simulate,
                 gap_ms=DydxConfig.gap_ms)
