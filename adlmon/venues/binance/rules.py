"""Binance has no public ADL trigger (venues.md §2, venues-wire.md §5.2; issue 11).

``symbolAdlRisk`` ``high`` is a warning level, never armed; ``medium``/``low`` are
normal. The rating is refreshed every 30 min, so it never decays by silence.
"""

from __future__ import annotations

from adlmon.engine.adlstate import NORMAL, WARNING, AdlRule
from adlmon.events import AdlSignal


def judge(sig: AdlSignal, prev: str) -> tuple[str, str]:
    return (WARNING if sig.state == "high" else NORMAL), f"adlRisk={sig.state}"


RULE = AdlRule(judge)
