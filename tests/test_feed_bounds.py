"""Websocket bounds (issue 9) against the fake venue: a frame over ``max_frame_bytes`` and an
endless frame announcing 2^40 bytes are refused from their header (a counted
``frame_too_large`` reconnect, little of the payload ever read), and a flood of 20,000
frames the parser raises on is counted with a throttled log, not a traceback per frame."""

from __future__ import annotations

import logging

import orjson
import pytest

from live_venue import (
    SEGMENT_FIELDS, VAULT, finish, live_config, make_cascade, replay_reports, same,
    start_daemon, stopped_on_error, vault_fills_in, wait_for,
)
from adlmon.venues.hyperliquid.fake import FakeHyperliquid

CAP = 1 << 20
CALM = {"liveness_timeout_s": 3.0, "silence_budget_s": 3.0, "max_frame_bytes": CAP}


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    sim = make_cascade(tmp_path_factory.mktemp("cascade"))
    return sim, replay_reports(sim), vault_fills_in(sim)


def reconnects(daemon, reason: str) -> float:
    return sum(s.reconnects.get(reason, 0) for s in daemon.feeds.sessions.values())


async def test_oversized_and_endless_frames_are_refused_from_the_header_and_reconnected(cascade, tmp_path):
    sim, reference, vault_fills = cascade
    fake = await FakeHyperliquid(sim.out_dir, speed=20.0, paused=True).start()
    daemon, tap = await start_daemon(fake, live_config(fake, tmp_path, **CALM), join_hold_ms=40_000)
    async with stopped_on_error(daemon, fake):
        fake.resume()
        await wait_for(lambda: daemon.engine.stats["adl_fills"] > 0, 10)
        await wait_for(lambda: fake._subscribed("trades") and fake._subscribed("userFills"), 10)
        big = '{"channel":"trades","data":"' + "x" * (3 * CAP) + '"}'
        assert await fake.send_raw(big, channel="trades") == 1
        await wait_for(lambda: reconnects(daemon, "frame_too_large") >= 1, 10)
        written = await fake.send_endless_frame(channel="userFills", max_bytes=64 * CAP)
        await wait_for(lambda: reconnects(daemon, "frame_too_large") >= 2, 10)
        # the reader refused the frame from its header: the venue could write only what the
        # socket buffers took before the close, nowhere near 2^40 (or the 64 MiB bound here)
        assert written < 16 * CAP, written
        await wait_for(lambda: all(s.connected for s in daemon.feeds.sessions.values()), 10)
    await finish(daemon, fake, len(reference))
    assert daemon.metrics.registry.get_sample_value(
        "adlmon_feed_reconnects_total",
        {"venue": "hyperliquid", "channel": "trades", "source": "market",
         "reason": "frame_too_large"}) == 1
    assert tap.vault_fills() == vault_fills  # the vault's backfill repaired its reconnect
    assert len(daemon.reports) == len(reference)
    for live, ref in zip(daemon.reports, reference):
        assert same(live, ref, SEGMENT_FIELDS) == []


async def test_a_flood_of_frames_the_parser_raises_on_is_counted_with_a_throttled_log(cascade, tmp_path, caplog):
    sim, reference, _vault_fills = cascade
    fake = await FakeHyperliquid(sim.out_dir, speed=20.0, paused=True).start()
    daemon, _tap = await start_daemon(fake, live_config(fake, tmp_path, **CALM), join_hold_ms=40_000)
    # {"fills": 5} made the parser raise TypeError: one full traceback per frame before issue 9
    poison = orjson.dumps({"channel": "userFills", "data": {"user": VAULT, "fills": 5}}).decode()
    vault = next(s for n, s in daemon.feeds.sessions.items() if ".vault." in n)
    async with stopped_on_error(daemon, fake):
        await wait_for(lambda: fake._subscribed("userFills"), 10)  # the subscribe has landed
        with caplog.at_level(logging.WARNING, logger="adlmon.net.session"):
            assert await fake.flood(poison, 20_000, channel="userFills") == 20_000
            await wait_for(lambda: vault.parse_errors.get("userFills", 0) >= 20_000, 30)
        fake.resume()
    await finish(daemon, fake, len(reference))
    records = [r for r in caplog.records if r.name == "adlmon.net.session"]
    assert len(records) < 100, len(records)
    assert sum(1 for r in records if r.exc_info) <= 10 + 20_000 // 1000  # first 10, then 1 in 1000
    assert not vault.reconnects  # counted, quarantined, never a reason to drop the socket
    assert len(daemon.reports) == len(reference)
