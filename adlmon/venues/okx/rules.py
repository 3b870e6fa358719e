"""OKX's ADL state, per instFamily (venues.md §4, venues-wire.md §4.2; issue 11).

Armed while the latest ``adl-warning`` push's ``state`` is ``adl``; ``warning`` is a
warning, not armed; ``normal`` (old shape, pushed every minute) is normal. Since
2026-06-09 the channel pushes only in ``warning``/``adl``, once a second, so
silence means normal: a family not pushed for ``silence_ms`` (default
:data:`SILENCE_MS`, 15 s = 15 missed pushes; ``[venues.okx] adl_silence_ms``)
returns to normal at its last push + ``silence_ms``, measured on OKX's exchange
time (any OKX event moves it; marks arrive every few hundred ms).
"""

from __future__ import annotations

from adlmon.engine.adlstate import ARMED, NORMAL, WARNING, AdlRule
from adlmon.events import AdlSignal

SILENCE_MS = 15_000
_LEVEL = {"adl": ARMED, "warning": WARNING, "normal": NORMAL}


def judge(sig: AdlSignal, prev: str) -> tuple[str, str]:
    adl_type = sig.details.get("adlType") or ""
    return _LEVEL[sig.state], f"state={sig.state}" + (f" adlType={adl_type}" if adl_type else "")


def rule(silence_ms: int = SILENCE_MS) -> AdlRule:
    return AdlRule(judge, silence_ms)
