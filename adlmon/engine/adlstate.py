"""ADL state per venue and scope, and adlmon's own fund estimate (issue 11 "ADL state").

Pure: events in, transitions out; time is the events' exchange time (no clock).

Two parts, one tracker (:class:`AdlStateTracker`):

* **The venue's own trigger.** Each ``AdlSignal`` is judged by its venue's
  :class:`AdlRule` (declared in ``adlmon/venues/<venue>/rules.py`` and handed in
  by whoever wires the tracker: this module names no venue). A rule maps
  (signal, previous reason) to a level, ``normal``, ``warning`` or ``armed``, and a
  reason; the previous reason lets a rule keep hysteresis (Bybit's drawdown rule
  stays on until ``pr > adl_sr``). A rule may declare ``silence_ms``: a scope that
  was not pushed for that long returns to ``normal`` at ``last push + silence_ms``
  (OKX's current ``adl-warning`` pushes only while in warning/adl). The
  venue's clock for that purpose is the latest exchange time of *any* event of
  the venue (marks keep it moving), so live and replay decide alike.
* **adlmon's own estimate** (where the venue is silent), per pool: the fund's
  drawdown from its trailing 8 h maximum, ``(max_8h − balance)/max_8h``
  (:data:`WINDOW_MS`; the venues define their triggers on that window), the
  bankruptcy losses seen in the liquidation flow over the same window, and a
  shortfall estimate: ``projected = balance − losses seen after the balance's own
  time`` (snapshots lag: Bybit shared pools T+1, OKX daily, Binance periodic),
  ``shortfall_usd = (−projected)+``. A pool warns (level ``warning``, never
  ``armed``: it is our estimate, not the venue's trigger) while its projected
  drawdown ``(max_8h − projected)/max_8h ≥ drawdown_warn_ratio`` or
  ``shortfall_usd > shortfall_warn_usd``.

Outputs: :meth:`AdlStateTracker.apply` returns :class:`Transition` s. ``signals``
(what ``adlmon replay`` reports as ``adl_signals``) are the changes of the
boolean ``armed`` only, ``{"venue", "scope", "armed", "t_ms", "reason"}``;
``warnings`` are every change of level (also normal <-> warning), with ``level``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Iterable

from adlmon.events import AdlSignal, FeedGap, InsuranceFund, LiquidationOrder, Mark, event_time_ms

NORMAL, WARNING, ARMED = "normal", "warning", "armed"
LEVELS = (NORMAL, WARNING, ARMED)
WINDOW_MS = 8 * 3600 * 1000  # trailing max window of the venues' fund triggers (venues.md §3, §4)


@dataclass(frozen=True)
class AdlRule:
    """A venue's documented trigger. ``judge(signal, prev_reason) -> (level, reason)``;
    ``prev_reason`` is the reason of the scope's current level ("" when normal)."""

    judge: Callable[[AdlSignal, str], tuple[str, str]]
    silence_ms: int | None = None  # no push for this long = normal (None: never decays)
    # adlmon's own pool warning thresholds for this venue (None: the tracker's defaults)
    drawdown_warn_ratio: float | None = None
    shortfall_warn_usd: float | None = None


@dataclass(frozen=True)
class Transition:
    venue: str
    scope: str
    level: str  # one of LEVELS, after the transition
    armed: bool
    t_ms: int
    reason: str

    def as_signal(self) -> dict:
        """The ``adl_signals`` entry of a replay report."""
        return {"venue": self.venue, "scope": self.scope, "armed": self.armed,
                "t_ms": self.t_ms, "reason": self.reason}


@dataclass(frozen=True)
class PoolEstimate:
    """adlmon's estimate of one pool (module docstring)."""

    venue: str
    pool: str
    balance_usd: float
    max_8h_usd: float
    drawdown_ratio: float
    losses_8h_usd: float
    projected_usd: float
    shortfall_usd: float
    t_ms: int


@dataclass
class _Scope:
    level: str = NORMAL
    reason: str = ""
    last_push_ms: int = 0


@dataclass
class _Pool:
    symbols: tuple[str, ...] = ()
    balance: float = 0.0
    balance_ms: int = 0
    maxes: deque = field(default_factory=deque)  # (t_ms, balance), balances decreasing
    losses: deque = field(default_factory=deque)  # (t_ms, loss_usd)
    level: str = NORMAL
    estimate: PoolEstimate | None = None


def _liquidation_loss(liq: LiquidationOrder, mark_px: float | None) -> float:
    """The fund's draw by one liquidation order, USD.

    The venue's own figure when it gives one (OKX ``bkLoss``); otherwise the
    fill's shortfall against the bankruptcy price: a long's liquidation (a sell)
    costs the fund ``(bk − fill)·qty`` when it fills below bankruptcy, a short's
    (a buy) ``(fill − bk)·qty``; the fill is the average price when given
    (Binance ``ap``), else the latest mark (Bybit gives only the bankruptcy price).
    """
    if liq.bankruptcy_loss_usd is not None:
        return max(0.0, liq.bankruptcy_loss_usd)
    fill = liq.avg_px if liq.avg_px is not None else mark_px
    if fill is None:
        return 0.0
    diff = liq.bankruptcy_px - fill if liq.side == "sell" else fill - liq.bankruptcy_px
    return max(0.0, diff) * liq.qty


class AdlStateTracker:
    """Events -> ADL transitions and pool estimates (module docstring)."""

    def __init__(self, rules: dict[str, AdlRule], *, drawdown_warn_ratio: float = 0.2,
                 shortfall_warn_usd: float = 0.0, window_ms: int = WINDOW_MS):
        self.rules = dict(rules)
        self.drawdown_warn_ratio = drawdown_warn_ratio
        self.shortfall_warn_usd = shortfall_warn_usd
        self.window_ms = window_ms
        self._scopes: dict[tuple[str, str], _Scope] = {}
        self._pools: dict[tuple[str, str], _Pool] = {}
        self._symbol_pool: dict[tuple[str, str], str] = {}
        self._marks: dict[tuple[str, str], float] = {}
        self._clock: dict[str, int] = {}
        self.signals: list[dict] = []  # adl_signals: changes of `armed`
        self.warnings: list[dict] = []  # every change of level
        self.ignored = 0  # AdlSignals of venues without a rule

    # ------------------------------------------------------------------ input
    def apply(self, event) -> list[Transition]:
        venue = getattr(event, "venue", None)
        if venue is None or isinstance(event, FeedGap):
            return []  # a FeedGap is stamped with local time: it must not move the venue's clock
        t = event_time_ms(event)
        out = self._decay(venue, t)
        if isinstance(event, AdlSignal):
            out += self._on_signal(event)
        elif isinstance(event, InsuranceFund):
            out += self._on_fund(event)
        elif isinstance(event, LiquidationOrder):
            out += self._on_liquidation(event)
        elif isinstance(event, Mark):
            self._marks[(venue, event.coin)] = event.mark_px
        return out

    def apply_all(self, events: Iterable) -> list[Transition]:
        out: list[Transition] = []
        for e in events:
            out += self.apply(e)
        return out

    def advance(self, venue: str, t_ms: int) -> list[Transition]:
        """Move a venue's event clock (e.g. the end of a replay): silent scopes decay."""
        return self._decay(venue, t_ms)

    # ----------------------------------------------------------------- venue rules
    def _on_signal(self, sig: AdlSignal) -> list[Transition]:
        rule = self.rules.get(sig.venue)
        if rule is None:
            self.ignored += 1
            return []
        scope = self._scopes.setdefault((sig.venue, sig.symbol), _Scope())
        scope.last_push_ms = max(scope.last_push_ms, sig.time_ms)
        level, reason = rule.judge(sig, scope.reason if scope.level != NORMAL else "")
        return self._set(scope, sig.venue, sig.symbol, level, reason, sig.time_ms)

    def _decay(self, venue: str, t: int) -> list[Transition]:
        if t <= self._clock.get(venue, -1):
            return []
        self._clock[venue] = t
        rule = self.rules.get(venue)
        if rule is None or rule.silence_ms is None:
            return []
        out = []
        for (v, name), scope in sorted(self._scopes.items()):
            if v == venue and scope.level != NORMAL and t - scope.last_push_ms > rule.silence_ms:
                out += self._set(scope, v, name, NORMAL, f"silent for {rule.silence_ms} ms",
                                 scope.last_push_ms + rule.silence_ms)
        return out

    def _set(self, scope, venue: str, name: str, level: str, reason: str,
             t_ms: int) -> list[Transition]:
        if level not in LEVELS:
            raise ValueError(f"rule of {venue} returned level {level!r}")
        before = scope.level
        scope.reason = reason if level != NORMAL else ""
        if level == before:
            return []
        scope.level = level
        tr = Transition(venue, name, level, level == ARMED, t_ms, reason)
        self.warnings.append({**tr.as_signal(), "level": level})
        if (before == ARMED) != (level == ARMED):
            self.signals.append(tr.as_signal())
        return [tr]

    # ----------------------------------------------------------- adlmon's estimate
    def _on_fund(self, f: InsuranceFund) -> list[Transition]:
        pool = self._pools.setdefault((f.venue, f.pool), _Pool())
        symbols = tuple(getattr(f, "symbols", ()) or ())
        if symbols and symbols != pool.symbols:
            pool.symbols = symbols
            for s in symbols:
                self._symbol_pool[(f.venue, s)] = f.pool
        if f.time_ms >= pool.balance_ms:
            pool.balance, pool.balance_ms = f.balance_usd, f.time_ms
        # Monotone deque: the trailing max in O(1) amortised.
        while pool.maxes and pool.maxes[-1][1] <= f.balance_usd:
            pool.maxes.pop()
        pool.maxes.append((f.time_ms, f.balance_usd))
        return self._estimate(f.venue, f.pool, pool, f.time_ms)

    def _on_liquidation(self, liq: LiquidationOrder) -> list[Transition]:
        name = getattr(liq, "pool", None) or self._symbol_pool.get((liq.venue, liq.symbol))
        pool = self._pools.get((liq.venue, name)) if name else None
        if pool is None:
            return []  # no fund known for it yet: nothing to compare the loss with
        loss = _liquidation_loss(liq, self._marks.get((liq.venue, liq.symbol)))
        if loss > 0:
            pool.losses.append((liq.time_ms, loss))
        return self._estimate(liq.venue, name, pool, liq.time_ms)

    def _estimate(self, venue: str, name: str, pool: _Pool, t: int) -> list[Transition]:
        start = t - self.window_ms
        while len(pool.maxes) > 1 and pool.maxes[0][0] < start:
            pool.maxes.popleft()
        while pool.losses and pool.losses[0][0] < start:
            pool.losses.popleft()
        top = max(pool.maxes[0][1], pool.balance) if pool.maxes else pool.balance
        losses = sum(x for _t, x in pool.losses)
        unbooked = sum(x for ts, x in pool.losses if ts > pool.balance_ms)
        projected = pool.balance - unbooked
        dd = (top - pool.balance) / top if top > 0 else 0.0
        pdd = (top - projected) / top if top > 0 else 0.0
        shortfall = max(0.0, -projected)
        pool.estimate = PoolEstimate(venue, name, pool.balance, top, dd, losses, projected,
                                     shortfall, t)
        rule = self.rules.get(venue)
        ratio = self.drawdown_warn_ratio if rule is None or rule.drawdown_warn_ratio is None \
            else rule.drawdown_warn_ratio
        floor = self.shortfall_warn_usd if rule is None or rule.shortfall_warn_usd is None \
            else rule.shortfall_warn_usd
        warn = pdd >= ratio or shortfall > floor
        level = WARNING if warn else NORMAL
        if level == pool.level:
            return []
        pool.level = level
        reason = (f"shortfall {shortfall:.2f} USD" if shortfall > floor
                  else f"fund drawdown {pdd:.4f} >= {ratio}" if warn else "fund recovered")
        tr = Transition(venue, f"pool:{name}", level, False, t, reason)
        self.warnings.append({**tr.as_signal(), "level": level})
        return [tr]

    # ------------------------------------------------------------------ views
    def pool_of(self, venue: str, symbol: str) -> str | None:
        """The pool a symbol's liquidations draw on, as the funds' symbol lists say."""
        return self._symbol_pool.get((venue, symbol))

    def estimates(self) -> list[PoolEstimate]:
        return [p.estimate for _k, p in sorted(self._pools.items()) if p.estimate is not None]

    def levels(self) -> dict[tuple[str, str], str]:
        """(venue, scope) -> current level, for every scope ever seen not normal."""
        out = {k: s.level for k, s in self._scopes.items()}
        out.update({(v, f"pool:{n}"): p.level for (v, n), p in self._pools.items()})
        return out

    def status(self) -> dict:
        """A JSON-able view (status page): current non-normal scopes and pool estimates."""
        return {
            "scopes": [{"venue": v, "scope": s, "level": lvl}
                       for (v, s), lvl in sorted(self.levels().items()) if lvl != NORMAL],
            "pools": [e.__dict__.copy() for e in self.estimates()],
            "transitions": len(self.warnings),
        }
