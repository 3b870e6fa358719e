"""``adlmon run``: the live daemon (DESIGN §1; ecosystem.md §2.5, §2.7, §4.3).

Wiring: sources (Hyperliquid websocket, REST, node tailer) -> bus (in-process
by default) -> engine (one task: ledger + wave tracker) -> wave reports
(counterfactual in a worker thread, one wave at a time, in order) -> metrics,
``/api/waves``, wavelog.

* Live time: the engine only knows event time. A :class:`VenueClock` estimates
  the venue's "now" from the latest event time plus the wall time since (minus
  a small slack for frames still in flight); a ticker calls ``Engine.tick``
  with it, so a wave closes ``gap_ms`` of wall time after its last ADL fill and
  a horizon is reached when the clock passes it, even if the feed is quiet.
  A node deployment (sources ``["node"]``) runs on :class:`NodeClock` instead:
  the node's block times, the wall clock only after ``[engine] node_silence_s``.
* Crash-only (issue 12, README "Restarts keep the state"): with ``[engine]
  state_dir`` a state snapshot (``engine/persist.py``) is written every
  ``snapshot_interval_s`` when nothing is half-applied, and at shutdown; the
  start resumes from the newest usable one (the node tail from its offsets).
* Heavy work is off the receive path: the engine consumes the bus in its own
  task, closed waves go through a bounded queue to one report task which runs
  the counterfactual in a thread (``run_in_executor``); the event loop keeps
  answering pings, probes and scrapes.
* Supervision (``adlmon/supervise.py``): every long-lived task, the venues'
  sources included, runs under one :class:`Supervisor`; a task that raises is
  logged, counted and restarted with backoff, and ``/readyz`` names it while it
  is down. The engine skips an event it cannot apply (counted as the anomaly
  ``bad_event``) instead of stopping; a failing winner poll leaves its wave's
  report without ``winner_state``; a failing wavelog keeps the reports queued
  (``adlmon/wavelog.py``) and readiness says why until it writes again.
* Shutdown (SIGTERM/SIGINT): ``STOPPING=1``, sources cancelled (sockets
  closed), what is queued is drained into the engine, open waves are finished
  (``closed_by: input_ended``; with a ``state_dir`` they are kept in the shutdown
  snapshot instead and go on after the restart), their reports written, the
  wavelog flushed and fsynced, the server stopped; well within 10 s. Under systemd: ``READY=1``
  once the server listens and the sources are started (a venue outage must not
  fail the start), ``WATCHDOG=1`` from the loop.
* No network: every source keeps retrying with backoff, logs why, and
  ``/readyz`` says 503 with the reason per source; ``/metrics`` and ``/livez``
  work.
* ``--demo`` starts the fake venue (``venues/hyperliquid/fake.py``) in-process
  on a freshly simulated cascade (``--demo-seed`` repeats one), played faster than
  real time; the cascade, its waves and quarantine go to a temporary directory it
  prints (never the configured wavelog); once every simulated wave is reported it
  says "demo finished" (``/api/status`` ``demo``, the status page) and stops the feeds.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import logging
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import orjson

from adlmon.bus.memory import MemoryBus
from adlmon.config import Config, ConfigError, default_config_path, load_config, parse_config
from adlmon.engine.engine import Engine
from adlmon.engine.persist import StateStore, VenueState
from adlmon.engine.waves import REACHED, REACHED_BY_WALL_CLOCK, Wave
from adlmon.errorlog import ErrorLog
from adlmon.events import Fill, event_time_ms
from adlmon.metrics import Metrics
from adlmon.server import ServerState, server_url, start_server
from adlmon.sdnotify import Notifier, watchdog_interval_s
from adlmon.supervise import Supervisor
from adlmon.wavelog import Wavelog
from adlmon.venues.hyperliquid.parse import VENUE
from adlmon.venues.hyperliquid.rest import poll_winners
from adlmon.venues.hyperliquid.ws import (
    INFERRED_ADL_DIR, UNKNOWN_WINNER, HyperliquidFeeds, complete_inferred_fill,
)

log = logging.getLogger("adlmon.app")

STOP_GRACE_S = 8.0  # everything after SIGTERM fits in this (systemd's TimeoutStopSec is larger)
DEMO_SPEED = 5.0
ENGINE_SLICE = 1000  # events the engine applies before it lets the loop run other tasks
KEEP_REPORTS = 1000  # reports (and latencies) kept in memory; the wavelog has them all


class VenueClock:
    """The venue's current time (ms), estimated from the event stream.

    ``now_ms()`` = latest event time + (wall time since it was seen) · rate −
    ``slack_ms``, never below the latest event time; before any event, the wall
    clock. ``rate`` > 1 follows a venue that plays faster than real time.
    """

    def __init__(self, wall: Callable[[], float] = time.monotonic, slack_ms: int = 250,
                 rate: float = 1.0):
        self.wall = wall
        self.slack_ms = slack_ms
        self.rate = rate
        self.latest_ms: int | None = None
        self._seen_at = 0.0

    def observe(self, t_ms: int) -> None:
        if self.latest_ms is None or t_ms > self.latest_ms:
            self.latest_ms = t_ms
            self._seen_at = self.wall()

    def now_ms(self) -> int:
        if self.latest_ms is None:
            return int(time.time() * 1000)
        ahead = (self.wall() - self._seen_at) * 1000.0 * self.rate - self.slack_ms
        return self.latest_ms + max(0, int(ahead))

    def horizon_status(self) -> str:
        return REACHED


class NodeClock:
    """The clock of a node deployment: the node's block times (issue 12).

    The node's files are the complete, ordered source, so a stall of the node
    (or a daemon catching up after a restart) must not let wall time reach a
    horizon or close a wave: ``now_ms()`` is the latest block time seen. Only
    after ``silence_s`` of wall time without a newer block does the wall clock
    take over (``now_ms()`` = latest + the wall time since it was seen), and
    ``by_wall_clock`` is then True, so the horizons it reaches say
    ``wall_clock`` in ``horizon_status``. ``start_ms``: the latest time of a
    restored engine, the clock's reading until the node writes again.
    """

    def __init__(self, silence_s: float, wall: Callable[[], float] = time.monotonic,
                 start_ms: int | None = None):
        self.silence_s = silence_s
        self.wall = wall
        self.latest_ms: int | None = start_ms
        self._seen_at = wall()

    def observe(self, t_ms: int) -> None:
        if self.latest_ms is None or t_ms > self.latest_ms:
            self.latest_ms = t_ms
            self._seen_at = self.wall()

    @property
    def by_wall_clock(self) -> bool:
        return self.latest_ms is not None and self.wall() - self._seen_at >= self.silence_s

    def now_ms(self) -> int:
        if self.latest_ms is None:
            return int(time.time() * 1000)  # nothing to measure yet (no wave can be open)
        if not self.by_wall_clock:
            return self.latest_ms
        return self.latest_ms + int((self.wall() - self._seen_at) * 1000.0)

    def horizon_status(self) -> str:
        return REACHED_BY_WALL_CLOCK if self.by_wall_clock else REACHED


def report_builder(cfg: Config) -> Callable[[Wave], dict]:
    """Counterfactual(cfg.counterfactual).report when the module exists, else Wave.to_dict."""
    try:
        from adlmon.counterfactual import Counterfactual
    except ImportError:
        return lambda wave: wave.to_dict()
    return Counterfactual(cfg.counterfactual).report


class Daemon:
    """One venue's live pipeline (module docstring). ``await start()``, ``await stop()``.

    ``clock``: a :class:`VenueClock` (tests and the demo pass the fake venue's
    clock instead). ``winner_polls``/``winner_poll_budget_s``: how many ADL'd
    winners unknown to the ledger are read (``clearinghouseState``) after a
    wave, and for how long at most, before its report is written.
    """

    def __init__(self, cfg: Config, *, clock: Any = None, tick_s: float = 0.1,
                 metrics: Metrics | None = None, winner_polls: int = 50,
                 winner_poll_budget_s: float = 0.3, env: dict | None = None, rng=None):
        self.cfg = cfg
        node_only = set(cfg.venues.hyperliquid.sources) == {"node"}
        self.clock = clock or (NodeClock(cfg.engine.node_silence_s) if node_only else VenueClock())
        self.tick_s = tick_s
        self.metrics = metrics or Metrics.from_config(cfg)
        self.state = ServerState(self.metrics, recent_waves=cfg.server.recent_waves,
                                 horizons_ms=cfg.engine.horizons_ms,
                                 mechanisms=cfg.counterfactual.mechanisms)
        self.engine = Engine(VENUE, cfg.engine.gap_ms, cfg.engine.horizons_ms)
        # /api/exposure and /api/account read the live ledger (issue 13).
        self.state.ledgers[VENUE] = self.engine.ledger
        self.state.exposure_cfg = cfg.counterfactual
        self.state.event_time_ms = lambda: self.engine.last_time_ms
        self.bus = MemoryBus(cfg.bus.queue_size)
        self.build_report = report_builder(cfg)
        self.winner_polls = winner_polls
        self.winner_poll_budget_s = winner_poll_budget_s
        self.notifier = Notifier(env)
        self.watchdog_s = watchdog_interval_s(env)
        self.supervisor = Supervisor(self.metrics, rng=rng)
        self.state.add_check("tasks", self.supervisor.problems, self.supervisor.status)
        self.feeds = HyperliquidFeeds(cfg.venues.hyperliquid, self.publish, metrics=self.metrics,
                                      now_ms=self.clock.now_ms, state_dir=cfg.engine.state_dir,
                                      rng=rng, supervisor=self.supervisor)
        self.waves_q: asyncio.Queue = asyncio.Queue(maxsize=1000)
        # the latest reports written (tests, demo); bounded: a long run must not grow
        self.reports: collections.deque[dict] = collections.deque(maxlen=KEEP_REPORTS)
        self.reports_written = 0
        self.report_latency_s: collections.deque[float] = collections.deque(maxlen=KEEP_REPORTS)
        self.wave_closed_at: dict[int, float] = {}
        self.wavelog: Wavelog | None = None
        self.store = (StateStore(cfg.engine.state_dir, VENUE, metrics=self.metrics)
                      if cfg.engine.state_dir else None)
        self._unreported: list[Wave] = []  # closed by the engine, report not written yet
        self._applying = False  # the engine task is inside a batch
        self._reporting = False  # the report task is inside a wave
        self._publishing = 0  # publish calls in flight
        self._runner = None
        self._tasks: list[str] = []  # supervised task names stopped first at shutdown
        self._engine_task: asyncio.Task | None = None
        self._report_task: asyncio.Task | None = None
        self.url = ""
        self._stopping = False
        self._sources_note = ""  # replaces every source's detail (the demo's end)
        self._errors = ErrorLog(log)

    async def publish(self, events) -> None:
        self._publishing += 1
        try:
            await self.bus.publish(events)
        finally:
            self._publishing -= 1

    # ------------------------------------------------------------------ start
    async def start(self) -> None:
        cfg = self.cfg
        if cfg.bus.kind == "nats":
            from adlmon.bus.nats import NatsBus  # the optional [nats] extra
            self.bus = await NatsBus.connect(cfg.bus.nats_url, cfg.bus.stream, VENUE)
        if cfg.wavelog.path:
            self.wavelog = Wavelog(cfg.wavelog.path, self.metrics)
            try:
                self.wavelog.open()
            except OSError as exc:  # unusable at start (a directory, no permission): exit 2
                raise ValueError(f"[wavelog] path = {cfg.wavelog.path!r}: cannot open for "
                                 f"appending: {exc.strerror or exc}") from None
            self.state.add_check("wavelog", self.wavelog.problems, self.wavelog.status)
        self._resume()
        self._runner = await start_server(cfg.server, self.state)
        self.url = server_url(self._runner)
        spawn = self.supervisor.spawn
        # The engine and the reports return when the bus / the wave queue ends: at shutdown
        # only (before it, a return is a failure: restarted, and readiness says so).
        stopping = lambda: self._stopping  # noqa: E731
        self._engine_task = spawn("engine", self._consume, once=stopping)
        self._report_task = spawn("reports", self._reports, once=stopping)
        spawn("tick", self._tick)
        spawn("status", self._status)
        spawn("exposure", self._exposure)
        self._tasks += ["tick", "status", "exposure"]
        if self.store is not None:
            spawn("snapshots", self._snapshots)
            self._tasks.append("snapshots")
        if self.watchdog_s is not None:
            spawn("watchdog", lambda: self.notifier.run_watchdog(self._healthy))
            self._tasks.append("watchdog")
        if cfg.venues.hyperliquid.enabled:
            await self.feeds.start()
        self._update_sources()
        self.state.started = True
        self.notifier.ready(f"serving {self.url}; sources started")
        log.info("adlmon running: %s (metrics %s/metrics, status page %s/)", self.url, self.url,
                 self.url)

    # ------------------------------------------------------------------ state
    def _resume(self) -> None:
        """Carry on from the newest usable state snapshot (engine/persist.py): the
        engine, the counterfactual, waves not reported yet, /api/waves, the wave and
        mechanism series, the sources' positions (the node tail re-reads from the
        snapshot's offsets: that replays what arrived since, then it is live)."""
        self.state.add_check("state", lambda: [], self.recovery_status)
        if self.store is None:
            return
        cfg = self.cfg

        def check(st: VenueState) -> str | None:
            w = st.engine.waves
            if (w.gap_ms, w.horizons_ms) != (cfg.engine.gap_ms, tuple(cfg.engine.horizons_ms)):
                return (f"saved with gap_ms {w.gap_ms}, horizons {list(w.horizons_ms)}; "
                        f"configured {cfg.engine.gap_ms}, {list(cfg.engine.horizons_ms)}")
            return None

        st = self.store.load(check)
        if st is None:
            if self.wavelog is not None:  # ids go on after the waves already logged
                self.engine.waves.continue_ids(self.wavelog.last_wave_id(VENUE))
            return
        self.engine = st.engine
        self.state.ledgers[VENUE] = self.engine.ledger  # /api/exposure reads the restored one
        cf = st.counterfactual
        if cf is not None and getattr(cf, "cfg", None) == cfg.counterfactual:
            self.build_report = cf.report
        elif cf is not None:
            log.warning("state: [counterfactual] changed since the snapshot; the controller and "
                        "the running regret start afresh")
        for report in st.recent_waves:
            self.state.add_wave(report, observe=False)
        self.metrics.restore_series(st.totals.get("series", ()))
        self.feeds.resume_from = dict(st.sources)
        if self.wavelog is not None:
            self.wavelog.requeue(st.unwritten_lines)
        for w in st.pending_waves:
            self._unreported.append(w)
            self.waves_q.put_nowait(w)
        if isinstance(self.clock, NodeClock) and self.engine.last_time_ms is not None:
            self.clock.observe(self.engine.last_time_ms)

    def _quiet(self) -> bool:
        """Nothing half-done: every published event applied, no wave being reported."""
        return (not self._applying and not self._reporting and not self._publishing
                and not self.bus.pending)

    def snapshot(self) -> bool:
        """Write a state snapshot now if the pipeline is quiet (``_quiet``)."""
        if self.store is None or not self._quiet():
            return False
        cf = getattr(self.build_report, "__self__", None)
        st = VenueState(VENUE, self.engine, cf, pending_waves=list(self._unreported),
                        recent_waves=list(self.state.recent_waves),
                        totals={"series": self.metrics.saved_series()},
                        sources=self.feeds.positions(),
                        unwritten_lines=(self.wavelog.pending_lines()
                                         if self.wavelog is not None else []))
        return self.store.save(st) is not None

    async def _snapshots(self) -> None:
        interval = self.cfg.engine.snapshot_interval_s
        while True:
            await asyncio.sleep(interval)
            for _ in range(int(max(interval, 1.0) / 0.01)):  # bounded: at most ~one interval
                if self.snapshot() or self._stopping:
                    break
                await asyncio.sleep(0.01)

    def recovery_status(self) -> dict:
        """``/api/status`` ``state``: where the start resumed from, what was not used,
        the snapshots written, the engine's position, the wavelog, the clock."""
        e = self.engine
        out = {
            "enabled": self.store is not None,
            "engine": {"next_wave_id": e.waves.next_wave_id,
                       "open_wave_start_ms": e.waves.open_wave_start_ms,
                       "last_event_ms": e.last_time_ms, "unreported_waves": len(self._unreported)},
            "clock": {"kind": type(self.clock).__name__,
                      "by_wall_clock": bool(getattr(self.clock, "by_wall_clock", False))},
        }
        if self.store is not None:
            out.update(self.store.status())
        if self.wavelog is not None:
            out["wavelog"] = self.wavelog.status()
        return out

    def _healthy(self) -> bool:
        monitor = self.state.loop_monitor
        return monitor is None or monitor.health()[0]

    # ----------------------------------------------------------------- engine
    async def _consume(self) -> None:
        engine, clock = self.engine, self.clock
        observe = getattr(clock, "observe", None)
        async for batch in self.bus.consume():
            self._applying = True
            for i, ev in enumerate(batch):
                try:
                    if ev.__class__ is Fill and ev.dir == INFERRED_ADL_DIR:
                        ev = complete_inferred_fill(ev, engine.ledger)
                    if observe is not None:
                        observe(event_time_ms(ev))
                    done = engine.apply(ev)
                except Exception as exc:  # noqa: BLE001 - one bad event must not stop the engine
                    engine.bad_event(exc, ev)
                    continue
                if done:
                    await self._closed(done)
                if i % ENGINE_SLICE == ENGINE_SLICE - 1:
                    await asyncio.sleep(0)  # a burst never starves pings, probes, scrapes
            self._applying = False
            await asyncio.sleep(0)

    async def _closed(self, waves: list[Wave]) -> None:
        now = time.perf_counter()
        for w in waves:
            self.wave_closed_at[w.wave_id] = now
            self._unreported.append(w)
            await self.waves_q.put(w)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            if self.bus.pending:
                # Received but not applied yet: those events, not the wall clock, move time
                # (else a slow bus lets the clock reach a horizon before its marks are in).
                continue
            status = getattr(self.clock, "horizon_status", None)
            done = self.engine.tick(self.clock.now_ms(), status() if status else REACHED)
            if done:
                await self._closed(done)

    async def _exposure(self) -> None:
        """Queue gauges (adlmon/exposure.py) every ``[exposure] interval_s``: the ledger's
        views are read on the loop (a coin at a time), the ranking runs in a worker thread."""
        from adlmon import exposure as ex

        xcfg = self.cfg.exposure
        order = ex.queue_order(VENUE)
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(xcfg.interval_s)
            try:
                ledger, views = self.engine.ledger, {}
                for coin in ledger.coins():
                    for side, sign in ex.SIDES.items():
                        view = ledger.holders(coin, sign)
                        if len(view):
                            views[(coin, side)] = view
                    await asyncio.sleep(0)

                def compute():
                    qs = {k: ex.build_queue(v, order, k[1]) for k, v in views.items()}
                    return ({k: ex.side_summary(q, xcfg.reference_shortfall_usd) for k, q in qs.items()},
                            ex.watch_ranks(qs, xcfg.watch))

                sides, watch = await loop.run_in_executor(None, compute)
                self.metrics.set_exposure(VENUE, sides, watch)
            except Exception:  # a bad position must not stop the gauges for good
                log.exception("exposure gauges not updated this round")

    # ---------------------------------------------------------------- reports
    async def _reports(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            wave = await self.waves_q.get()
            if wave is None:
                return
            self._reporting = True
            t0 = time.perf_counter()
            try:
                report = await loop.run_in_executor(None, self.build_report, wave)
            except Exception:  # a mechanism bug must not stop the monitor
                log.exception("wave %d: counterfactual failed; writing the wave without it",
                              wave.wave_id)
                report = wave.to_dict()
            compute_s = time.perf_counter() - t0
            try:
                await self._winner_state(wave, report)
            except Exception as exc:  # noqa: BLE001 - a bad venue answer must not lose the wave
                self._errors.log("winner_state", "wave %d: winner poll failed (%s: %s); "
                                 "reported without winner_state", wave.wave_id,
                                 exc.__class__.__name__, exc, exc_info=exc)
                report["winner_state"] = {"error": f"{exc.__class__.__name__}: {exc}"[:300]}
            self._write(report, compute_s)
            self._unreported.remove(wave)
            self._reporting = False
            closed = self.wave_closed_at.pop(wave.wave_id, None)
            if closed is not None:
                self.report_latency_s.append(time.perf_counter() - closed)

    async def _winner_state(self, wave: Wave, report: dict) -> None:
        """clearinghouseState of ADL'd winners the ledger lacks (bounded), into the
        report (``winner_state``) and, as snapshots, into the ledger for later waves."""
        feeds = self.feeds
        if "vault_state" not in feeds.sources or self.winner_polls <= 0:
            return
        ledger = self.engine.ledger
        unknown = [u for u in dict.fromkeys(wave.fills.user)
                   if u != UNKNOWN_WINNER and not ledger.known(u)]
        if not unknown:
            return
        snaps, records = await poll_winners(feeds.info, unknown, max_users=self.winner_polls,
                                            budget_s=self.winner_poll_budget_s,
                                            now_ms=self.clock.now_ms)
        report["winner_state"] = {
            "source": "clearinghouseState after the wave",
            "unknown_to_ledger": len(unknown), "polled": len(records),
            "pnl_capacity_usd": sum(r["pnl_capacity_usd"] for r in records),
            "accounts": records,
        }
        if snaps and not self._stopping:
            try:
                await self.publish(snaps)
            except Exception:  # noqa: BLE001
                if not self._stopping:
                    raise
                # The bus closed under us during shutdown: these only served later waves.

    def _write(self, report: dict, compute_s: float) -> None:
        self.reports.append(report)
        self.reports_written += 1
        self.state.add_wave(report, compute_s=compute_s)
        if self.wavelog is not None:
            self.wavelog.write(report)  # never raises: a failing disk queues and retries
        log.info("wave %s: %s..%s fills=%s needed=%.2f H0=%s deficit=%s", report.get("wave_id"),
                 report.get("t_start_ms"), report.get("t_end_ms"), report.get("adl_fills"),
                 report.get("needed_usd") or 0.0,
                 (report.get("production_haircut_usd") or {}).get("0"), report.get("deficit_usd"))

    # ----------------------------------------------------------------- status
    async def _status(self) -> None:
        while True:
            self._update_sources()
            self.metrics.observe_engine_stats(VENUE, self.engine.stats)
            if self.wavelog is not None:
                self.wavelog.retry()
            await asyncio.sleep(1.0)

    def demo_finished(self, detail: str) -> None:
        """The demo venue played everything and the feeds were stopped on purpose."""
        self._sources_note = f"demo finished ({detail.split(';')[0]})"
        self._update_sources()

    def _update_sources(self) -> None:
        current = self.feeds.status()
        if self._sources_note:
            for status in current.values():
                status.update(detail=self._sources_note, healthy=False, connected=False)
        for name in list(self.state.sources):
            if name not in current:  # e.g. the start-up entry once the sources run
                del self.state.sources[name]
        for name, status in current.items():
            self.state.update_source(name, **status)

    # ------------------------------------------------------------------- stop
    async def stop(self) -> None:
        self._stopping = True
        self.notifier.stopping("shutting down")
        t_end = time.monotonic() + STOP_GRACE_S
        await self.feeds.stop()
        await self.supervisor.stop(self._tasks)
        await self.bus.close()
        if self._engine_task is not None:
            try:
                await asyncio.wait_for(self._engine_task, max(0.1, t_end - time.monotonic() - 3))
            except asyncio.TimeoutError:
                log.warning("shutdown: engine did not drain the bus in time; %d events dropped",
                            self.bus.pending)
                self._engine_task.cancel()
        if self.store is None:
            for w in self.engine.finish():
                self.wave_closed_at[w.wave_id] = time.perf_counter()
                self.waves_q.put_nowait(w)
        # else a stop is a pause: open waves stay open in the snapshot and go on after
        # the restart (finishing them here would report them cut short).
        self.waves_q.put_nowait(None)
        if self._report_task is not None:
            try:
                await asyncio.wait_for(self._report_task, max(0.1, t_end - time.monotonic() - 1))
            except asyncio.TimeoutError:
                log.warning("shutdown: %d wave reports not written in time", self.waves_q.qsize())
                self._report_task.cancel()
        await self.supervisor.stop()
        # A task cut off mid-batch or mid-wave leaves its flag set: no snapshot then
        # (it would not match the sources' offsets); the last periodic one stands.
        if self.store is not None and not self.snapshot():
            log.error("shutdown: no state snapshot written; a restart resumes from the last "
                      "periodic one")
        if self.wavelog is not None:
            self.wavelog.close()
        if self._runner is not None:
            await self._runner.cleanup()
        log.info("adlmon stopped (%d waves reported)", self.reports_written)


# ---------------------------------------------------------------------- CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None,
                        help="config file (default: config.toml when present, else built-in defaults)")
    parser.add_argument("--listen", metavar="HOST:PORT", help="override [server] listen")
    parser.add_argument("--venue-url", metavar="WS_URL",
                        help="override [venues.hyperliquid] ws_url (e.g. a fake venue)")
    parser.add_argument("--info-url", metavar="HTTP_URL",
                        help="override [venues.hyperliquid] info_url (default with --venue-url: "
                             "the same host's /info)")
    parser.add_argument("--demo", action="store_true",
                        help="start a fake venue in-process on a freshly simulated cascade; its "
                             "waves go to a temporary directory it names, not to [wavelog] path")
    parser.add_argument("--demo-speed", type=float, default=DEMO_SPEED,
                        help="demo playback speed, × real time")
    parser.add_argument("--demo-seed", type=int, default=None,
                        help="simulator seed of the demo cascade: the same seed plays the same "
                             "cascade (default: from the clock, printed at start)")


def effective_config(args: argparse.Namespace) -> Config:
    cfg = load_config(default_config_path(args.config))
    hl = cfg.venues.hyperliquid
    server = cfg.server
    if args.listen:
        parse_config({"server": {"listen": args.listen}}, "--listen")  # the config's own rule
        server = dataclasses.replace(server, listen=args.listen)
    if args.venue_url:
        info = args.info_url or _info_for(args.venue_url)
        hl = dataclasses.replace(hl, ws_url=args.venue_url, info_url=info)
    elif args.info_url:
        hl = dataclasses.replace(hl, info_url=args.info_url)
    return dataclasses.replace(cfg, server=server,
                               venues=dataclasses.replace(cfg.venues, hyperliquid=hl))


def _info_for(ws_url: str) -> str:
    scheme, _, rest = ws_url.partition("://")
    host = rest.split("/", 1)[0]
    return f"{'https' if scheme == 'wss' else 'http'}://{host}/info"


def _setup_logging(cfg: Config) -> None:
    level = getattr(logging, cfg.log.level.upper(), logging.INFO)
    if cfg.log.format == "json":
        class JsonFormatter(logging.Formatter):
            def format(self, record):
                return orjson.dumps({"time": record.created, "level": record.levelname.lower(),
                                     "logger": record.name, "message": record.getMessage()}).decode()
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=level, handlers=[handler], force=True)
    else:
        logging.basicConfig(level=level, force=True,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")


async def _demo_venue(speed: float, out: Path, seed: int):
    from adlmon.sim import simulate
    from adlmon.venues.hyperliquid.fake import FakeHyperliquid
    result = simulate(out, seed=seed, accounts=800, coins=3)
    fake = await FakeHyperliquid(out, speed=speed, paused=True, lead_ms=2000).start()
    log.info("demo: fake Hyperliquid on %s playing %s (seed %d: %d fills, %d ADL fills, %d waves) "
             "at %.0fx", fake.ws_url, out, seed, result.fills, result.adl_fills,
             len(result.waves), speed)
    return fake, result


async def _demo_watch(daemon: "Daemon", fake, expected_waves: int, detail: str,
                      settle_s: float = 30.0) -> None:
    """The demo is finished once the fake venue has played its whole cascade and every
    simulated wave is reported (or ``settle_s`` of wall time after the last block, for
    a wave the live feed segments differently). Then the feeds stop: the venue has
    nothing more to send, and a market feed left open would report silence every
    ``silence_budget_s`` forever."""
    state = daemon.state
    state.demo = {"finished": False, "expected_waves": expected_waves, "detail": detail}
    await fake.done.wait()
    deadline = time.monotonic() + settle_s
    while daemon.reports_written < expected_waves and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    await daemon.feeds.stop()
    done = (f"{daemon.reports_written} of {expected_waves} simulated waves reported; "
            f"feeds stopped; {detail}")
    state.demo.update(finished=True, waves=daemon.reports_written, detail=done)
    daemon.demo_finished(done)
    log.info("demo finished: %s (Ctrl-C to stop; the status page and API stay up)", done)


def demo_config(cfg: Config, fake, demo_dir: Path | None = None) -> Config:
    """The daemon's config for the fake venue; with ``demo_dir`` its wavelog and
    quarantine go there, never to the configured (production) files."""
    hl = dataclasses.replace(cfg.venues.hyperliquid, ws_url=fake.ws_url, info_url=fake.info_url,
                             sources=("vault_fills", "vault_events", "vault_state", "trades"),
                             coins=tuple(fake.coins), vaults=(), ping_interval_s=5.0,
                             liveness_timeout_s=5.0, silence_budget_s=30.0,
                             backoff_initial_s=0.2, backoff_max_s=2.0)
    wavelog, engine = cfg.wavelog, cfg.engine
    if demo_dir is not None:
        hl = dataclasses.replace(hl, quarantine_path=str(demo_dir / "quarantine.jsonl"))
        wavelog = dataclasses.replace(wavelog, path=str(demo_dir / "wavelog.jsonl"))
        # Never the production state: a demo must not resume from (or overwrite) it.
        engine = dataclasses.replace(engine, state_dir=str(demo_dir / "state")
                                     if engine.state_dir else "")
    return dataclasses.replace(cfg, wavelog=wavelog, engine=engine,
                               venues=dataclasses.replace(cfg.venues, hyperliquid=hl))


async def run(cfg: Config, *, demo: bool = False, demo_speed: float = DEMO_SPEED,
              demo_seed: int | None = None, stop: asyncio.Event | None = None) -> int:
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):
            pass
    fake = None
    clock = None
    watch = None
    if demo:
        # Kept after exit (named on stdout): the cascade can be replayed, the waves read.
        demo_dir = Path(tempfile.mkdtemp(prefix="adlmon-demo-"))
        seed = demo_seed if demo_seed is not None else int(time.time()) % 1000
        fake, result = await _demo_venue(demo_speed, demo_dir / "cascade", seed)
        cfg = demo_config(cfg, fake, demo_dir)
        clock = VenueClock(rate=demo_speed)
    daemon = Daemon(cfg, clock=clock)
    try:
        await daemon.start()
    except (OSError, ValueError) as exc:
        log.error("cannot start: %s", exc)
        if fake is not None:
            await fake.stop()
        return 2
    if fake is not None:
        detail = (f"seed {seed} (--demo-seed {seed} repeats it); waves in "
                  f"{cfg.wavelog.path}, cascade in {demo_dir / 'cascade'}")
        watch = asyncio.create_task(_demo_watch(daemon, fake, len(result.waves), detail),
                                    name="adlmon-demo")
        fake.resume()
        print(f"adlmon demo: status page {daemon.url}/  metrics {daemon.url}/metrics  "
              f"waves {daemon.url}/api/waves  (Ctrl-C to stop)\n"
              f"adlmon demo: {detail}", flush=True)
    await stop.wait()
    log.info("signal received, stopping")
    try:
        if watch is not None:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
        await asyncio.wait_for(daemon.stop(), STOP_GRACE_S + 1)
    finally:
        if fake is not None:
            await fake.stop()
    return 0


def main(args: argparse.Namespace) -> int:
    try:
        cfg = effective_config(args)
    except ConfigError as exc:
        return exc.report()
    _setup_logging(cfg)
    return asyncio.run(run(cfg, demo=args.demo, demo_speed=args.demo_speed,
                           demo_seed=args.demo_seed))
