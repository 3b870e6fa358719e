"""Lighter's face in the registry: what the core may use of it, used the way the core would."""

from __future__ import annotations

import asyncio
import dataclasses

from lighter_helpers import assert_waves_match

from adlmon.engine.engine import Engine
from adlmon.venues import SourceContext, face, faces
from adlmon.venues.lighter.config import LighterConfig
from adlmon.venues.lighter.fake import read_capture


def test_lighter_is_registered_disabled_by_default_with_its_coverage():
    f = faces()["lighter"]
    assert f is face("lighter") and f.config is LighterConfig
    cfg = f.config()
    assert cfg.enabled is False and cfg.problems() == []
    assert "deleverage" in f.coverage and "unknown" in f.coverage
    assert f.gap_ms == cfg.gap_ms == 5000


def test_config_value_rules_name_the_key_and_the_rule():
    bad = LighterConfig(ws_url="http://x", subscriptions_per_connection=101, backoff_initial_s=5.0,
                        backoff_max_s=1.0, markets=(1, 1), ping_interval_s=0.0)
    text = "\n".join(bad.problems("c.toml"))
    for key in ("ws_url", "subscriptions_per_connection", "backoff_initial_s", "markets",
                "ping_interval_s"):
        assert f"c.toml: [venues.lighter] {key} = " in text


async def test_simulate_fake_sources_and_capture_parser_through_the_face(tmp_path):
    f = face("lighter")
    truth = f.simulate(tmp_path / "sim", seed=2, coins=2)
    assert (tmp_path / "sim" / "truth.json").exists()
    parser = f.capture_parser(f.config())
    eng = Engine("lighter", gap_ms=truth["gap_ms"], horizons_ms=truth["horizons_ms"])
    waves = []
    for rec in read_capture(tmp_path / "sim"):
        for e in parser.parse(rec):
            waves += eng.apply(e)
    for e in parser.finish():
        waves += eng.apply(e)
    assert_waves_match(waves + eng.finish(), truth["waves"])

    fake = await f.fake(tmp_path / "sim", speed=50.0, paused=True)
    got = []

    async def publish(events):
        got.extend(events)
    cfg = f.demo_config(f.config(), fake)
    assert cfg.enabled and cfg.ws_url == fake.ws_url
    src = f.sources(SourceContext(cfg=cfg, publish=publish, metrics=None, now_ms=fake.venue_now_ms))
    try:
        await src.start()
        async with asyncio.timeout(20):
            while not any(st.get("connected") and st.get("kind") == "websocket"
                          for st in src.status().values()):
                await asyncio.sleep(0.01)
        assert {"lighter.stream.0", "lighter.rest"} <= set(src.status())
    finally:
        await src.stop()
        await fake.stop()


async def test_every_connection_and_the_pool_have_series_from_the_start(tmp_path):
    from adlmon.metrics import Metrics

    f = face("lighter")
    f.simulate(tmp_path / "sim", seed=2, coins=2)
    fake = await f.fake(tmp_path / "sim", speed=50.0, paused=True)
    m = Metrics()

    async def publish(events):
        pass
    cfg = dataclasses.replace(f.demo_config(f.config(), fake), subscriptions_per_connection=2)
    src = f.sources(SourceContext(cfg=cfg, publish=publish, metrics=m, now_ms=fake.venue_now_ms))
    try:
        await src.start()
        async with asyncio.timeout(20):
            while len(src.sessions) < 2 or not all(s.connected for s in src.sessions.values()):
                await asyncio.sleep(0.01)
        text = m.exposition().decode()
    finally:
        await src.stop()
        await fake.stop()
    for source, channel in (("stream0", "market_stats"), ("stream0", "trade"), ("stream1", "trade")):
        assert (f'adlmon_feed_connected{{channel="{channel}",source="{source}",venue="lighter"}} 1.0'
                in text), (source, channel)
    assert 'adlmon_insurance_fund_usd{pool="llp",venue="lighter"}' in text


async def test_the_sources_run_under_the_daemons_supervisor(tmp_path):
    from adlmon.supervise import Supervisor

    f = face("lighter")
    f.simulate(tmp_path / "sim", seed=2, coins=2)
    fake = await f.fake(tmp_path / "sim", speed=50.0, paused=True)
    sup = Supervisor()

    async def publish(events):
        pass
    src = f.sources(SourceContext(cfg=f.demo_config(f.config(), fake), publish=publish,
                                  metrics=None, now_ms=fake.venue_now_ms, supervisor=sup))
    try:
        await src.start()
        async with asyncio.timeout(20):
            while "lighter.stream.0" not in sup.states or not src.sessions["lighter.stream.0"].connected:
                await asyncio.sleep(0.01)
        assert {"lighter.startup", "lighter.stream.0", "lighter.pool", "lighter.merge",
                "lighter.backfill"} <= set(sup.status())
        assert sup.problems() == []
    finally:
        await src.stop()
        await fake.stop()
    assert not any(sup.running(n) for n in sup.states)
