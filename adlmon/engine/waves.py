"""ADL waves: segmentation, needed budget, deficit, production haircut (paper §4.4, DESIGN §4).

A wave is a maximal run of one venue's ADL fills (the winner side, ``kind ==
"adl"``) whose consecutive gaps are at most ``gap_ms`` (a gap of exactly
``gap_ms`` stays in the wave). Per wave t:

- needed budget ``B_t = Σ_k |markPx_k − px_k|·sz_k`` (paper §4.4 step 3); an ADL fill
  without a liquidation markPx adds nothing it could be measured by, so the wave says
  ``needed_complete`` false and ``needed_missing_mark_fills`` how many such fills it has;
- deficit stock ``D_t = Σ_losers (−min equity)+``, each loser's equity taken
  from the ledger before applying each block (one timestamp) holding ADL fills
  against it (§4.4 step 2), and the increment ``Σ_losers (d_L,t − max earlier
  d_L)+`` (§4.7.1: the stock re-counts one hole across waves). A loser the
  ledger does not know -> ``deficit_usd`` null, ``deficit_source`` "unknown";
- production haircut ``H_t(Δ) = Σ_users (Σ_fills s·sz·(M(t_end+Δ) − px))+``,
  s = +1 when a long was closed (§4.4 step 4, the two-pass e^noADL − e^ADL per
  user), M the ledger's mark at or before t_end+Δ; ``horizon_status`` says
  whether a later event (or the live clock) reached t_end+Δ ("reached"), the
  wall clock did while a node source was silent ("wall_clock", app.NodeClock),
  or the input ended first ("input_ended": the last known mark);
- excess ``H − B`` (net, §4.7.2) and its positive part; θ_needed = min(1, B/D),
  θ_prod = min(1, H(first horizon)/D), null when D is null or 0 (§3.6).

A wave also carries, for the counterfactual, its ADL fills as arrays and, per
coin, the eligible winners (holders on the ADL'd side) as the ledger saw them
when the coin first appeared in the wave, before its ADL fills were applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from adlmon.events import BUY, SELL
from adlmon.engine.ledger import HoldersView, Ledger

REACHED = "reached"
REACHED_BY_WALL_CLOCK = "wall_clock"  # reached by the wall clock after the node fell silent
INPUT_ENDED = "input_ended"
CLOSED_BY_GAP = "gap"
CLOSED_BY_CLOCK = "clock"
CLOSED_BY_INPUT_END = "input_ended"
SOURCE_LEDGER = "ledger"
SOURCE_UNKNOWN = "unknown"


@dataclass(frozen=True, eq=False)
class WaveFills:
    """The wave's ADL fills (winner side), in arrival order, as arrays.

    ``mark_px`` is the liquidation object's markPx (NaN when the fill had none).
    """

    user: tuple[str, ...]
    coin: tuple[str, ...]
    side: tuple[str, ...]
    px: np.ndarray
    sz: np.ndarray
    mark_px: np.ndarray
    start_position: np.ndarray
    closed_pnl: np.ndarray
    liquidated_user: tuple[str | None, ...]
    time_ms: np.ndarray
    tid: np.ndarray
    # entry price of the closed position where the venue publishes it (NaN elsewhere)
    entry_px: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.user)

    @property
    def closed_sign(self) -> np.ndarray:
        """+1 where a long was closed (side sell), −1 where a short was (side buy)."""
        return np.where(np.asarray(self.side) == SELL, 1.0, -1.0)


@dataclass(frozen=True, eq=False)
class Wave:
    venue: str
    wave_id: int
    t_start_ms: int
    t_end_ms: int
    adl_fills: int
    accounts: int
    losers: int
    coins: tuple[str, ...]
    notional_usd: float
    closed_pnl_usd: float
    needed_usd: float
    deficit_usd: float | None
    deficit_increment_usd: float | None
    deficit_source: str
    horizons_ms: tuple[int, ...]
    production_haircut_usd: dict[int, float]
    excess_haircut_usd: dict[int, float]
    excess_haircut_positive_usd: dict[int, float]
    horizon_status: dict[int, str]
    theta_needed: float | None
    theta_prod: float | None
    closed_by: str
    # Not in the report: inputs of the counterfactual and audit detail.
    fills: WaveFills = field(repr=False)
    eligible: dict[str, HoldersView] = field(repr=False)
    loser_users: tuple[str, ...] = ()
    loser_min_equity: dict[str, float | None] = field(default_factory=dict, repr=False)
    horizon_marks: dict[int, dict[str, float]] = field(default_factory=dict, repr=False)
    deficit_at_start_usd: float | None = None  # D at the first ADL block: ex-ante information
    needed_missing_mark_fills: int = 0  # ADL fills without markPx: B is a lower bound

    @property
    def paper_counted(self) -> bool | None:
        """Would the paper's pipeline count this wave: its deficit D > 0
        (paper-code.md "Other differences": the paper keeps only waves with
        D > 0). None when D is unknown (``deficit_source`` "unknown"): unknown
        is not "not counted"."""
        return None if self.deficit_usd is None else self.deficit_usd > 0

    def to_dict(self) -> dict[str, Any]:
        """The report fields (CONTRACT "Report"); horizon maps keyed by str(ms)."""
        def by_h(d: dict) -> dict[str, Any]:
            return {str(h): d[h] for h in self.horizons_ms}

        return {
            "venue": self.venue,
            "wave_id": self.wave_id,
            "t_start_ms": self.t_start_ms,
            "t_end_ms": self.t_end_ms,
            "adl_fills": self.adl_fills,
            "accounts": self.accounts,
            "losers": self.losers,
            "coins": list(self.coins),
            "notional_usd": self.notional_usd,
            "closed_pnl_usd": self.closed_pnl_usd,
            "needed_usd": self.needed_usd,
            "needed_complete": self.needed_missing_mark_fills == 0,
            "needed_missing_mark_fills": self.needed_missing_mark_fills,
            "deficit_usd": self.deficit_usd,
            "deficit_increment_usd": self.deficit_increment_usd,
            "deficit_source": self.deficit_source,
            "production_haircut_usd": by_h(self.production_haircut_usd),
            "excess_haircut_usd": by_h(self.excess_haircut_usd),
            "excess_haircut_positive_usd": by_h(self.excess_haircut_positive_usd),
            "horizon_status": by_h(self.horizon_status),
            "theta_needed": self.theta_needed,
            "theta_prod": self.theta_prod,
            "closed_by": self.closed_by,
            "paper_counted": self.paper_counted,
        }


def paper_counted_totals(waves: list[Wave], horizons_ms: tuple[int, ...]) -> dict[str, Any]:
    """Totals over the waves the paper's pipeline would count (``paper_counted``),
    summed the paper's way: ``deficit_stock_sum_usd`` adds each wave's deficit
    stock, as the paper's ΣD does (paper-code.md "Deficit D"); the increment sum
    is adlmon's measure of the same holes. ``waves_unknown``: waves whose D is
    unknown, in neither set."""
    counted = [w for w in waves if w.paper_counted]
    return {
        "waves": len(counted),
        "waves_dropped": sum(1 for w in waves if w.paper_counted is False),
        "waves_unknown": sum(1 for w in waves if w.paper_counted is None),
        "adl_fills": sum(w.adl_fills for w in counted),
        "needed_usd": sum(w.needed_usd for w in counted),
        "deficit_stock_sum_usd": sum(w.deficit_usd for w in counted),
        "deficit_increment_usd": sum(w.deficit_increment_usd or 0.0 for w in counted),
        "production_haircut_usd": {str(h): sum(w.production_haircut_usd[h] for w in counted)
                                   for h in horizons_ms},
    }


class _Building:
    """A wave being collected (open) or waiting for its horizons (closed)."""

    __slots__ = ("wave_id", "t_start", "t_end", "user", "coin", "side", "px", "sz", "mark",
                 "start", "pnl", "liq_user", "time", "tid", "entry", "user_index", "user_idx",
                 "coin_index", "coin_idx", "eligible", "loser_min", "unknown_losers",
                 "missing_loser", "closed_by", "marks", "status", "deficit", "increment",
                 "source", "deficit_at_start")

    def __init__(self, wave_id: int, t: int):
        self.wave_id = wave_id
        self.t_start = t
        self.t_end = t
        for name in ("user", "coin", "side", "px", "sz", "mark", "start", "pnl", "liq_user", "entry",
                     "time", "tid", "user_idx", "coin_idx"):
            setattr(self, name, [])
        self.user_index: dict[str, int] = {}
        self.coin_index: dict[str, int] = {}
        self.eligible: dict[str, HoldersView] = {}
        self.loser_min: dict[str, float] = {}
        self.unknown_losers: set[str] = set()
        self.missing_loser = False
        self.closed_by: str | None = None
        self.marks: dict[int, dict[str, float]] = {}
        self.status: dict[int, str] = {}
        self.deficit: float | None = None
        self.increment: float | None = None
        self.source = SOURCE_LEDGER
        self.deficit_at_start: float | None = None


class WaveTracker:
    """Segments ADL fills into waves and finishes each one (module docstring).

    The engine calls, per block (one timestamp) of events:
    ``before_block(t)`` when time reaches t (captures horizon marks, closes the
    open wave by gap), ``add_adl(t, rows)`` with the block's ADL fill rows
    before the ledger applies the block, then applies it.
    """

    def __init__(self, venue: str, gap_ms: int, horizons_ms: tuple[int, ...], ledger: Ledger):
        if gap_ms <= 0:
            raise ValueError("gap_ms must be positive")
        if not horizons_ms:
            raise ValueError("at least one horizon is needed")
        self.venue = venue
        self.gap_ms = int(gap_ms)
        self.horizons_ms = tuple(int(h) for h in horizons_ms)
        self.ledger = ledger
        self._open: _Building | None = None
        self._waiting: list[_Building] = []  # closed, horizons pending
        self._next_id = 1
        self._max_deficit: dict[str, float] = {}  # loser -> max d_L over earlier waves
        self.emitted = 0

    @property
    def next_wave_id(self) -> int:
        return self._next_id

    def continue_ids(self, last_id: int) -> None:
        """Wave ids go on after ``last_id`` (a restart without state whose wavelog
        already holds waves up to it: a new wave must not reuse an id)."""
        self._next_id = max(self._next_id, int(last_id) + 1)

    @property
    def open_wave_start_ms(self) -> int | None:
        return self._open.t_start if self._open is not None else None

    # ------------------------------------------------------------------ feeding

    def before_block(self, t: int) -> list[Wave]:
        """Time has reached ``t`` (nothing at t applied yet)."""
        w = self._open
        if w is not None and t > w.t_end + self.gap_ms:
            self._close(w, CLOSED_BY_GAP)
        if not self._waiting and self._open is None:
            return []
        self._capture(t, REACHED)
        return self._emit_ready()

    def add_adl(self, t: int, rows: list[tuple], equity_cache: dict | None = None) -> None:
        """ADL fill rows of the block at ``t``, before the ledger applies it."""
        ledger = self.ledger
        w = self._open
        first_block = w is None
        if first_block:
            w = self._open = _Building(self._next_id, t)
            self._next_id += 1
        else:
            w.t_end = max(w.t_end, t)
            # Horizons move with t_end, and marks captured before these fills lack any coin
            # they bring (live: a block can arrive after the clock passed its time).
            w.marks.clear()
            w.status.clear()
        cache = {} if equity_cache is None else equity_cache
        marks = None
        # Eligible winners of coins new to the wave, before their ADL fills.
        for r in rows:
            coin = r[1]
            if coin not in w.eligible:
                start = r[7]
                sign = 1 if start > 0 else -1 if start < 0 else (1 if r[3] == SELL else -1)
                w.eligible[coin] = ledger.holders(coin, sign, cache)
        # Each loser's equity once per block, before the block.
        losers = {}
        for r in rows:
            liq = r[13]
            lu = liq.liquidated_user if liq is not None else None
            if lu is None:
                w.missing_loser = True
            else:
                losers[lu] = None
        for lu in losers:
            if ledger.known(lu):
                if marks is None:
                    marks = ledger.marks()
                v = cache.get(lu)
                eq = v[0] if v is not None else ledger.equities((lu,), cache, marks)[0][0]
                prev = w.loser_min.get(lu)
                if prev is None or eq < prev:
                    w.loser_min[lu] = float(eq)
            else:
                w.unknown_losers.add(lu)
        if first_block and not w.unknown_losers and not w.missing_loser:
            # What an ex-ante controller may know: the losers' hole at the wave's first block.
            w.deficit_at_start = float(sum(max(-e, 0.0) for e in w.loser_min.values()))
        # Columns.
        user_index = w.user_index
        coin_index = w.coin_index
        nan = float("nan")
        for (_v, coin, user, side, px, sz, tm, start, _k, pnl, _f, tid, _h, liq, _d) in rows:
            w.user.append(user)
            w.coin.append(coin)
            w.side.append(side)
            w.px.append(px)
            w.sz.append(sz)
            m = liq.mark_px if liq is not None else None
            w.mark.append(nan if m is None else m)
            entry = liq.entry_px if liq is not None else None
            w.entry.append(nan if entry is None else entry)
            w.start.append(start)
            w.pnl.append(pnl)
            w.liq_user.append(liq.liquidated_user if liq is not None else None)
            w.time.append(tm)
            w.tid.append(tid)
            ui = user_index.get(user)
            if ui is None:
                ui = user_index[user] = len(user_index)
            w.user_idx.append(ui)
            ci = coin_index.get(coin)
            if ci is None:
                ci = coin_index[coin] = len(coin_index)
            w.coin_idx.append(ci)

    def advance_clock(self, now_ms: int, status: str = REACHED) -> list[Wave]:
        """Live: the clock reached ``now_ms`` (closes by clock, reaches horizons, which
        get ``status``)."""
        w = self._open
        if w is not None and now_ms > w.t_end + self.gap_ms:
            self._close(w, CLOSED_BY_CLOCK)
        self._capture(now_ms, status)
        return self._emit_ready()

    def finish(self) -> list[Wave]:
        """Input ended: close the open wave; missing horizons take the last marks."""
        if self._open is not None:
            self._close(self._open, CLOSED_BY_INPUT_END)
        marks = None
        for w in self._waiting:
            for h in self.horizons_ms:
                if h not in w.marks:
                    if marks is None:
                        marks = self.ledger.marks()
                    w.marks[h] = {c: marks.get(c, float("nan")) for c in w.coin_index}
                    w.status[h] = INPUT_ENDED
        return self._emit_ready()

    # ------------------------------------------------------------------ internals

    def _pending(self):
        if self._open is not None:
            yield self._open
        yield from self._waiting

    def _capture(self, t: int, status: str) -> None:
        marks = None
        for w in self._pending():
            for h in self.horizons_ms:
                if h not in w.marks and t > w.t_end + h:
                    if marks is None:
                        marks = self.ledger.marks()
                    w.marks[h] = {c: marks.get(c, float("nan")) for c in w.coin_index}
                    w.status[h] = status

    def _close(self, w: _Building, closed_by: str) -> None:
        w.closed_by = closed_by
        self._open = None
        self._waiting.append(w)
        # Deficit is final once the wave is closed; increments are against earlier waves.
        d_by_loser = {lu: max(-eq, 0.0) for lu, eq in w.loser_min.items()}
        increment = 0.0
        for lu, d in d_by_loser.items():
            prev = self._max_deficit.get(lu, 0.0)
            increment += max(d - prev, 0.0)
            if d > prev:
                self._max_deficit[lu] = d
        if w.unknown_losers or w.missing_loser:
            w.source = SOURCE_UNKNOWN
            w.deficit = None
            w.increment = None
        else:
            w.deficit = float(sum(d_by_loser.values()))
            w.increment = float(increment)

    def _emit_ready(self) -> list[Wave]:
        out = []
        while self._waiting and len(self._waiting[0].marks) == len(self.horizons_ms):
            out.append(self._build(self._waiting.pop(0)))
        return out

    def _build(self, w: _Building) -> Wave:
        px = np.asarray(w.px, dtype=float)
        sz = np.asarray(w.sz, dtype=float)
        mark = np.asarray(w.mark, dtype=float)
        fills = WaveFills(
            user=tuple(w.user), coin=tuple(w.coin), side=tuple(w.side), px=px, sz=sz,
            mark_px=mark, start_position=np.asarray(w.start, dtype=float),
            closed_pnl=np.asarray(w.pnl, dtype=float), liquidated_user=tuple(w.liq_user),
            time_ms=np.asarray(w.time, dtype=np.int64), tid=np.asarray(w.tid, dtype=np.int64),
            entry_px=np.asarray(w.entry, dtype=float),
        )
        needed = float(np.nansum(np.abs(mark - px) * sz))
        sign = np.where(np.asarray(w.side) == BUY, -1.0, 1.0)
        user_idx = np.asarray(w.user_idx, dtype=np.intp)
        coin_idx = np.asarray(w.coin_idx, dtype=np.intp)
        coins_by_index = list(w.coin_index)
        H, excess, excess_pos = {}, {}, {}
        for h in self.horizons_ms:
            m_coin = np.asarray([w.marks[h][c] for c in coins_by_index], dtype=float)
            contrib = sign * sz * (m_coin[coin_idx] - px)
            per_user = np.bincount(user_idx, weights=contrib, minlength=len(w.user_index))
            H[h] = float(np.maximum(per_user, 0.0).sum())
            excess[h] = H[h] - needed
            excess_pos[h] = max(excess[h], 0.0)
        D = w.deficit
        if D is None or D <= 0.0:
            theta_needed = theta_prod = None
        else:
            theta_needed = min(1.0, needed / D)
            theta_prod = min(1.0, H[self.horizons_ms[0]] / D)
        losers = sorted({u for u in w.liq_user if u is not None})
        self.emitted += 1
        return Wave(
            venue=self.venue, wave_id=w.wave_id, t_start_ms=w.t_start, t_end_ms=w.t_end,
            adl_fills=len(w.user), accounts=len(w.user_index), losers=len(losers),
            coins=tuple(sorted(w.coin_index)), notional_usd=float(np.dot(px, sz)),
            closed_pnl_usd=float(np.sum(fills.closed_pnl)), needed_usd=needed,
            deficit_usd=D, deficit_increment_usd=w.increment, deficit_source=w.source,
            horizons_ms=self.horizons_ms, production_haircut_usd=H, excess_haircut_usd=excess,
            excess_haircut_positive_usd=excess_pos, horizon_status=dict(w.status),
            theta_needed=theta_needed, theta_prod=theta_prod, closed_by=w.closed_by or "",
            fills=fills, eligible=dict(w.eligible), loser_users=tuple(losers),
            loser_min_equity={lu: w.loser_min.get(lu) for lu in losers},
            horizon_marks={h: dict(w.marks[h]) for h in self.horizons_ms},
            deficit_at_start_usd=w.deficit_at_start,
            needed_missing_mark_fills=int(np.count_nonzero(np.isnan(mark))),
        )
