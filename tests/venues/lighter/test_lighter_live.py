"""The Lighter collectors against the fake Lighter (real sockets on 127.0.0.1).

The daemon's view (LighterFeeds -> events -> Engine) of a simulated cascade
played by the fake gives truth.json's waves, B, H and D, the same as the
replay of the simulator's capture; its own capture replays to the very events
it published; and so under the fault matrix: drop (1006), resend, rate-limit
close (1008 then 429), stall (silence), with the venue's ping, subscription
caps and pacing enforced by the fake.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from lighter_helpers import assert_waves_match

from adlmon.engine.engine import Engine
from adlmon.events import FeedGap, Fill
from adlmon.io.capture import CaptureWriter
from adlmon.venues.lighter.config import LighterConfig
from adlmon.venues.lighter.fake import FakeLighter, read_capture
from adlmon.venues.lighter.parse import ADL, LighterParser
from adlmon.venues.lighter.sim import simulate
from adlmon.venues.lighter.ws import LighterFeeds, shard


SPEED = 20.0
# The time merge holds 20 s of venue time: 1 s of wall time at SPEED (a loaded machine's
# stalls stay well inside it; at 1x the default 1 s is the same margin).
HOLD_MS = 20_000


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("lighter-live"), seed=5, coins=3)


class Bus:
    def __init__(self):
        self.events = []

    async def __call__(self, events):
        self.events.extend(events)


def config(fake, **over) -> LighterConfig:
    base = dict(enabled=True, ws_url=fake.ws_url, rest_url=fake.rest_url, ping_interval_s=0.3,
                liveness_timeout_s=2.0, marks_silence_budget_s=10.0, subscribe_interval_s=0.02,
                backoff_initial_s=0.02, backoff_max_s=0.1, quarantine_path="",
                pool_poll_interval_s=3600.0, merge_hold_ms=HOLD_MS)
    base.update(over)
    return LighterConfig(**base)


async def wait_for(cond, timeout=30.0):
    async with asyncio.timeout(timeout):
        while not cond():
            await asyncio.sleep(0.01)


def waves_of(events, truth):
    eng = Engine("lighter", gap_ms=truth["gap_ms"], horizons_ms=truth["horizons_ms"])
    waves = []
    for e in events:
        waves += eng.apply(e)
    return waves + eng.finish()


def subscribed(feeds, fake, n_subs):
    """Every session connected, and the fake took every subscription of every connection."""
    sessions = feeds.sessions.values()
    return sum(len(s.adapter.subs) for s in sessions) == n_subs and all(s.connected for s in sessions) \
        and fake.subscribes >= sum(len(s.adapter.subs) * s.connects for s in sessions)


async def run_live(cascade, tmp_path, fault=None, fake_kw=None, cfg_kw=None):
    """Fake paused at the snapshot; collectors up and subscribed; play; apply ``fault``."""
    fake = await FakeLighter(cascade.out_dir, speed=SPEED, paused=True,
                             subscribe_interval_s=0.005, **(fake_kw or {})).start()
    bus = Bus()
    cap = CaptureWriter(tmp_path / "cap", "lighter", compress=False)
    feeds = LighterFeeds(config(fake, **(cfg_kw or {})), bus, now_ms=fake.venue_now_ms, capture=cap)
    try:
        await feeds.start()
        n_subs = 1 + len(cascade.truth["markets"])
        await wait_for(lambda: subscribed(feeds, fake, n_subs))
        fake.resume()
        if fault is not None:
            await fault(fake, feeds)
        await wait_for(lambda: fake.done.is_set())
        # Everything sent reaches the collector before it stops (bounded wait).
        await wait_for(lambda: max(e.time_ms for e in bus.events if isinstance(e, Fill)) >=
                       cascade.truth["waves"][-1]["t_end_ms"] and not feeds.backfill_pending)
        await asyncio.sleep(0.2)
    finally:
        await feeds.stop()
        await fake.stop()
        cap.close()
    return bus.events, feeds, fake, tmp_path / "cap"


def replay_events(directory):
    p = LighterParser(hold_ms=HOLD_MS)  # the collectors' time merge
    return [e for r in read_capture(directory) for e in p.parse(r)] + p.finish()


def adl_tids(events):
    return sorted(e.tid for e in events if isinstance(e, Fill) and e.kind == ADL)


async def test_daemon_view_of_the_fake_matches_truth_and_its_own_capture(cascade, tmp_path):
    events, feeds, fake, cap = await run_live(cascade, tmp_path)
    assert_waves_match(waves_of(events, cascade.truth), cascade.truth["waves"])
    # The capture it wrote replays to exactly the events it published (FeedGaps aside: the
    # session announces those itself).
    live = [e for e in events if not isinstance(e, FeedGap)]
    assert replay_events(cap) == live
    assert fake.violations == {} and fake.idle_closes == 0
    assert all(s.reconnects == {} for s in feeds.sessions.values())
    st = feeds.status()
    assert st["lighter.rest"]["pool_index"] == cascade.truth["pool"]
    assert st["lighter.stream.0"]["subscriptions"] == 1 + len(cascade.truth["markets"])
    assert st["lighter.stream.0"]["connects"] == 1


async def test_dropped_connections_resent_snapshots_are_deduplicated(cascade, tmp_path):
    async def fault(fake, feeds):
        for _ in range(2):
            await wait_for(lambda: fake.venue_now_ms() > cascade.truth["waves"][0]["t_start_ms"] + 500)
            fake.pause()  # nothing is lost while the venue clock stands still
            session = feeds.sessions["lighter.stream.0"]
            before = session.connects
            await fake.drop_connections(None)
            await wait_for(lambda: session.connects > before and session.connected)
            await wait_for(lambda: subscribed(feeds, fake, 1 + len(cascade.truth["markets"])))
            fake.resume()
    events, feeds, fake, _cap = await run_live(cascade, tmp_path, fault)
    assert feeds.sessions["lighter.stream.0"].reconnects == {"abnormal_1006": 2}
    assert feeds.parser.stats["duplicates"] > 0  # the re-sent snapshots
    assert_waves_match(waves_of(events, cascade.truth), cascade.truth["waves"])
    assert any(isinstance(e, FeedGap) for e in events)


async def test_resent_update_frames_are_deduplicated(cascade, tmp_path):
    async def fault(fake, feeds):
        await wait_for(lambda: fake.venue_now_ms() > cascade.truth["waves"][0]["t_end_ms"])
        fake.pause()
        assert await fake.resend(30) == 30
        fake.resume()
    events, feeds, _fake, _cap = await run_live(cascade, tmp_path, fault)
    assert feeds.parser.stats["duplicates"] > 0
    assert_waves_match(waves_of(events, cascade.truth), cascade.truth["waves"])


async def test_rate_limit_close_then_429_is_waited_out_and_nothing_is_lost(cascade, tmp_path):
    async def fault(fake, feeds):
        await wait_for(lambda: fake.venue_now_ms() > cascade.truth["waves"][0]["t_start_ms"])
        fake.pause()
        session = feeds.sessions["lighter.stream.0"]
        await fake.rate_limit_close(retry_after="0.3")
        await wait_for(lambda: session.reconnects.get("http_429") and session.connected)
        await wait_for(lambda: subscribed(feeds, fake, 1 + len(cascade.truth["markets"])))
        fake.resume()
    events, feeds, fake, _cap = await run_live(cascade, tmp_path, fault)
    session = feeds.sessions["lighter.stream.0"]
    assert session.reconnects == {"close_1008": 1, "http_429": 1}
    assert [d for r, d in session.history if r == "http_429"][0] >= 0.3  # Retry-After honoured
    assert fake.rejected == 1
    assert_waves_match(waves_of(events, cascade.truth), cascade.truth["waves"])


def lossy_drop(cascade, away_ms):
    async def fault(fake, feeds):
        await wait_for(lambda: fake.venue_now_ms() > cascade.truth["waves"][0]["t_start_ms"] + 300)
        session = feeds.sessions["lighter.stream.0"]
        before = session.connects
        fake.pause()
        fake.reject_upgrades(10_000, status=503, retry_after=None)  # the venue is unreachable
        await fake.drop_connections(None)
        # While the collector is away the venue goes on: these trades reach it only by REST.
        fake.resume()
        start = fake.venue_now_ms()
        await wait_for(lambda: fake.venue_now_ms() > start + away_ms)
        fake.pause()
        fake.reject.clear()
        await wait_for(lambda: session.connects > before and session.connected)
        await wait_for(lambda: subscribed(feeds, fake, 1 + len(cascade.truth["markets"])))
        fake.resume()
    return fault


async def test_a_lossy_drop_is_backfilled_from_recent_trades(cascade, tmp_path):
    # A snapshot of 3 trades cannot cover 1 s away (10 blocks): recentTrades must.
    events, feeds, fake, _cap = await run_live(
        cascade, tmp_path, lossy_drop(cascade, 1000), fake_kw={"snapshot_trades": 3},
        cfg_kw={"backoff_initial_s": 0.05, "backoff_max_s": 0.05, "backfill_limit": 1000})
    assert fake.rest_requests["recentTrades"] >= 1 and feeds.backfilled > 0
    # Every ADL fill arrives once (the marks missed while away are not recoverable, so B may
    # differ; the fills may not), and no gap is left unannounced.
    assert adl_tids(events) == adl_tids(replay_events(cascade.out_dir))
    assert feeds.backfill_gaps == 0
    reasons = {g.reason for g in events if isinstance(g, FeedGap)}
    assert reasons and "backfill_incomplete" not in reasons  # the reconnect's own gaps only


async def test_what_the_backfill_cannot_reach_is_a_feed_gap(cascade, tmp_path):
    events, feeds, fake, _cap = await run_live(
        cascade, tmp_path, lossy_drop(cascade, 1000), fake_kw={"snapshot_trades": 3},
        cfg_kw={"backoff_initial_s": 0.05, "backoff_max_s": 0.05, "backfill_limit": 5})
    gaps = [g for g in events if isinstance(g, FeedGap) and g.reason == "backfill_incomplete"]
    assert gaps and feeds.backfill_gaps == len(gaps)
    assert all(g.channel == "trade" and g.from_ms < g.to_ms for g in gaps)
    assert len(adl_tids(events)) < len(adl_tids(replay_events(cascade.out_dir)))


async def test_silent_marks_channel_reconnects_and_the_idle_rule_never_fires(cascade, tmp_path):
    async def fault(fake, feeds):
        await wait_for(lambda: fake.venue_now_ms() > cascade.truth["waves"][0]["t_start_ms"])
        fake.pause()
        session = feeds.sessions["lighter.stream.0"]
        fake.stall()
        await wait_for(lambda: session.reconnects.get("silence", 0) >= 1)
        await wait_for(lambda: subscribed(feeds, fake, 1 + len(cascade.truth["markets"])))
        fake.resume()
    # The fake closes sockets idle for 1.5 s; pings every 0.2 s keep them.
    events, feeds, fake, _cap = await run_live(
        cascade, tmp_path, fault, fake_kw={"idle_timeout_s": 1.5, "server_ping_s": 0.3},
        cfg_kw={"marks_silence_budget_s": 1.0, "ping_interval_s": 0.2})
    assert fake.idle_closes == 0 and fake.pongs >= 1
    assert feeds.sessions["lighter.stream.0"].reconnects == {"silence": 1}
    assert_waves_match(waves_of(events, cascade.truth), cascade.truth["waves"])


async def test_sockets_without_pings_are_closed_by_the_idle_rule(cascade, tmp_path):
    fake = await FakeLighter(cascade.out_dir, speed=SPEED, paused=True, idle_timeout_s=0.3).start()
    feeds = LighterFeeds(config(fake, ping_interval_s=30.0, liveness_timeout_s=30.0), Bus(),
                         now_ms=fake.venue_now_ms)
    try:
        await feeds.start()
        await wait_for(lambda: fake.idle_closes >= 1)
        s = feeds.sessions["lighter.stream.0"]
        await wait_for(lambda: s.reconnects.get("close_1000", 0) >= 1)
    finally:
        await feeds.stop()
        await fake.stop()


async def test_subscriptions_are_sharded_under_the_caps_and_paced(cascade, tmp_path):
    n_markets = len(cascade.truth["markets"])
    fake = await FakeLighter(cascade.out_dir, speed=SPEED, paused=True,
                             subscriptions_per_connection=2, subscribe_interval_s=0.02).start()
    feeds = LighterFeeds(config(fake, subscriptions_per_connection=2, subscribe_interval_s=0.06),
                         Bus(), now_ms=fake.venue_now_ms)
    try:
        await feeds.start()
        await wait_for(lambda: subscribed(feeds, fake, 1 + n_markets))
        await asyncio.sleep(0.1)
        assert len(feeds.sessions) == -(-(1 + n_markets) // 2)
        assert sum(len(c.subs) for c in fake.conns.values()) == 1 + n_markets
        assert fake.violations == {}
    finally:
        await feeds.stop()
        await fake.stop()
    # The fake refuses what breaks its caps and pacing, and counts it.
    fake = await FakeLighter(cascade.out_dir, speed=SPEED, paused=True,
                             subscriptions_per_connection=2, subscribe_interval_s=0.5).start()
    feeds = LighterFeeds(config(fake, subscriptions_per_connection=3, subscribe_interval_s=0.0,
                                backoff_initial_s=1.0, backoff_max_s=1.0), Bus(),
                         now_ms=fake.venue_now_ms)
    try:
        await feeds.start()
        await wait_for(lambda: fake.violations.get("per_connection") or fake.violations.get("pacing"))
        await wait_for(lambda: any(s.reconnects.get("error_payload") for s in feeds.sessions.values()))
    finally:
        await feeds.stop()
        await fake.stop()


def test_shard_keeps_the_per_ip_cap():
    subs, left = shard([f"c{i}" for i in range(250)], 100, 201)
    assert [len(s) for s in subs] == [100, 100, 1] and left == [f"c{i}" for i in range(201, 250)]



async def test_malformed_frames_are_counted_and_an_error_payload_reconnects(cascade, tmp_path):
    bad = ['{"type":"update/trade","channel":"trade:0","trades":[{"trade_id":1', '[1,2]',
           '{"type":"update/orderbook","channel":"order_book:0"}',
           '{"type":"update/trade","channel":"trade:0","trades":[{"type":"deleverage"}]}']

    async def fault(fake, feeds):
        await wait_for(lambda: fake.venue_now_ms() > cascade.truth["waves"][0]["t_start_ms"])
        fake.pause()
        session = feeds.sessions["lighter.stream.0"]
        for text in bad:
            await fake.send_raw(text)
        await wait_for(lambda: sum(session.parse_errors.values()) >= 3
                       and feeds.parser.rejected.get("missing_field"))
        assert session.connected and session.reconnects == {}  # bad frames never drop the feed
        await fake.send_raw('{"type":"error","code":30009,"message":"subscription lost"}')
        await wait_for(lambda: session.reconnects.get("error_payload"))
        await wait_for(lambda: subscribed(feeds, fake, 1 + len(cascade.truth["markets"])))
        fake.resume()
    events, feeds, _fake, _cap = await run_live(cascade, tmp_path, fault)
    session = feeds.sessions["lighter.stream.0"]
    assert session.parse_errors.get("trade", 0) >= 1 and session.parse_errors.get("unknown", 0) >= 2
    assert feeds.parser.rejected == {"missing_field": 1}  # the trade without fields, kept apart
    assert_waves_match(waves_of(events, cascade.truth), cascade.truth["waves"])


async def test_sharded_connections_are_merged_in_time_order_and_match_truth(cascade, tmp_path):
    # 1 + 3 subscriptions over connections of 2: marks and two markets on one socket, the
    # third market on another; the time merge gives the engine one ordered stream.
    events, feeds, fake, cap = await run_live(
        cascade, tmp_path, fake_kw={"subscriptions_per_connection": 2},
        cfg_kw={"subscriptions_per_connection": 2})
    assert len(feeds.sessions) == 2 and fake.violations == {}
    assert_waves_match(waves_of(events, cascade.truth), cascade.truth["waves"])
    assert replay_events(cap) == [e for e in events if not isinstance(e, FeedGap)]
