"""What the three CEX faces share (issue 11): the ADL rule built from a venue's
section, the fake's face contract, the demo section pointed at a fake."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

from adlmon.engine.adlstate import AdlRule


def adl_rule(rule: Callable[[Any], AdlRule]) -> Callable[[Any], AdlRule]:
    """``FACE.extra["adl_rule"](cfg)``: the venue's rule with the section's warn thresholds."""
    def build(cfg: Any) -> AdlRule:
        return dataclasses.replace(rule(cfg), drawdown_warn_ratio=cfg.drawdown_warn_ratio,
                                   shortfall_warn_usd=cfg.shortfall_warn_usd)
    return build


def fake_factory(cls: type) -> Callable[..., Any]:
    """``FACE.fake``: ``async (cascade_dir, speed=1.0, **kw)`` -> a started fake (the
    CEX fakes play their own scripted :func:`scenario`; ``cascade_dir`` is unused)."""
    async def start(cascade_dir=None, speed: float = 1.0, **kw):
        return await cls(**kw).start()
    return start
