"""The engine of one venue: events in, finished ADL waves out (DESIGN §1, §4).

Events are grouped into blocks (consecutive events with the same exchange
time, as Hyperliquid applies one block at one timestamp: liquidations, then
the ADL fills, paper §6.1). A block is processed when the next time arrives,
in three steps: the wave tracker sees the time (horizon marks, gap closure);
the block's ADL fills are recorded with the ledger state *before* the block
(loser equity for the deficit, eligible winners); then the ledger applies the
block. A wave is emitted once it is closed and every horizon is reached, or at
``finish()`` (input ended) / ``tick()`` (live wall clock).

Event time is the only clock; ``tick(now_ms)`` is how a live caller lets
wall-clock time close waves and reach horizons when the feed is quiet.

A bad event (issue 9: one the parsers let through with a value the ledger
cannot use, e.g. an object as user) is skipped, counted (``bad_events``,
exported as the anomaly ``bad_event``) and logged (throttled); the rest of
the stream, the rest of its block included, is applied. The engine never
stops on one event and never applies one twice.
"""

from __future__ import annotations

import logging
from collections import Counter
from operator import itemgetter
from typing import Any, Iterable

from adlmon.events import (
    ADL, LIQUIDATION, OTHER, AccountSnapshot, Fill, FeedGap, Funding, LedgerUpdate, Mark,
)
from adlmon.engine.ledger import Ledger, fill_row
from adlmon.engine.waves import REACHED, Wave, WaveTracker
from adlmon.errorlog import ErrorLog

log = logging.getLogger(__name__)

_SPECIAL_KINDS = frozenset({ADL, LIQUIDATION, OTHER})
_time_of_row = itemgetter(6)
_kind_of_row = itemgetter(8)
_STAT_OF_TYPE = {Mark: "marks", Funding: "fundings", LedgerUpdate: "ledger_updates",
                 AccountSnapshot: "snapshots", FeedGap: "feed_gaps"}


_NUMBER = (float, int)


def _row_usable(r: tuple) -> bool:
    """Whether the ledger can apply a fill row (the salvage path only, never the hot one)."""
    try:
        return (len(r) == 15 and r[1].__class__ is str and r[2].__class__ is str
                and all(r[k].__class__ in _NUMBER for k in (4, 5, 6, 7, 9, 10)))
    except TypeError:
        return False


class Engine:
    """Ledger + wave tracker of one venue.

    ``apply(event)`` -> waves completed by this event; ``apply_fill_rows(rows)``
    is the same for a batch of fill rows (replay hot path); ``tick(now_ms)``
    and ``finish()`` close by wall clock / end of input.
    """

    def __init__(self, venue: str = "hyperliquid", gap_ms: int = 5000,
                 horizons_ms: Iterable[int] = (0,), ledger: Ledger | None = None):
        self.venue = venue
        self.ledger = ledger if ledger is not None else Ledger()
        self.waves = WaveTracker(venue, gap_ms, tuple(horizons_ms), self.ledger)
        self._block_t: int | None = None
        self._pending: list = []  # the current block: row lists and other events, in order
        self._rows: list | None = None  # the row list fills are being appended to
        self._adl: list = []  # ADL rows of the current block
        self._counts: Counter = Counter()
        self.last_time_ms: int | None = None
        self.first_time_ms: int | None = None  # the input's time range, with last_time_ms
        self.last_bad_event = ""
        self._errors = ErrorLog(log)

    # ------------------------------------------------------------------ input

    def apply(self, event) -> list[Wave]:
        cls = event.__class__
        t = event.to_ms if cls is FeedGap else getattr(event, "time_ms", None)
        if t.__class__ is not int:  # the block order needs a comparable time
            self.bad_event(TypeError(f"time {t!r:.40} is not an integer"), event)
            return []
        out = self._advance(t) if t != self._block_t else []
        if cls is Fill:
            row = fill_row(event)
            try:
                special = row[8] in _SPECIAL_KINDS
            except TypeError as exc:  # an unhashable kind
                self.bad_event(exc, event)
                return out
            if self._rows is None:
                self._rows = []
                self._pending.append(self._rows)
            self._rows.append(row)
            self._counts["fills"] += 1
            if special:
                self._count_special((row,))
        else:
            self._rows = None
            self._pending.append(event)
            self._counts[_STAT_OF_TYPE.get(cls, "other_events")] += 1
        return out

    def apply_fill_rows(self, rows: list[tuple]) -> list[Wave]:
        """A batch of fill rows (tuples in ``Fill`` field order), e.g. one node block."""
        if not rows:
            return []
        t = rows[0][6]
        if rows[-1][6] != t or (len(rows) > 2 and len(set(map(_time_of_row, rows))) != 1):
            out = []
            for r in rows:  # mixed timestamps: one block per run of equal times
                out += self.apply(Fill(*r))
            return out
        out = self._advance(t) if t != self._block_t else []
        self._rows = None
        self._pending.append(rows)
        self._counts["fills"] += len(rows)
        if not _SPECIAL_KINDS.isdisjoint(map(_kind_of_row, rows)):  # rare: scan in C first
            self._count_special([r for r in rows if r[8] in _SPECIAL_KINDS])
        return out

    def _count_special(self, rows) -> None:
        c = self._counts
        for r in rows:
            kind = r[8]
            if kind == ADL:
                c["adl_fills"] += 1
                self._adl.append(r)
            elif kind == LIQUIDATION:
                c["liquidation_fills"] += 1
            else:
                c["unknown_dir"] += 1
                continue
            liq = r[13]
            mark = liq.mark_px if liq is not None else None
            if mark is None or mark != mark:  # no liquidation markPx: B of its wave incomplete
                c["missing_mark_px"] += 1

    def _advance(self, t: int) -> list[Wave]:
        """Time moves to ``t``: process the pending block, then let the tracker see t."""
        out = self._flush()
        if self._block_t is not None and t < self._block_t:
            self._counts["out_of_order"] += 1
        self._block_t = t
        if self.last_time_ms is None or t > self.last_time_ms:
            self.last_time_ms = t
        if self.first_time_ms is None or t < self.first_time_ms:
            self.first_time_ms = t
        return out + self.waves.before_block(t)

    def _flush(self) -> list[Wave]:
        if not self._pending:
            return []
        t = self._block_t
        pending, self._pending, self._rows = self._pending, [], None
        adl, self._adl = self._adl, []
        out = self.waves.before_block(t)
        if adl:
            try:
                self.waves.add_adl(t, adl, {})
            except Exception as exc:  # noqa: BLE001 - module docstring: skip, count, go on
                good = [r for r in adl if _row_usable(r)]
                self.bad_event(exc, f"{len(adl) - len(good)} of {len(adl)} ADL rows at {t}")
                if good and len(good) < len(adl):
                    try:
                        self.waves.add_adl(t, good, {})
                    except Exception as exc2:  # noqa: BLE001
                        self.bad_event(exc2, f"{len(good)} ADL rows at {t}")
        apply_rows = self.ledger.apply_fill_rows
        apply = self.ledger.apply
        for item in pending:
            try:
                if item.__class__ is list:
                    apply_rows(item)
                else:
                    apply(item)
            except Exception as exc:  # noqa: BLE001 - module docstring: skip, count, go on
                if item.__class__ is list:
                    self._salvage_rows(item, exc)
                else:
                    self.bad_event(exc, item)
        self._counts["blocks"] += 1
        return out

    def _salvage_rows(self, rows: list, exc: Exception) -> None:
        """A batch of rows raised part-way: the rows before the first unusable one were
        applied; that one is skipped, the rest applied one by one (each guarded)."""
        bad = next((i for i, r in enumerate(rows) if not _row_usable(r)), None)
        if bad is None:  # not a value the check knows: where it stopped is unknown
            self.bad_event(exc, f"a batch of {len(rows)} fill rows (partly applied)")
            return
        self.bad_event(exc, rows[bad])
        for r in rows[bad + 1:]:
            if not _row_usable(r):
                self.bad_event(TypeError("unusable fill row"), r)
                continue
            try:
                self.ledger.apply_fill_rows((r,))
            except Exception as exc2:  # noqa: BLE001
                self.bad_event(exc2, r)

    def bad_event(self, exc: BaseException, what: Any) -> None:
        """Count and log (throttled) one event the engine skips."""
        self._counts["bad_events"] += 1
        self.last_bad_event = f"{exc.__class__.__name__}: {exc}"[:200]
        self._errors.log(exc.__class__.__name__, "%s: skipped an event the engine cannot "
                         "apply (%s): %.300r", self.venue, self.last_bad_event, what)

    # ------------------------------------------------------------------ clocks

    def tick(self, now_ms: int, status: str = REACHED) -> list[Wave]:
        """Live: wall-clock ``now_ms`` passed; a pending block older than now is
        processed, waves quiet for more than gap_ms close, horizons before now
        are reached (``horizon_status`` = ``status``)."""
        out = []
        if self._pending and self._block_t is not None and now_ms > self._block_t:
            out += self._flush()
            self._block_t = None
        out += self.waves.advance_clock(now_ms, status)
        return out

    def finish(self) -> list[Wave]:
        """Input ended: process what is pending and emit every wave."""
        out = self._flush()
        self._block_t = None
        return out + self.waves.finish()

    # ------------------------------------------------------------------ state

    @property
    def stats(self) -> dict[str, int]:
        """Counters: fills, adl_fills, liquidation_fills, unknown_dir, missing_mark_px, blocks,
        marks, fundings, ledger_updates, unknown_ledger, snapshots, feed_gaps,
        divergences, positions_learned, out_of_order, bad_events, waves, accounts."""
        s = {k: 0 for k in ("fills", "adl_fills", "liquidation_fills", "unknown_dir",
                            "missing_mark_px", "blocks",
                            "marks", "fundings", "ledger_updates", "snapshots", "feed_gaps",
                            "out_of_order", "other_events", "bad_events")}
        s.update(self._counts)
        s["divergences"] = self.ledger.divergences
        s["positions_learned"] = self.ledger.positions_learned
        s["unknown_ledger"] = self.ledger.unknown_ledger
        s["waves"] = self.waves.emitted
        s["accounts"] = len(self.ledger)
        return s
