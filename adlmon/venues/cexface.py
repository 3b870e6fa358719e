"""What the three CEX faces share (issue 11): :func:`cex_face` builds a venue's
``VenueFace`` from its modules (imported lazily: the registry scan stays cheap),
with ``extra["adl_rule"](cfg)``, the venue's ADL rule with the section's warn
thresholds, which the daemon and replay hand to ``AdlStateTracker``."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable

from adlmon.engine.adlstate import AdlRule
from adlmon.venues import VenueFace


def _lazy(path: str) -> Callable[..., Any]:
    """``"module:attr"`` -> a callable importing it on first use."""
    mod, _, attr = path.partition(":")
    return lambda *a, **kw: getattr(importlib.import_module(mod), attr)(*a, **kw)


def adl_rule(rule: Callable[[Any], AdlRule]) -> Callable[[Any], AdlRule]:
    """``FACE.extra["adl_rule"](cfg)``: the venue's rule with the section's warn thresholds."""
    def build(cfg: Any) -> AdlRule:
        return dataclasses.replace(rule(cfg), drawdown_warn_ratio=cfg.drawdown_warn_ratio,
                                   shortfall_warn_usd=cfg.shortfall_warn_usd)
    return build


def cex_face(name: str, config: type, coverage: str, *, rule: Callable[[Any], AdlRule],
             demo_config: Callable[[Any, Any], Any]) -> VenueFace:
    """The face of ``adlmon/venues/<name>/``: ``ws.feeds(ctx)`` its sources,
    ``parse.<Name>Parser()`` its capture parser, ``fake.Fake<Name>`` its fake (which
    plays its own scripted ``scenario()``; the fake contract's ``cascade_dir`` is unused)."""
    base = f"adlmon.venues.{name}"
    cls = {"okx": "Okx", "bybit": "Bybit", "binance": "Binance"}.get(name, name.capitalize())
    parser = _lazy(f"{base}.parse:{cls}Parser")
    fake_cls = _lazy(f"{base}.fake:Fake{cls}")

    async def fake(cascade_dir=None, speed: float = 1.0, **kw):
        return await fake_cls(**kw).start()

    return VenueFace(name=name, config=config, sources=_lazy(f"{base}.ws:feeds"),
                     capture_parser=lambda cfg: parser(), coverage=coverage, fake=fake,
                     demo_config=demo_config, extra={"adl_rule": adl_rule(rule)})
