"""Helpers for the live tests (tests/test_app.py, tests/test_faults.py): a simulated
cascade, its replay as the reference, the fake venue and a daemon wired to it.

Everything runs on 127.0.0.1 with bounded waits; the cascade plays ``SPEED`` times
faster than real time (event times preserved)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
from collections import Counter
from pathlib import Path

import orjson
from prometheus_client.parser import text_string_to_metric_families

from adlmon.app import Daemon, VenueClock
from adlmon.config import HLP_LIQUIDATORS, parse_config
from adlmon.events import Fill, FeedGap
from adlmon.io.archive import read_lines
from adlmon.replay import replay_files
from adlmon.sim import simulate
from adlmon.venues.hyperliquid.fake import FakeHyperliquid

SIM = dict(accounts=400, coins=3, seed=7)
HORIZONS = (0, 500, 1000, 2000, 5000)
GAP_MS = 5000
SPEED = 20.0
VAULT = HLP_LIQUIDATORS[0]
# Report fields a public-websocket run must reproduce exactly (needed, production
# haircut, deficit of the vault losers, and the segmentation behind them).
SAME_FIELDS = ("t_start_ms", "t_end_ms", "adl_fills", "accounts", "losers", "coins",
               "notional_usd", "needed_usd", "deficit_usd", "deficit_increment_usd",
               "deficit_source", "production_haircut_usd", "excess_haircut_usd",
               "theta_needed", "theta_prod")
# What survives any fault that the venue's backfill repairs: every ADL fill, once.
SEGMENT_FIELDS = ("t_start_ms", "t_end_ms", "adl_fills", "needed_usd", "losers", "coins")


def make_cascade(out: Path, **params):
    return simulate(out, gap_ms=GAP_MS, horizons_ms=HORIZONS, **{**SIM, **params})


def replay_reports(sim) -> list[dict]:
    return replay_files(sim.paths, GAP_MS, HORIZONS).reports


def vault_fills_in(sim) -> Counter:
    """(user, coin, tid) of every fill of a vault in the node file."""
    vaults = set(sim.truth["vaults"])
    keys: Counter = Counter()
    for line in read_lines(sim.fills_path):
        for user, f in orjson.loads(line)["events"]:
            if user in vaults:
                keys[(user, f["coin"], f["tid"])] += 1
    return keys


def live_config(fake: FakeHyperliquid, tmp: Path, **hl):
    """Small timeouts and backoff so that every fault recovers in well under a second."""
    venue = {
        "ws_url": fake.ws_url, "info_url": fake.info_url,
        "sources": ["vault_fills", "vault_events", "vault_state", "trades"],
        "coins": list(fake.coins), "vaults": [VAULT],
        "ping_interval_s": 0.2, "liveness_timeout_s": 0.5, "silence_budget_s": 0.6,
        "backoff_initial_s": 0.05, "backoff_max_s": 0.3, "vault_poll_interval_s": 1.0,
        "quarantine_path": str(tmp / "quarantine.jsonl"), "quarantine_max_bytes": 1_000_000,
    }
    venue.update(hl)
    cfg = parse_config({
        "engine": {"gap_ms": GAP_MS, "horizons_ms": list(HORIZONS)},
        "wavelog": {"path": str(tmp / "wavelog.jsonl")},
        "venues": {"hyperliquid": venue},
    }, "test")
    # port 0 (ephemeral) is for tests only; the config rule asks for a real port
    return dataclasses.replace(cfg, server=dataclasses.replace(cfg.server, listen="127.0.0.1:0"))


class Tap:
    """Records every batch the sources publish, then passes it to the bus."""

    def __init__(self, publish):
        self.inner = publish
        self.events: list = []

    async def __call__(self, events):
        self.events.extend(events)
        await self.inner(events)

    def vault_fills(self, vaults=(VAULT,)) -> Counter:
        vs = set(vaults)
        return Counter((e.user, e.coin, e.tid) for e in self.events
                       if e.__class__ is Fill and e.user in vs)

    def gaps(self) -> list[FeedGap]:
        return [e for e in self.events if isinstance(e, FeedGap)]


async def start_daemon(fake: FakeHyperliquid, cfg, join_hold_ms: int | None = None) -> tuple[Daemon, Tap]:
    """A daemon on ``cfg`` whose clock does not know the venue plays fast (rate 1):
    waves close and horizons are reached by later events, as in a replay, and a
    fault's wall-clock timeouts cannot pass for minutes of venue time.
    ``join_hold_ms``: how long a vault fill waits for its trade (venue ms; at SPEED
    the default 2 s is 0.1 s of wall time, which a loaded machine can exceed)."""
    daemon = Daemon(cfg, clock=VenueClock(rate=1.0))
    if join_hold_ms is not None:
        daemon.feeds.join.hold_ms = join_hold_ms
    tap = Tap(daemon.feeds.publish)
    daemon.feeds.publish = tap
    await daemon.start()
    await wait_for(lambda: daemon.feeds.sessions and all(
        s.connected for s in daemon.feeds.sessions.values()), 10)
    return daemon, tap


async def wait_for(cond, timeout: float, step: float = 0.01):
    """Poll ``cond`` until true; a bound, not a measurement: fails only when never true."""
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(step)


async def finish(daemon: Daemon, fake: FakeHyperliquid, n_waves: int, timeout: float = 20):
    """Play to the end, wait for the expected reports, stop both."""
    try:
        await wait_for(fake.done.is_set, timeout)
        await wait_for(lambda: len(daemon.reports) >= n_waves, timeout)
        # vault events whose trades were lost in a reconnect wait out the join's hold
        await wait_for(lambda: daemon.feeds.join.held == 0, 5)
    finally:
        await daemon.stop()
        await fake.stop()


def same(live: dict, ref: dict, fields=SAME_FIELDS, rel: float = 1e-9) -> list[str]:
    """Fields where a live report differs from the replay's (floats to ``rel``)."""
    diffs = []
    for k in fields:
        a, b = live.get(k), ref.get(k)
        if not _close(a, b, rel):
            diffs.append(f"{k}: live {a!r} != replay {b!r}")
    return diffs


def _close(a, b, rel) -> bool:
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], rel) for k in a)
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return False
        return abs(a - b) <= rel * max(1.0, abs(a), abs(b))
    return a == b


@contextlib.asynccontextmanager
async def stopped_on_error(daemon: Daemon, fake: FakeHyperliquid):
    """Stop both if the block raises (a test's own failure must not leak a daemon)."""
    try:
        yield
    except BaseException:
        await daemon.stop()
        await fake.stop()
        raise


def metric(text: str, name: str, **labels) -> float:
    """Sum of the samples of ``name`` in an exposition whose labels include ``labels``."""
    total = 0.0
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
