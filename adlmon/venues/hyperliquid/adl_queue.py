"""Hyperliquid's documented ADL order (venues.md §1.4, paper.md §3.1 "Scores").

Opposite-side positions are ranked by ``(mark / entry) · (notional / account value)``,
highest first; for shorts adlmon uses ``entry / mark`` (the docs give no sign convention:
our documented guess, the same as the simulator's). Account value <= 0 ranks last. The
exposure view (adlmon/exposure.py) reads ``ORDER``; the rank audit of every wave uses the
same ``mechanisms.hyperliquid_index``.
"""

from __future__ import annotations

import numpy as np

from adlmon.exposure import QueueOrder
from adlmon.mechanisms import hyperliquid_index


def score(view) -> np.ndarray:
    """The index per position of a ledger ``HoldersView`` (notional = |size|·mark)."""
    mark = view.mark_px if view.mark_px is not None else np.nan
    size = np.asarray(view.size, dtype=float)
    return hyperliquid_index(mark, view.entry_px, np.abs(size) * mark, view.equity, size)


ORDER = QueueOrder(
    name="hyperliquid_index", kind="rank", score=score,
    note="(mark/entry)·(notional/account value) for longs, (entry/mark)·(…) for shorts "
         "(adlmon's guess: the docs give no short convention); account value <= 0 last",
)
