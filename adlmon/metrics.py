"""The one catalogue of adlmon's Prometheus metrics (ecosystem.md §2.1).

Every family is declared once in ``FAMILIES`` (grouped: waves, mechanisms,
funds/shortfall, feeds, engine/process), with help text that states the unit,
and built by :class:`Metrics` on its own ``CollectorRegistry`` (tests make fresh
ones; the daemon makes one). The README metric table is generated from the same
list (``python -m adlmon.metrics --readme README.md``).

Conventions: ``adlmon_`` prefix; base units (seconds, ratio 0..1); USD amounts end
in ``_usd`` (every venue is converted to USD at ingest); counters end in
``_total``; no account or address label anywhere but ``address`` on the watch gauges,
whose values come only from ``[exposure] watch`` (at most ``MAX_WATCH``). Label values
are bounded:

- ``venue``: the venues adlmon knows (at most ``MAX_VENUES`` distinct values);
- ``horizon``: the configured production-haircut horizons Δ, in ms, as strings;
- ``mechanism``: the configured counterfactual mechanisms (plus ``production`` on
  the last-wave and policy-loss gauges);
- ``channel``: the feed channels the collectors open (at most ``MAX_CHANNELS``);
- ``source``: the connection (or file tail) a feed series belongs to, so two
  sessions carrying the same channel (one per liquidator vault) keep series of
  their own: ``market``, ``node``, a vault's pool name (at most ``MAX_SOURCES``;
  ``main`` when a caller names none);
- ``reason``: reconnects use the fixed ``RECONNECT_REASONS``; parse errors use the
  parser's short reason (``ParseError.reason``), at most ``MAX_PARSE_REASONS``
  distinct values, the known ones (``PARSE_REASONS``) first;
- ``pool``: insurance-fund pools (at most ``MAX_POOLS``);
- ``task``: supervised task names (``adlmon/supervise.py``, at most ``MAX_TASKS``);
  ``sink``: output sinks (``wavelog``, at most ``MAX_SINKS``);
- ``coin``/``side`` (exposure): the ``MAX_EXPOSURE_COINS`` coins of largest capacity, the
  rest summed into ``other``; side ``long`` | ``short``.

Series exist from the start (issue 8 §2): a family whose label values are known
when the daemon starts (configured venues, horizons, mechanisms, each source's
channels, the fixed reason and kind sets) is created then, counters at 0 and
gauges at 0 (a state: connected, armed) or NaN (a value not measured yet), so an
alert on ``== 0`` can fire offline and panels read 0, not "no data".

A value past a cap is folded into ``other``; an unknown horizon or mechanism
in a wave report is skipped (mixing it into ``other`` would make sums wrong).

Hot paths (feed messages, waves) use cached label children and take counts per
frame/batch (``message(..., n=len(batch))``), not per record (ecosystem.md §2.1:
~1 µs per increment).
"""

from __future__ import annotations

import argparse
import functools
import math
import os
import platform
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from prometheus_client import (
    CollectorRegistry, Counter, Gauge, Histogram, PlatformCollector, ProcessCollector,
    disable_created_metrics, generate_latest,
)

from adlmon import __version__
from adlmon.engine.persist import REASONS as STATE_ERROR_REASONS

KNOWN_VENUES = ("hyperliquid", "binance", "bybit", "okx")
DEFAULT_HORIZONS_MS = (0, 500, 1000, 2000, 5000)
DEFAULT_MECHANISMS = (
    "pro_rata", "capped_pro_rata", "rap", "contract_pro_rata", "min_max_integer",
    "queue_pnl", "queue_hyperliquid", "risk_based",
)
# Why a websocket session ended. Close codes are RFC 6455 §7.4.1; 1006 means the
# TCP connection dropped without a close frame.
RECONNECT_REASONS = (
    "close_1000", "close_1001", "abnormal_1006", "close_1008", "close_1011", "close_1012",
    "close_other", "timeout", "ping_timeout", "silence", "error_payload", "http_429", "http_5xx",
    "connect_error", "server_restart", "frame_too_large", "other",
)
OTHER = "other"
PRODUCTION = "production"  # the venue's own allocation, next to the mechanisms
MAX_VENUES = 10
MAX_CHANNELS = 16
MAX_PARSE_REASONS = 16
MAX_POOLS = 8
MAX_ADL_SCOPES = 16  # per venue: scopes ever armed or warned get a series, the rest "other"
ADL_LEVELS = ("normal", "warning", "armed")
MAX_SOURCES = 16
DEFAULT_SOURCE = "main"
# The parsers' ParseError reasons (and the session's own), created at 0 per channel.
PARSE_REASONS = (
    "bad_json", "bad_number", "bad_value", "missing_field", "unknown_channel",
    "unknown_format", "unknown_shape", "venue_error", "exception",
)
MAX_TASKS = 48  # supervised task names (adlmon/supervise.py): a few per venue source
MAX_SINKS = 8
ENGINE_ANOMALIES = ("divergence", "unknown_dir", "unknown_ledger", "bad_event")
MAX_EXPOSURE_COINS = 20  # coins with their own exposure series (largest capacity first)
MAX_WATCH = 20  # addresses of [exposure] watch
SIDES = ("long", "short")
WAVELOG_REPAIRS = ("truncated_tail", "duplicate_wave")

LAG_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
COMPUTE_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_REASON_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class Family:
    """One metric family. ``name`` is the name used in PromQL (counters with
    ``_total``; histograms by their base name)."""

    name: str
    kind: str  # counter | gauge | histogram
    group: str
    labels: tuple[str, ...]
    help: str
    buckets: tuple[float, ...] = ()

    @property
    def base_name(self) -> str:
        """The name given to prometheus_client (it appends ``_total`` to counters)."""
        return self.name[: -len("_total")] if self.kind == "counter" else self.name


def _f(name, kind, group, labels, help_text, buckets=()):
    return Family(name, kind, group, tuple(labels), help_text, tuple(buckets))


V, H, M = ("venue",), ("venue", "horizon"), ("venue", "mechanism")
C = ("venue", "channel", "source")

FAMILIES: tuple[Family, ...] = (
    # --- waves: one increment per closed ADL wave (DESIGN §4, paper §4.4) ---
    _f("adlmon_adl_waves_total", "counter", "waves", V,
       "ADL waves completed (maximal runs of ADL fills with gaps <= gap_ms). Unit: waves."),
    _f("adlmon_adl_fills_total", "counter", "waves", V,
       "ADL fills (winner side) in completed waves. Unit: fills."),
    _f("adlmon_adl_notional_usd_total", "counter", "waves", V,
       "Notional closed by ADL, sum of px*sz over ADL fills. Unit: USD."),
    _f("adlmon_adl_needed_usd_total", "counter", "waves", V,
       "Needed budget B = sum |markPx - px| * sz over ADL fills (paper §4.4). Unit: USD."),
    _f("adlmon_adl_production_haircut_usd_total", "counter", "waves", H,
       "Production haircut H(Δ): what ADL'd winners lost versus keeping the position "
       "to t_end + Δ (paper §4.4). Unit: USD."),
    _f("adlmon_adl_excess_haircut_usd_total", "counter", "waves", H,
       "Positive part of the excess haircut (H(Δ) - B)+ summed over waves. Unit: USD."),
    _f("adlmon_adl_accounts_touched_total", "counter", "waves", V,
       "Distinct ADL'd accounts per wave, summed over waves (an account in two waves "
       "counts twice). Unit: accounts."),
    _f("adlmon_adl_deficit_increment_usd_total", "counter", "waves", V,
       "Increment of the liquidated accounts' deficit over earlier waves, for waves with a "
       "known deficit. Unit: USD."),
    _f("adlmon_adl_deficit_unknown_waves_total", "counter", "waves", V,
       "Waves whose deficit is unknown (a loser's ledger state was never seen). Unit: waves."),
    _f("adlmon_adl_last_wave_end_timestamp_seconds", "gauge", "waves", V,
       "Exchange time of the last ADL fill of the latest wave. Unit: Unix seconds."),
    _f("adlmon_adl_last_wave_needed_usd", "gauge", "waves", V,
       "Needed budget B of the latest wave. Unit: USD."),
    _f("adlmon_adl_last_wave_production_haircut_usd", "gauge", "waves", H,
       "Production haircut H(Δ) of the latest wave. Unit: USD."),
    _f("adlmon_adl_last_wave_excess_haircut_usd", "gauge", "waves", H,
       "Excess haircut H(Δ) - B of the latest wave (net, may be negative). Unit: USD."),
    _f("adlmon_adl_last_wave_haircut_to_needed_ratio", "gauge", "waves", H,
       "H(Δ) / B of the latest wave (NaN when B = 0). Unit: ratio."),
    _f("adlmon_adl_last_wave_deficit_usd", "gauge", "waves", V,
       "Deficit D (stock) of the latest wave's liquidated accounts; NaN when unknown. Unit: USD."),
    _f("adlmon_adl_last_wave_accounts", "gauge", "waves", V,
       "Distinct accounts ADL'd by production in the latest wave. Unit: accounts."),
    _f("adlmon_adl_last_wave_theta_needed_ratio", "gauge", "waves", V,
       "Severity θ_needed = min(1, B/D) of the latest wave; NaN when D is unknown or 0. "
       "Unit: ratio."),
    _f("adlmon_adl_last_wave_theta_production_ratio", "gauge", "waves", V,
       "Severity θ_prod = min(1, H/D) at the first horizon for the latest wave; NaN when D "
       "is unknown or 0. Unit: ratio."),
    # --- mechanisms: the counterfactual per wave (paper §3, §4.4) ---
    _f("adlmon_adl_optimal_haircut_usd_total", "counter", "mechanisms", M,
       "Haircut each counterfactual mechanism takes at the wave's needed budget B "
       "(ex post), summed over waves. Unit: USD."),
    _f("adlmon_adl_ex_ante_haircut_usd_total", "counter", "mechanisms", M,
       "Haircut each mechanism takes at the severity controller's ex-ante budget, summed "
       "over waves. Unit: USD."),
    _f("adlmon_adl_excess_vs_optimal_usd_total", "counter", "mechanisms", H,
       "Positive part of production haircut H(Δ) minus the optimal mechanism's haircut, "
       "summed over waves. Unit: USD."),
    _f("adlmon_adl_last_wave_mechanism_haircut_usd", "gauge", "mechanisms", M,
       "Haircut of each mechanism at budget B (ex post), and production's, in the latest "
       "wave. Unit: USD."),
    _f("adlmon_adl_last_wave_max_share_ratio", "gauge", "mechanisms", M,
       "Largest haircut share max_i x_i/u_i of each mechanism (and production) in the latest "
       "wave; +Inf when it takes from an account without capacity. Unit: ratio."),
    _f("adlmon_adl_last_wave_mechanism_accounts", "gauge", "mechanisms", M,
       "Accounts each mechanism (and production) touches in the latest wave. Unit: accounts."),
    _f("adlmon_adl_last_wave_excess_vs_optimal_usd", "gauge", "mechanisms", H,
       "Production haircut H(Δ) minus the optimal mechanism's haircut in the latest wave "
       "(net). Unit: USD."),
    _f("adlmon_adl_regret_bound_usd", "gauge", "mechanisms", V,
       "Running severity regret bound sqrt((1+2P) * sum D_t^2) over the waves seen since "
       "start (OL Prop. 1). Unit: USD."),
    _f("adlmon_adl_policy_loss_usd", "gauge", "mechanisms", M,
       "Cumulative per-round loss |H - B| + λ·B·|m - m_ref| of each policy since start "
       "(OL eq. 23); mechanism=\"production\" is the venue's. Unit: USD."),
    _f("adlmon_adl_controller_theta_ratio", "gauge", "mechanisms", V,
       "Ex-ante severity θ_t published by the online controller after the latest wave "
       "(paper §3.7). Unit: ratio."),
    _f("adlmon_adl_controller_budget_usd", "gauge", "mechanisms", V,
       "Ex-ante ADL budget θ_t·D_t of the controller for the latest wave. Unit: USD."),
    # --- funds and shortfall ---
    _f("adlmon_deficit_usd", "gauge", "funds", V,
       "Open shortfall: negative equity of liquidated accounts not yet covered. Unit: USD."),
    _f("adlmon_insurance_fund_usd", "gauge", "funds", ("venue", "pool"),
       "Insurance fund (or backstop vault) balance. Unit: USD."),
    _f("adlmon_insurance_fund_snapshot_timestamp_seconds", "gauge", "funds", ("venue", "pool"),
       "When the insurance fund balance was last read (exchange time). Unit: Unix seconds."),
    _f("adlmon_adl_armed", "gauge", "funds", ("venue", "scope"),
       "1 while the venue's documented ADL trigger holds for the scope (Bybit symbol, OKX "
       "instFamily; issue 11), else 0. scope: those ever armed or warned (at most "
       "MAX_ADL_SCOPES per venue), the rest aggregated in scope=\"other\" (1 if any is). "
       "Unit: boolean."),
    _f("adlmon_adl_warning", "gauge", "funds", ("venue", "scope"),
       "1 while the scope is at the warning level (OKX warning, Binance symbolAdlRisk high, "
       "adlmon's own fund estimate on scope=\"pool:<pool>\"), else 0; armed is not a warning. "
       "Scopes as adlmon_adl_armed. Unit: boolean."),
    _f("adlmon_adl_transitions_total", "counter", "funds", ("venue", "level"),
       "ADL state transitions, by the level entered (normal, warning, armed). Unit: transitions."),
    _f("adlmon_insurance_fund_drawdown_ratio", "gauge", "funds", ("venue", "pool"),
       "The fund's drawdown from its trailing 8 h maximum, (max_8h - balance) / max_8h "
       "(the window of the venues' own triggers). Unit: ratio."),
    _f("adlmon_insurance_fund_losses_usd", "gauge", "funds", ("venue", "pool"),
       "Bankruptcy losses seen in the public liquidation flow over the trailing 8 h (a lower "
       "bound where the flow is a sample: Binance, OKX). Unit: USD."),
    _f("adlmon_insurance_fund_shortfall_usd", "gauge", "funds", ("venue", "pool"),
       "Shortfall estimate: (-(balance - losses seen after the balance's own time))+. Unit: USD."),
    _f("adlmon_liquidations_total", "counter", "funds", V,
       "Liquidation orders seen in the venue's public flow (a sample on Binance and OKX: "
       "a lower bound). Unit: orders."),
    _f("adlmon_liquidation_notional_usd_total", "counter", "funds", V,
       "Notional of the liquidation orders seen, qty x bankruptcy price (a lower bound on "
       "Binance and OKX). Unit: USD."),
    # --- feeds ---
    _f("adlmon_feed_connected", "gauge", "feeds", C,
       "1 while the feed's websocket (or file tail) is connected and subscribed. Unit: boolean."),
    _f("adlmon_feed_last_message_timestamp_seconds", "gauge", "feeds", C,
       "Receipt time of the last data message on the channel. Unit: Unix seconds."),
    _f("adlmon_feed_silence_budget_seconds", "gauge", "feeds", C,
       "Data silence after which a busy channel is considered stale; set only for busy "
       "channels (quiet ones rely on ping/pong). Unit: seconds."),
    _f("adlmon_feed_messages_total", "counter", "feeds", C,
       "Data messages received (frames or file lines). Unit: messages."),
    _f("adlmon_feed_parse_errors_total", "counter", "feeds", (*C, "reason"),
       "Frames that failed to parse, by parser reason. Unit: messages."),
    _f("adlmon_feed_reconnects_total", "counter", "feeds", (*C, "reason"),
       "Reconnects, by why the previous session ended (fixed reason set). Unit: reconnects."),
    _f("adlmon_feed_gaps_total", "counter", "feeds", C,
       "Feed gaps announced after a reconnect (data may be missing). Unit: gaps."),
    _f("adlmon_feed_message_lag_seconds", "histogram", "feeds", C,
       "Exchange timestamp to local receipt of data messages. Unit: seconds.", LAG_BUCKETS_S),
    # --- exposure: the ADL queue now (adlmon/exposure.py, issue 13) ---
    _f("adlmon_adl_queue_positions", "gauge", "exposure", ("venue", "coin", "side"),
       "Open positions on the side (the positions ADL'd when the other side's shortfall "
       "exceeds the backstop). Coins past the cap are summed into coin=\"other\". Unit: positions."),
    _f("adlmon_adl_queue_capacity_usd", "gauge", "exposure", ("venue", "coin", "side"),
       "ADL capacity of the side: sum of (uPnL)+ of its positions, what a PnL haircut could "
       "take to cover the opposite side's shortfall. Unit: USD."),
    _f("adlmon_adl_queue_top10_share_ratio", "gauge", "exposure", ("venue", "coin", "side"),
       "Share of [exposure] reference_shortfall_usd the first 10 positions of the venue's "
       "queue would bear under production (greedy prefix of capacities). Unit: ratio."),
    _f("adlmon_adl_backstop_capacity_usd", "gauge", "exposure", V,
       "Backstop capacity: sum over pools of the positive equity of the liquidator vault or "
       "insurance fund. Unit: USD."),
    _f("adlmon_adl_shortfall_absorbable_usd", "gauge", "exposure", V,
       "Shortfall the backstop absorbs before ADL starts: (backstop capacity - open "
       "shortfall)+ (paper §1.2: ADL iff D > IF). Unit: USD."),
    _f("adlmon_adl_watch_rank", "gauge", "exposure", ("venue", "address", "coin", "side"),
       "Rank (1 = head) of a watched address's position in its coin's ADL queue; address "
       "only from [exposure] watch (at most 20). Unit: rank."),
    _f("adlmon_adl_watch_quantile_ratio", "gauge", "exposure", ("venue", "address", "coin", "side"),
       "Queue quantile of a watched position, (N - rank + 1)/N (1 = head, the percentile of /api/account as a ratio). Unit: ratio."),
    # --- engine and process ---
    _f("adlmon_adl_compute_duration_seconds", "histogram", "engine", V,
       "Wall time to compute one wave's counterfactual report. Unit: seconds.",
       COMPUTE_BUCKETS_S),
    _f("adlmon_engine_fills_total", "counter", "engine", V,
       "Fills applied to the ledger (all kinds). Unit: fills."),
    _f("adlmon_engine_anomalies_total", "counter", "engine", ("venue", "kind"),
       "Ledger anomalies: divergence (ledger vs venue closedPnl), unknown_dir, "
       "unknown_ledger (account without state), missing_mark_px (ADL or liquidation fill "
       "without liquidation markPx: kept, its B term unknown), bad_event (an event the "
       "engine could not apply: skipped and logged, the rest of the stream applied). "
       "Unit: events."),
    _f("adlmon_task_up", "gauge", "engine", ("task",),
       "1 while a supervised task runs (or a start-up task finished), 0 while it is down. "
       "Unit: boolean."),
    _f("adlmon_task_failures_total", "counter", "engine", ("task",),
       "Unexpected exceptions (or returns) that ended a supervised task. Unit: failures."),
    _f("adlmon_task_restarts_total", "counter", "engine", ("task",),
       "Restarts of a supervised task after a failure (with backoff). Unit: restarts."),
    _f("adlmon_sink_write_errors_total", "counter", "engine", ("sink",),
       "Failed writes to an output sink (wavelog); the records are kept and retried. "
       "Unit: errors."),
    _f("adlmon_sink_pending_records", "gauge", "engine", ("sink",),
       "Records waiting for a sink that failed to write (bounded queue). Unit: records."),
    _f("adlmon_sink_dropped_records_total", "counter", "engine", ("sink",),
       "Records dropped because a failing sink's queue was full. Unit: records."),
    _f("adlmon_http_connections", "gauge", "engine", (),
       "Open HTTP connections to the daemon's server. Unit: connections."),
    _f("adlmon_http_connections_evicted_total", "counter", "engine", (),
       "HTTP connections closed because the connection cap was reached (idle ones first). "
       "Unit: connections."),
    _f("adlmon_state_snapshots_total", "counter", "engine", V,
       "State snapshots written (engine, counterfactual, source positions; issue 12). "
       "Unit: snapshots."),
    _f("adlmon_state_snapshot_errors_total", "counter", "engine", ("venue", "reason"),
       "State snapshots not used at start (corrupt, truncated, version, unreadable, "
       "config_changed) or not written (write_failed). Unit: snapshots."),
    _f("adlmon_state_snapshot_bytes", "gauge", "engine", V,
       "Size of the latest state snapshot written. Unit: bytes."),
    _f("adlmon_state_snapshot_timestamp_seconds", "gauge", "engine", V,
       "When the latest state snapshot was written (wall clock). Unit: Unix seconds."),
    _f("adlmon_wavelog_repairs_total", "counter", "engine", ("kind",),
       "Wavelog repairs: truncated_tail (a partial last line cut on open), duplicate_wave "
       "(a wave id already in the file not written again). Unit: events."),
    _f("adlmon_event_loop_lag_seconds", "gauge", "engine", (),
       "Latest measured event-loop scheduling lag. Unit: seconds."),
    _f("adlmon_build_info", "gauge", "engine", ("version", "python"),
       "Build metadata; the value is always 1."),
)

GROUPS = ("waves", "mechanisms", "funds", "exposure", "feeds", "engine")


def catalogue() -> list[str]:
    """Every family name adlmon exports, as used in PromQL (counters with
    ``_total``, histograms by base name)."""
    return [f.name for f in FAMILIES]


def reconnect_reason_for_close(code: int | None) -> str:
    """Map a websocket close code to a ``RECONNECT_REASONS`` value."""
    if code == 1006 or code is None:
        return "abnormal_1006"
    named = f"close_{code}"
    return named if named in RECONNECT_REASONS else "close_other"


def _num(value: Any) -> float | None:
    """A finite float, or None (tolerant of missing, null, strings, NaN)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _nan(value: Any) -> float:
    x = _num(value)
    return math.nan if x is None else x


class _Bounded:
    """A free-form label kept to its first ``limit`` distinct values; later new
    values become ``other`` (cardinality stays bounded whatever callers send)."""

    __slots__ = ("limit", "seen", "pattern")

    def __init__(self, limit: int, initial: Iterable[str] = (), pattern: re.Pattern | None = None):
        self.limit = limit
        self.pattern = pattern
        self.seen: set[str] = set()
        for v in initial:
            self(v)

    def __call__(self, value: Any) -> str:
        v = str(value) if value is not None else OTHER
        if v in self.seen:
            return v
        if (self.pattern is not None and not self.pattern.match(v)) or len(self.seen) >= self.limit:
            return OTHER
        self.seen.add(v)
        return v


class _FeedChildren:
    __slots__ = ("messages", "last_ts", "lag")

    def __init__(self, messages, last_ts, lag):
        self.messages = messages
        self.last_ts = last_ts
        self.lag = lag


class Metrics:
    """Owns a ``CollectorRegistry`` with every family in ``FAMILIES``.

    ``horizons_ms`` and ``mechanisms`` fix the allowed ``horizon`` and ``mechanism``
    label values (from config); ``venues`` are pre-initialised to 0 so that the
    first wave of a venue shows up in ``increase()``.
    """

    def __init__(self, registry: CollectorRegistry | None = None, *,
                 venues: Iterable[str] = ("hyperliquid",),
                 horizons_ms: Iterable[int] = DEFAULT_HORIZONS_MS,
                 mechanisms: Iterable[str] = DEFAULT_MECHANISMS,
                 process_collectors: bool = True):
        # The *_created series double every counter's series count; Prometheus 2.x
        # does not use them from the text format. (Process-wide switch.)
        disable_created_metrics()
        self.registry = registry if registry is not None else CollectorRegistry()
        self.horizons = tuple(str(int(h)) for h in horizons_ms)
        self.mechanisms = tuple(mechanisms)
        self._horizon_set = frozenset(self.horizons)
        self._mechanism_set = frozenset(self.mechanisms)
        self._venue = _Bounded(MAX_VENUES)
        self._channel = _Bounded(MAX_CHANNELS)
        self._pool = _Bounded(MAX_POOLS)
        self._source = _Bounded(MAX_SOURCES)
        self._parse_reason = _Bounded(MAX_PARSE_REASONS, PARSE_REASONS, pattern=_REASON_RE)
        self._task = _Bounded(MAX_TASKS)
        self._sink = _Bounded(MAX_SINKS)
        self.families: dict[str, Any] = {}
        for fam in FAMILIES:
            self.families[fam.name] = self._make(fam)
        self._children: dict[tuple, Any] = {}
        self._feeds: dict[tuple[str, str, str], _FeedChildren] = {}
        self._engine_seen: dict[tuple[str, str, str], float] = {}
        self._funds: dict[str, dict[str, float]] = {}  # venue -> pool -> balance (backstop)
        self._deficits: dict[str, float] = {}
        self._exposure_series: dict[tuple[str, str], set] = {}
        self._adl_scopes: dict[str, _Bounded] = {}
        self._adl_folded: dict[str, dict[str, str]] = {}
        if process_collectors:
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
        self.build_info()
        for kind in WAVELOG_REPAIRS:
            self._child("adlmon_wavelog_repairs_total", kind)
        for venue in venues:
            self._init_venue(self._venue(venue))

    # --- construction ---
    def _make(self, fam: Family):
        kw = dict(name=fam.base_name, documentation=fam.help, labelnames=fam.labels,
                  registry=self.registry)
        if fam.kind == "counter":
            return Counter(**kw)
        if fam.kind == "gauge":
            return Gauge(**kw)
        return Histogram(buckets=fam.buckets, **kw)

    @classmethod
    def from_config(cls, cfg, registry: CollectorRegistry | None = None) -> "Metrics":
        """Label sets from an ``adlmon.config.Config``."""
        venues = [name for name in ("hyperliquid",)
                  if getattr(getattr(cfg.venues, name, None), "enabled", False)]
        return cls(registry, venues=venues or ("hyperliquid",),
                   horizons_ms=cfg.engine.horizons_ms, mechanisms=cfg.counterfactual.mechanisms)

    def _child(self, name: str, *labels: str):
        key = (name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self.families[name].labels(*labels)
        return child

    def _init_venue(self, venue: str) -> None:
        """Create every per-venue series whose labels are known (module docstring,
        "Series exist from the start"): wave and mechanism counters and anomaly
        kinds at 0 (a series born at its first increment is invisible to
        ``increase()``), armed at 0, values not measured yet (last wave, controller,
        regret, shortfall) at NaN."""
        mechanisms = (*self.mechanisms, PRODUCTION)
        for fam in FAMILIES:
            if fam.group not in ("waves", "mechanisms", "funds", "exposure", "engine"):
                continue
            if fam.kind == "gauge":
                if fam.name in ("adlmon_adl_armed", "adlmon_adl_warning"):
                    self._child(fam.name, venue, OTHER).set(0)
                    continue
                if fam.name.startswith("adlmon_adl_watch_"):  # no watched position ranked yet
                    self.set_exposure(venue, {}, {})
                    continue
                if fam.labels == V:
                    keys = [(venue,)]
                elif fam.labels == H:
                    keys = [(venue, h) for h in self.horizons]
                elif fam.labels == M:
                    keys = [(venue, m) for m in mechanisms]
                else:
                    continue  # per pool: declare_pool; process gauges have no venue
                for key in keys:
                    self._child(fam.name, *key).set(math.nan)
                continue
            if fam.labels == V:
                self._child(fam.name, venue)
            elif fam.labels == H:
                for h in self.horizons:
                    self._child(fam.name, venue, h)
            elif fam.labels == M:
                for m in self.mechanisms:
                    self._child(fam.name, venue, m)
            elif fam.labels == ("venue", "kind"):
                for kind in ENGINE_ANOMALIES:
                    self._child(fam.name, venue, kind)
            elif fam.labels == ("venue", "level"):
                for level in ADL_LEVELS:
                    self._child(fam.name, venue, level)
            elif fam.labels == ("venue", "reason"):
                for reason in STATE_ERROR_REASONS:
                    self._child(fam.name, venue, reason)

    def declare_feed(self, venue: str, channel: str, source: str = DEFAULT_SOURCE) -> None:
        """Create a feed channel's series before its first connection: connected 0,
        messages, gaps, every reconnect reason and known parse reason at 0, the last
        message time NaN (never received)."""
        fresh = (venue, channel, source) not in self._feeds  # else it is live already
        feed = self._feed(venue, channel, source)
        v, c, s = self._venue(venue), self._channel(channel), self._source(source)
        if fresh:
            self._child("adlmon_feed_connected", v, c, s).set(0)
            feed.last_ts.set(math.nan)
        for reason in RECONNECT_REASONS:
            self._child("adlmon_feed_reconnects_total", v, c, s, reason)
        for reason in PARSE_REASONS:
            self._child("adlmon_feed_parse_errors_total", v, c, s, self._parse_reason(reason))

    def declare_pool(self, venue: str, pool: str) -> None:
        """An insurance-fund pool known before its first balance: NaN until read."""
        v, p = self._venue(venue), self._pool(pool)
        for name in ("adlmon_insurance_fund_usd", "adlmon_insurance_fund_snapshot_timestamp_seconds",
                     "adlmon_insurance_fund_drawdown_ratio", "adlmon_insurance_fund_losses_usd",
                     "adlmon_insurance_fund_shortfall_usd"):
            if (name, v, p) not in self._children:
                self._child(name, v, p).set(math.nan)

    # --- engine / process ---
    def build_info(self, version: str = __version__) -> None:
        self.families["adlmon_build_info"].labels(version, platform.python_version()).set(1)

    def observe_compute_time(self, venue: str, seconds: float) -> None:
        self._child("adlmon_adl_compute_duration_seconds", self._venue(venue)).observe(seconds)

    def set_loop_lag(self, seconds: float) -> None:
        self.families["adlmon_event_loop_lag_seconds"].set(seconds)

    def observe_engine_stats(self, venue: str, stats: Mapping[str, Any]) -> None:
        """Advance engine counters from the engine's cumulative ``stats`` dict
        (``fills``, ``divergences``, ``unknown_dir``, ``unknown_ledger``,
        ``missing_mark_px``, ``bad_events``)."""
        v = self._venue(venue)
        for key, family, kind in (("fills", "adlmon_engine_fills_total", None),
                                  ("divergences", "adlmon_engine_anomalies_total", "divergence"),
                                  ("unknown_dir", "adlmon_engine_anomalies_total", "unknown_dir"),
                                  ("unknown_ledger", "adlmon_engine_anomalies_total",
                                   "unknown_ledger"),
                                  ("missing_mark_px", "adlmon_engine_anomalies_total",
                                   "missing_mark_px"),
                                  ("bad_events", "adlmon_engine_anomalies_total", "bad_event")):
            total = _num(stats.get(key))
            if total is None:
                continue
            seen = self._engine_seen.get((v, family, key), 0.0)
            if total > seen:
                child = (self._child(family, v) if kind is None
                         else self._child(family, v, kind))
                child.inc(total - seen)
                self._engine_seen[(v, family, key)] = total

    # --- supervision, sinks, HTTP server (adlmon/supervise.py, adlmon/wavelog.py) ---
    def task_up(self, task: str, up: bool) -> None:
        t = self._task(task)
        self._child("adlmon_task_up", t).set(1 if up else 0)
        # series from the start: the task's counters exist (at 0) once it runs
        self._child("adlmon_task_failures_total", t)
        self._child("adlmon_task_restarts_total", t)

    def declare_sink(self, sink: str) -> None:
        """A sink's series before its first write: errors and drops 0, nothing pending."""
        s = self._sink(sink)
        self._child("adlmon_sink_write_errors_total", s)
        self._child("adlmon_sink_dropped_records_total", s)
        self._child("adlmon_sink_pending_records", s).set(0)

    def task_failure(self, task: str) -> None:
        self._child("adlmon_task_failures_total", self._task(task)).inc()

    def task_restart(self, task: str) -> None:
        self._child("adlmon_task_restarts_total", self._task(task)).inc()

    def sink_error(self, sink: str) -> None:
        self._child("adlmon_sink_write_errors_total", self._sink(sink)).inc()

    def sink_pending(self, sink: str, n: int) -> None:
        self._child("adlmon_sink_pending_records", self._sink(sink)).set(n)

    def sink_dropped(self, sink: str, n: int = 1) -> None:
        self._child("adlmon_sink_dropped_records_total", self._sink(sink)).inc(n)

    def http_connections(self, n: int) -> None:
        self.families["adlmon_http_connections"].set(n)

    def http_evicted(self) -> None:
        self.families["adlmon_http_connections_evicted_total"].inc()

    # --- state snapshots and the wavelog (engine/persist.py, io/wavelog.py) ---
    def state_saved(self, venue: str, size_bytes: int, unix_s: float) -> None:
        v = self._venue(venue)
        self._child("adlmon_state_snapshots_total", v).inc()
        self._child("adlmon_state_snapshot_bytes", v).set(size_bytes)
        self._child("adlmon_state_snapshot_timestamp_seconds", v).set(unix_s)

    def state_error(self, venue: str, reason: str) -> None:
        reason = reason if reason in STATE_ERROR_REASONS else "corrupt"
        self._child("adlmon_state_snapshot_errors_total", self._venue(venue), reason).inc()

    def wavelog_repair(self, kind: str, n: int = 1) -> None:
        if kind in WAVELOG_REPAIRS and n > 0:
            self._child("adlmon_wavelog_repairs_total", kind).inc(n)

    # What a wave report drives: kept across restarts (engine/persist.py). Feed series
    # belong to connections; engine counters are rebuilt from the restored engine stats.
    _SAVED_GROUPS = ("waves", "mechanisms", "funds")

    def saved_series(self) -> list[list]:
        """The series of the wave, mechanism and fund groups as ``[name, [label
        values], value]`` (counters and gauges, NaN included): what a state snapshot
        keeps so totals, the running regret bound and policy losses carry on after a
        restart."""
        out = []
        for fam in FAMILIES:
            if fam.group not in self._SAVED_GROUPS or fam.kind == "histogram":
                continue
            for metric in self.families[fam.name].collect():
                for sample in metric.samples:
                    if sample.name == fam.name:
                        out.append([fam.name, [sample.labels[k] for k in fam.labels],
                                    sample.value])
        return out

    def restore_series(self, saved: Iterable) -> int:
        """Put :meth:`saved_series` of the previous run into this fresh catalogue:
        counters continue from their totals, gauges take their values. An unknown
        family or a label set of the wrong length is skipped. Returns the series
        restored."""
        known = {f.name: f for f in FAMILIES if f.group in self._SAVED_GROUPS}
        n = 0
        for item in saved:
            try:
                name, labels, value = item
                fam = known[name]
                if len(labels) != len(fam.labels) or fam.kind == "histogram":
                    continue
                value = float(value)
            except (KeyError, TypeError, ValueError):
                continue
            child = self._child(name, *map(str, labels))
            if fam.kind == "gauge":
                child.set(value)
            elif value > 0 and math.isfinite(value):
                child.inc(value)
            n += 1
        return n

    # --- waves and mechanisms ---
    def observe_wave(self, report: Mapping[str, Any], compute_s: float | None = None) -> None:
        """Account one wave report (``Wave.to_dict()`` plus the optional
        ``counterfactual`` section). Missing or null fields are skipped."""
        v = self._venue(report.get("venue") or "unknown")
        ch = self._child
        ch("adlmon_adl_waves_total", v).inc()
        fills = _num(report.get("adl_fills"))
        if fills is not None and fills > 0:
            ch("adlmon_adl_fills_total", v).inc(fills)
        notional = _num(report.get("notional_usd"))
        if notional is not None and notional > 0:
            ch("adlmon_adl_notional_usd_total", v).inc(notional)
        needed = _num(report.get("needed_usd"))
        if needed is not None:
            if needed > 0:
                ch("adlmon_adl_needed_usd_total", v).inc(needed)
            ch("adlmon_adl_last_wave_needed_usd", v).set(needed)
        accounts = report.get("accounts")
        n_accounts = len(accounts) if isinstance(accounts, (list, tuple, set)) else _num(accounts)
        if n_accounts is not None:
            if n_accounts > 0:
                ch("adlmon_adl_accounts_touched_total", v).inc(n_accounts)
            ch("adlmon_adl_last_wave_accounts", v).set(n_accounts)
        end_ms = _num(_first(report, "t_end_ms", "end_ms", "end_time_ms", "time_end_ms"))
        if end_ms is not None:
            ch("adlmon_adl_last_wave_end_timestamp_seconds", v).set(end_ms / 1000.0)

        deficit = _num(report.get("deficit_usd"))
        ch("adlmon_adl_last_wave_deficit_usd", v).set(math.nan if deficit is None else deficit)
        if deficit is None:
            ch("adlmon_adl_deficit_unknown_waves_total", v).inc()
        else:
            inc = _num(report.get("deficit_increment_usd"))
            if inc is not None and inc > 0:
                ch("adlmon_adl_deficit_increment_usd_total", v).inc(inc)
        ch("adlmon_adl_last_wave_theta_needed_ratio", v).set(_nan(report.get("theta_needed")))
        ch("adlmon_adl_last_wave_theta_production_ratio", v).set(_nan(report.get("theta_prod")))

        production = report.get("production_haircut_usd") or {}
        for h, value in _horizon_items(production, self._horizon_set):
            ch("adlmon_adl_last_wave_production_haircut_usd", v, h).set(value)
            if value > 0:
                ch("adlmon_adl_production_haircut_usd_total", v, h).inc(value)
            if needed is not None:
                ch("adlmon_adl_last_wave_excess_haircut_usd", v, h).set(value - needed)
                if value > needed:
                    ch("adlmon_adl_excess_haircut_usd_total", v, h).inc(value - needed)
                ch("adlmon_adl_last_wave_haircut_to_needed_ratio", v, h).set(
                    value / needed if needed > 0 else math.nan)

        cf = report.get("counterfactual")
        if isinstance(cf, Mapping):
            self._observe_counterfactual(v, cf, production)
        if compute_s is not None:
            ch("adlmon_adl_compute_duration_seconds", v).observe(compute_s)

    def _observe_counterfactual(self, v: str, cf: Mapping[str, Any],
                                production: Mapping[str, Any]) -> None:
        ch = self._child
        # "production" (the venue's own allocation) joins the configured mechanisms on
        # the last-wave gauges; its haircut is already counted per horizon above.
        allowed = self._mechanism_set | {PRODUCTION}
        mechanisms = cf.get("mechanisms") or {}
        for name, m in (mechanisms.items() if isinstance(mechanisms, Mapping) else ()):
            if name not in allowed or not isinstance(m, Mapping):
                continue
            ex_post = m.get("ex_post") if isinstance(m.get("ex_post"), Mapping) else m
            ex_ante = m.get("ex_ante") if isinstance(m.get("ex_ante"), Mapping) else {}
            total = _num(ex_post.get("total_usd"))
            if total is not None:
                ch("adlmon_adl_last_wave_mechanism_haircut_usd", v, name).set(total)
                if total > 0 and name != PRODUCTION:
                    ch("adlmon_adl_optimal_haircut_usd_total", v, name).inc(total)
            share = _num(ex_post.get("max_share"))
            if share is None and (_num(ex_post.get("max_share_unbounded_accounts")) or 0) > 0:
                share = math.inf  # a haircut on an account without capacity: unbounded, not 0
            if share is not None:
                ch("adlmon_adl_last_wave_max_share_ratio", v, name).set(share)
            touched = _num(ex_post.get("accounts_touched"))
            if touched is not None:
                ch("adlmon_adl_last_wave_mechanism_accounts", v, name).set(touched)
            ante = _num(ex_ante.get("total_usd"))
            if ante is not None and ante > 0 and name != PRODUCTION:
                ch("adlmon_adl_ex_ante_haircut_usd_total", v, name).inc(ante)

        excess = cf.get("excess_vs_optimal_usd")
        optimum = cf.get("optimal") if isinstance(cf.get("optimal"), Mapping) else {}
        if optimum.get("status") == "unknown":
            # The known capacity cannot carry B: no optimum, so no excess over it (the
            # last-wave gauge says NaN rather than keep the previous wave's value).
            for h in self._horizon_set:
                ch("adlmon_adl_last_wave_excess_vs_optimal_usd", v, h).set(math.nan)
            excess = {}
        elif not isinstance(excess, Mapping):
            # Derive it when the report does not carry it: H(Δ) minus the optimal
            # mechanism's ex-post haircut.
            optimal = mechanisms.get(cf.get("optimal_mechanism")) if isinstance(
                mechanisms, Mapping) else None
            best = None
            if isinstance(optimal, Mapping):
                ex_post = optimal.get("ex_post") if isinstance(optimal.get("ex_post"), Mapping) \
                    else optimal
                best = _num(ex_post.get("total_usd"))
            excess = ({h: val - best for h, val in _horizon_items(production, self._horizon_set)}
                      if best is not None else {})
        for h, value in _horizon_items(excess, self._horizon_set):
            ch("adlmon_adl_last_wave_excess_vs_optimal_usd", v, h).set(value)
            if value > 0:
                ch("adlmon_adl_excess_vs_optimal_usd_total", v, h).inc(value)

        # The ex-ante controller: {"controller": {"theta", "budget_usd"}} or the
        # counterfactual's {"budget": {"theta_ex_ante", "ex_ante_usd", ...}}.
        controller = cf.get("controller") if isinstance(cf.get("controller"), Mapping) else {}
        budget = cf.get("budget") if isinstance(cf.get("budget"), Mapping) else {}
        theta = _num(controller.get("theta"))
        theta = theta if theta is not None else _num(budget.get("theta_ex_ante"))
        if theta is not None:
            ch("adlmon_adl_controller_theta_ratio", v).set(theta)
        budget_usd = _num(controller.get("budget_usd"))
        budget_usd = budget_usd if budget_usd is not None else _num(budget.get("ex_ante_usd"))
        if budget_usd is not None:
            ch("adlmon_adl_controller_budget_usd", v).set(budget_usd)

        regret = cf.get("regret")
        if isinstance(regret, Mapping) and regret.get("counted", True):
            bound = _num(regret.get("bound_usd"))
            if bound is not None:
                ch("adlmon_adl_regret_bound_usd", v).set(bound)
            losses = regret.get("cumulative_loss_usd")
            for name, loss in (losses.items() if isinstance(losses, Mapping) else ()):
                x = _num(loss)
                if name in allowed and x is not None:
                    ch("adlmon_adl_policy_loss_usd", v, name).set(x)

    # --- funds and shortfall ---
    def set_deficit(self, venue: str, usd: float) -> None:
        v = self._venue(venue)
        self._child("adlmon_deficit_usd", v).set(usd)
        self._deficits[v] = usd
        self._set_backstop(v)

    def _set_backstop(self, v: str) -> None:
        cap = sum(max(x, 0.0) for x in self._funds.get(v, {}).values())
        self._child("adlmon_adl_backstop_capacity_usd", v).set(cap)
        self._child("adlmon_adl_shortfall_absorbable_usd", v).set(
            max(cap - max(self._deficits.get(v, 0.0), 0.0), 0.0))

    def set_exposure(self, venue: str, sides: Mapping[tuple[str, str], Mapping[str, float]],
                     watch: Mapping[tuple[str, str, str], tuple[int, float]] = {}) -> None:
        """Replace the venue's queue series. ``sides``: (coin, side) -> {"positions",
        "capacity_usd", "top10_share"}; the ``MAX_EXPOSURE_COINS`` coins of largest capacity
        keep their name, the rest are summed into coin="other" (no top-10 share there).
        ``watch``: (address, coin, side) -> (rank, percentile 0..1), addresses from config."""
        v = self._venue(venue)
        names = ("adlmon_adl_queue_positions", "adlmon_adl_queue_capacity_usd",
                 "adlmon_adl_queue_top10_share_ratio", "adlmon_adl_watch_rank",
                 "adlmon_adl_watch_quantile_ratio")
        for name in names:  # this venue's previous series: a coin may have left the queue
            fam = self.families[name]
            for labels in list(self._exposure_series.get((v, name), ())):
                fam.remove(*labels)
        series: dict[str, set] = {name: set() for name in names}

        def put(name, labels, value):
            self.families[name].labels(*labels).set(value)
            series[name].add(labels)

        by_coin: dict[str, float] = {}
        for (coin, _side), s in sides.items():
            by_coin[coin] = by_coin.get(coin, 0.0) + float(s.get("capacity_usd", 0.0))
        named = set(sorted(by_coin, key=lambda c: (-by_coin[c], c))[:MAX_EXPOSURE_COINS])
        other: dict[str, list[float]] = {}
        for (coin, side), s in sides.items():
            if coin in named:
                put("adlmon_adl_queue_positions", (v, coin, side), s["positions"])
                put("adlmon_adl_queue_capacity_usd", (v, coin, side), s["capacity_usd"])
                put("adlmon_adl_queue_top10_share_ratio", (v, coin, side), s["top10_share"])
            else:
                acc = other.setdefault(side, [0.0, 0.0])
                acc[0] += s["positions"]
                acc[1] += s["capacity_usd"]
        for side, (n, cap) in other.items():
            put("adlmon_adl_queue_positions", (v, OTHER, side), n)
            put("adlmon_adl_queue_capacity_usd", (v, OTHER, side), cap)
        allowed = set(list(dict.fromkeys(a for a, _, _ in watch))[:MAX_WATCH])
        for (address, coin, side), (rank, pct) in watch.items():
            if address in allowed and coin in named:
                put("adlmon_adl_watch_rank", (v, address, coin, side), rank)
                put("adlmon_adl_watch_quantile_ratio", (v, address, coin, side), pct)
        if not series["adlmon_adl_watch_rank"]:  # nothing watched is ranked: NaN, not absent
            for name in ("adlmon_adl_watch_rank", "adlmon_adl_watch_quantile_ratio"):
                put(name, (v, "", "", ""), math.nan)
        for name in names:
            self._exposure_series[(v, name)] = series[name]

    def set_insurance_fund(self, venue: str, pool: str, usd: float,
                           time_ms: int | None = None, now: float | None = None) -> None:
        v, p = self._venue(venue), self._pool(pool)
        self._child("adlmon_insurance_fund_usd", v, p).set(usd)
        self._funds.setdefault(v, {})[p] = usd
        self._set_backstop(v)
        ts = time_ms / 1000.0 if time_ms is not None else (time.time() if now is None else now)
        self._child("adlmon_insurance_fund_snapshot_timestamp_seconds", v, p).set(ts)

    def set_adl_armed(self, venue: str, armed: bool, scope: str = OTHER) -> None:
        self.set_adl_level(venue, scope, "armed" if armed else "normal", count=False)

    def set_adl_level(self, venue: str, scope: str, level: str, count: bool = True) -> None:
        """A scope's ADL level (adlmon.engine.adlstate): armed/warning gauges, the transition
        counted. Scopes past ``MAX_ADL_SCOPES`` per venue share ``other``, which is 1 while
        any of them is."""
        v = self._venue(venue)
        scopes = self._adl_scopes.setdefault(v, _Bounded(MAX_ADL_SCOPES))
        label = scopes(scope) if level != "normal" or scope in scopes.seen else OTHER
        if label == OTHER:
            folded = self._adl_folded.setdefault(v, {})
            folded[scope] = level
            if level == "normal":
                folded.pop(scope, None)
            armed = any(x == "armed" for x in folded.values())
            warned = any(x == "warning" for x in folded.values())
        else:
            armed, warned = level == "armed", level == "warning"
        self._child("adlmon_adl_armed", v, label).set(1 if armed else 0)
        self._child("adlmon_adl_warning", v, label).set(1 if warned else 0)
        if count and level in ADL_LEVELS:
            self._child("adlmon_adl_transitions_total", v, level).inc()

    def set_pool_estimate(self, venue: str, pool: str, drawdown_ratio: float, losses_usd: float,
                          shortfall_usd: float) -> None:
        v, p = self._venue(venue), self._pool(pool)
        self._child("adlmon_insurance_fund_drawdown_ratio", v, p).set(drawdown_ratio)
        self._child("adlmon_insurance_fund_losses_usd", v, p).set(losses_usd)
        self._child("adlmon_insurance_fund_shortfall_usd", v, p).set(shortfall_usd)

    def observe_liquidations(self, venue: str, n: int, notional_usd: float) -> None:
        v = self._venue(venue)
        self._child("adlmon_liquidations_total", v).inc(n)
        self._child("adlmon_liquidation_notional_usd_total", v).inc(notional_usd)

    # --- feeds (called by the websocket / file-tail layer; ``source`` names the
    # connection, see the module docstring) ---
    def _feed(self, venue: str, channel: str, source: str = DEFAULT_SOURCE) -> _FeedChildren:
        key = (venue, channel, source)
        feed = self._feeds.get(key)
        if feed is None:
            v, c, s = self._venue(venue), self._channel(channel), self._source(source)
            feed = self._feeds[key] = _FeedChildren(
                self._child("adlmon_feed_messages_total", v, c, s),
                self._child("adlmon_feed_last_message_timestamp_seconds", v, c, s),
                self._child("adlmon_feed_message_lag_seconds", v, c, s))
            self._child("adlmon_feed_gaps_total", v, c, s)  # exists at 0 from the start
        return feed

    def connected(self, venue: str, channel: str, up: bool, source: str = DEFAULT_SOURCE) -> None:
        self._feed(venue, channel, source)
        self._child("adlmon_feed_connected", self._venue(venue), self._channel(channel),
                    self._source(source)).set(1 if up else 0)

    def silence_budget(self, venue: str, channel: str, seconds: float,
                       source: str = DEFAULT_SOURCE) -> None:
        """Declare ``channel`` busy: stale after ``seconds`` of data silence."""
        self._child("adlmon_feed_silence_budget_seconds", self._venue(venue),
                    self._channel(channel), self._source(source)).set(seconds)

    def message(self, venue: str, channel: str, n: int = 1, exchange_time_ms: float | None = None,
                now: float | None = None, source: str = DEFAULT_SOURCE) -> None:
        """``n`` data messages received at ``now`` (Unix s); ``exchange_time_ms`` is
        the venue timestamp of the newest one, for the lag histogram."""
        feed = self._feeds.get((venue, channel, source)) or self._feed(venue, channel, source)
        if now is None:
            now = time.time()
        feed.messages.inc(n)
        feed.last_ts.set(now)
        if exchange_time_ms is not None:
            lag = now - exchange_time_ms / 1000.0
            feed.lag.observe(lag if lag > 0 else 0.0)

    def parse_error(self, venue: str, channel: str, reason: str, n: int = 1,
                    source: str = DEFAULT_SOURCE) -> None:
        self._child("adlmon_feed_parse_errors_total", self._venue(venue), self._channel(channel),
                    self._source(source), self._parse_reason(reason)).inc(n)

    def reconnect(self, venue: str, channel: str, reason: str, source: str = DEFAULT_SOURCE) -> None:
        r = reason if reason in RECONNECT_REASONS else OTHER
        self._child("adlmon_feed_reconnects_total", self._venue(venue), self._channel(channel),
                    self._source(source), r).inc()

    def gap(self, venue: str, channel: str, n: int = 1, source: str = DEFAULT_SOURCE) -> None:
        self._child("adlmon_feed_gaps_total", self._venue(venue), self._channel(channel),
                    self._source(source)).inc(n)

    def for_source(self, source: str) -> "SourceMetrics":
        """This catalogue as one connection sees it: feed calls carry ``source``."""
        return SourceMetrics(self, source)

    # --- exposition ---
    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    catalogue = staticmethod(catalogue)


class SourceMetrics:
    """A feed source's view of :class:`Metrics` (or of any object with the same
    feed methods, e.g. ``NullMetrics``): every feed call gets ``source=``; the
    rest passes through. The feed methods are bound once (they run per frame)."""

    _FEED = ("connected", "silence_budget", "message", "parse_error", "reconnect", "gap",
             "declare_feed")

    def __init__(self, metrics: Any, source: str):
        self._m = metrics
        self.source = source
        for name in self._FEED:
            method = getattr(metrics, name, None)
            if method is not None:
                setattr(self, name, functools.partial(method, source=source))

    def __getattr__(self, name: str):
        return getattr(self._m, name)


def _first(report: Mapping[str, Any], *keys: str) -> Any:
    for k in keys:
        if report.get(k) is not None:
            return report[k]
    return None


def _horizon_items(values: Any, allowed: frozenset[str]):
    """(horizon label, finite value) pairs of a horizon map ``{"0": 180.0}``."""
    if not isinstance(values, Mapping):
        return
    for key, value in values.items():
        h = str(key)
        x = _num(value)
        if h in allowed and x is not None:
            yield h, x


def write_replay_exposition(path: str | os.PathLike, reports: Iterable[Mapping[str, Any]],
                            result: Any = None, *, horizons_ms: Iterable[int] | None = None,
                            mechanisms: Iterable[str] | None = None) -> Metrics:
    """Write the Prometheus text exposition after a replay (``adlmon replay
    --metrics-out FILE``): every wave report observed once, plus what ``result``
    (a ``ReplayResult`` or a dict) carries: engine ``stats`` (flat, or per venue)
    and ``inputs`` (lines and parse errors per input file). Label sets default to
    those seen in the reports."""
    reports = list(reports)
    if horizons_ms is None:
        seen = sorted({int(k) for r in reports for k in (r.get("production_haircut_usd") or {})
                       if str(k).isdigit()})
        horizons_ms = seen or DEFAULT_HORIZONS_MS
    if mechanisms is None:
        found: list[str] = []
        for r in reports:
            for name in ((r.get("counterfactual") or {}).get("mechanisms") or {}):
                if name not in found:
                    found.append(name)
        mechanisms = found or DEFAULT_MECHANISMS
    venues = sorted({r.get("venue") for r in reports if r.get("venue")}) or ["hyperliquid"]
    metrics = Metrics(venues=venues, horizons_ms=horizons_ms, mechanisms=mechanisms,
                      process_collectors=False)
    for report in reports:
        metrics.observe_wave(report)
    def field(name: str) -> Any:
        if isinstance(result, Mapping):
            return result.get(name)
        return getattr(result, name, None)

    stats = field("engine_stats") or field("stats")
    if isinstance(stats, Mapping):
        if stats and all(isinstance(s, Mapping) for s in stats.values()):
            for venue, s in stats.items():
                metrics.observe_engine_stats(venue, s)
        else:
            metrics.observe_engine_stats(venues[0], stats)
    # Input files are the replay's feeds: lines read and bad lines by reason, with the
    # file kind (node_fills_by_block, misc_events, ...) as the channel.
    inputs = field("inputs")
    if isinstance(inputs, Mapping):
        for inp in inputs.values():
            if not isinstance(inp, Mapping) or inp.get("kind") in (None, "snapshot", "empty"):
                continue
            lines = _num(inp.get("lines"))
            if lines:
                metrics._feed(venues[0], inp["kind"], "replay").messages.inc(lines)
            for reason, n in (inp.get("errors") or {}).items():
                if _num(n):
                    metrics.parse_error(venues[0], inp["kind"], reason, n=_num(n),
                                        source="replay")
    out = Path(path)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(metrics.exposition())
    os.replace(tmp, out)
    return metrics


# --- the README metric reference, generated from FAMILIES ---
README_BEGIN = "<!-- BEGIN metrics -->"
README_END = "<!-- END metrics -->"
_GROUP_TITLES = {"waves": "Waves", "mechanisms": "Mechanisms (counterfactual)",
                 "funds": "Funds and shortfall", "exposure": "Exposure (the ADL queue now)", "feeds": "Feeds", "engine": "Engine and process"}


def reference_markdown() -> str:
    """The README section between the metrics markers."""
    lines = [
        "### Metrics",
        "",
        "Generated from `adlmon/metrics.py` (`python -m adlmon.metrics --readme README.md`). "
        "USD amounts end in `_usd`; ratios are 0..1 unless stated; no account or address "
        f"labels except `address` on the watch gauges (only `[exposure] watch`, ≤ {MAX_WATCH}). "
        f"`coin` (exposure: the {MAX_EXPOSURE_COINS} coins of largest capacity, the rest "
        "summed into `other`), `side` (long, short). Label values: `venue` (venues adlmon knows, ≤ "
        f"{MAX_VENUES}), `horizon` (configured `[engine] horizons_ms`, ms as a string), "
        "`mechanism` (configured `[counterfactual] mechanisms`; the last-wave and policy-loss "
        "gauges add `production`, the venue's own allocation), `channel` (feed channels, ≤ "
        f"{MAX_CHANNELS}), `pool` (≤ {MAX_POOLS}), `scope` (ADL scopes ever armed or warned, "
        f"≤ {MAX_ADL_SCOPES} a venue, the rest `other`), `level` ({', '.join(ADL_LEVELS)}), "
        f"`kind` ({', '.join(ENGINE_ANOMALIES)}), "
        f"`reason` (reconnects: {', '.join(RECONNECT_REASONS)}; parse errors: the parser's "
        f"reason, ≤ {MAX_PARSE_REASONS} values), `task` (supervised task names, ≤ {MAX_TASKS}), "
        f"`sink` (output sinks, ≤ {MAX_SINKS}). Values past a cap become `other`.",
        "",
    ]
    for group in GROUPS:
        lines += [f"**{_GROUP_TITLES[group]}**", "", "| Metric | Type | Labels | Description |",
                  "|---|---|---|---|"]
        for f in FAMILIES:
            if f.group == group:
                labels = ", ".join(f.labels) or "—"
                text = f.help.replace("|", "\\|")  # a pipe would end the table cell
                lines.append(f"| `{f.name}` | {f.kind} | {labels} | {text} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def readme_section(text: str) -> str:
    """The current text between the markers of a README."""
    start = text.index(README_BEGIN) + len(README_BEGIN)
    return text[start:text.index(README_END)].strip("\n") + "\n"


def update_readme(path: str | os.PathLike) -> bool:
    """Rewrite the metrics section of ``path``; True when it changed."""
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    start = text.index(README_BEGIN) + len(README_BEGIN)
    end = text.index(README_END)
    new = text[:start] + "\n" + reference_markdown() + text[end:]
    if new != text:
        p.write_text(new, encoding="utf-8")
        return True
    return False


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m adlmon.metrics",
                                     description="the metric catalogue")
    parser.add_argument("--readme", help="rewrite the metrics section of this README")
    args = parser.parse_args(argv)
    if args.readme:
        changed = update_readme(args.readme)
        print(f"{args.readme}: {'updated' if changed else 'up to date'}")
    else:
        sys.stdout.write(reference_markdown())
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
