"""Your own fills from a venue's private stream -> ``Fill`` events (issue 11 "Your own ADL").

Generic (names no venue; each venue's ``private.py`` reads its shapes and calls
this): keeps the account's signed position per symbol (from the venue's
position pushes, then moved by each fill) so every fill carries its
``start_position``, and the ADL rank the venue publishes (``adlQuantile``,
``adlRankIndicator``, ``adl``). An ADL fill carries a ``Liquidation`` whose
``mark_px`` is the mark at the fill (the venue's, else the last public mark),
which is what the wave engine's needed budget B uses (DESIGN §4). The account is
called :data:`OWN`: no key or account id ever becomes a label or an event field.
"""

from __future__ import annotations

import hashlib

from adlmon.events import ADL, BUY, CLOSE, LIQUIDATION, OPEN, Fill, Liquidation

OWN = "own"  # the user of every own fill (never the key or the venue's account id)


def tid_of(exec_id: str) -> int:
    """A stable integer trade id from the venue's execution id (strings on these venues)."""
    return int.from_bytes(hashlib.blake2b(exec_id.encode(), digest_size=7).digest(), "big")


class OwnPositions:
    def __init__(self, venue: str):
        self.venue = venue
        self.positions: dict[str, float] = {}
        self.entry: dict[str, float] = {}
        self.ranks: dict[str, dict] = {}  # symbol -> {"rank": ..., "time_ms": ...}
        self.marks: dict[str, float] = {}  # last public marks (the venue's parser feeds them)

    def set_position(self, symbol: str, size: float, entry_px: float | None = None) -> None:
        self.positions[symbol] = size
        if entry_px is not None:
            self.entry[symbol] = entry_px

    def set_rank(self, symbol: str, rank, t_ms: int) -> None:
        self.ranks[symbol] = {"rank": rank, "time_ms": t_ms}

    def fill(self, symbol: str, side: str, px: float, sz: float, t_ms: int, exec_id: str, *,
             adl: bool = False, liquidation: bool = False, closed_pnl: float | None = None,
             fee: float = 0.0, mark_px: float | None = None, label: str = "") -> Fill:
        start = self.positions.get(symbol, 0.0)
        signed = sz if side == BUY else -sz
        closing = start * signed < 0
        if closed_pnl is None:
            entry = self.entry.get(symbol)
            closed = min(abs(start), sz) if closing else 0.0
            closed_pnl = 0.0 if entry is None else (px - entry) * closed * (1 if start > 0 else -1)
        kind = ADL if adl else LIQUIDATION if liquidation else CLOSE if closing else OPEN
        liq = None
        if adl or liquidation:
            mark = mark_px if mark_px is not None else self.marks.get(symbol)
            liq = Liquidation(None, float("nan") if mark is None else mark, "adl" if adl else "liquidation")
        self.positions[symbol] = start + signed
        return Fill(self.venue, symbol, OWN, side, px, sz, t_ms, start, kind, closed_pnl, fee,
                    tid_of(exec_id), exec_id, liq, label)
