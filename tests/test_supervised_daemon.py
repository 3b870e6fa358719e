"""The issue 9 reproductions against the live daemon and the fake venue: one bad event, one
bad REST answer or a failing wavelog stopped the monitor silently; now each is survived,
counted, and every wave of the good events is still reported."""

from __future__ import annotations

import errno

import orjson
import pytest

from live_venue import (
    SEGMENT_FIELDS, VAULT, finish, live_config, make_cascade, replay_reports, same,
    start_daemon, stopped_on_error, wait_for,
)
from adlmon.venues.hyperliquid.fake import FakeHyperliquid

BAD_STATE = {"assetPositions": 5, "marginSummary": {"accountValue": "1"}, "time": 1}
# Liveness limits above a loaded machine's stalls: what is tested here is not reconnects.
CALM = {"liveness_timeout_s": 3.0, "silence_budget_s": 3.0}


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    sim = make_cascade(tmp_path_factory.mktemp("cascade"))
    return sim, replay_reports(sim)


def segments_match(reports, reference) -> None:
    assert len(reports) == len(reference)
    for live, ref in zip(reports, reference):
        assert same(live, ref, SEGMENT_FIELDS) == []


def task_failures(daemon) -> float:
    return sum(st.failures for st in daemon.supervisor.states.values())


async def test_a_liquidation_with_an_object_as_liquidated_user_does_not_stop_the_engine(cascade, tmp_path):
    sim, reference = cascade
    fake = await FakeHyperliquid(sim.out_dir, speed=20.0, paused=True).start()
    daemon, _tap = await start_daemon(fake, live_config(fake, tmp_path, **CALM), join_hold_ms=40_000)
    async with stopped_on_error(daemon, fake):
        fake.resume()
        await wait_for(lambda: daemon.engine.stats["adl_fills"] > 0, 10)
        frame = orjson.dumps({"channel": "user", "data": {"liquidation": {
            "lid": 1, "liquidator": VAULT, "liquidated_user": {"user": "0xabc"},
            "liquidated_ntl_pos": "1.0", "liquidated_account_value": "-1.0"}}}).decode()
        assert await fake.send_raw(frame, channel="userEvents") == 1
        vault = next(s for n, s in daemon.feeds.sessions.items() if ".vault." in n)
        # refused by the parser (a counted parse error) or skipped by the engine (bad_event)
        await wait_for(lambda: daemon.engine.stats["bad_events"] + vault.parse_errors.get(
            "user", 0) >= 1, 10)
        assert daemon.supervisor.running("engine")
    await finish(daemon, fake, len(reference))
    segments_match(list(daemon.reports), reference)
    assert task_failures(daemon) == 0


async def test_garbage_clearinghouse_state_for_the_vault_at_start_up_and_for_winners(cascade, tmp_path):
    """Before issue 9 the vault's answer killed start-up (no websocket was ever opened)
    and a winner's killed the report task (no wave reported again)."""
    sim, reference = cascade
    fake = await FakeHyperliquid(sim.out_dir, speed=20.0, paused=True).start()
    fake.script_info("clearinghouseState", BAD_STATE, user=VAULT, times=1)
    daemon, _tap = await start_daemon(fake, live_config(fake, tmp_path, **CALM), join_hold_ms=40_000)
    async with stopped_on_error(daemon, fake):
        assert fake.scripted_answers == 1  # start_daemon saw every session connected
        assert daemon.feeds.poller.states[VAULT].errors == 1
        fake.script_info("clearinghouseState", BAD_STATE, times=None)  # winners (and vault)
        fake.resume()
    await finish(daemon, fake, len(reference))
    segments_match(list(daemon.reports), reference)
    assert task_failures(daemon) == 0
    polled = [r["winner_state"] for r in daemon.reports if "winner_state" in r]
    assert polled and all(w.get("polled") == 0 for w in polled)


async def test_a_wavelog_on_a_full_disk_keeps_reporting_shows_in_readiness_and_loses_nothing(cascade, tmp_path):
    sim, reference = cascade
    fake = await FakeHyperliquid(sim.out_dir, speed=20.0, paused=True).start()
    daemon, _tap = await start_daemon(fake, live_config(fake, tmp_path, **CALM), join_hold_ms=40_000)
    disk = {"full": True}
    real_write = daemon.wavelog._os_write

    def write(fd, data):
        if disk["full"]:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    daemon.wavelog._os_write = write
    daemon.wavelog.backoff.max_s = daemon.wavelog.backoff.initial_s = 0.05
    async with stopped_on_error(daemon, fake):
        fake.resume()
        await wait_for(lambda: daemon.reports_written >= len(reference), 30)
        ready, reasons = daemon.state.readiness()
        assert not ready and any("sink wavelog" in r and "No space left" in r for r in reasons)
        assert daemon.wavelog.pending == len(reference)
        assert daemon.metrics.registry.get_sample_value(
            "adlmon_sink_write_errors_total", {"sink": "wavelog"}) >= 1
        disk["full"] = False
        await wait_for(lambda: daemon.wavelog.pending == 0, 10)  # the status loop retries
        assert not any("sink wavelog" in r for r in daemon.state.readiness()[1])
    await finish(daemon, fake, len(reference))
    lines = [orjson.loads(x) for x in (tmp_path / "wavelog.jsonl").read_bytes().splitlines()]
    segments_match(lines, reference)


async def test_readyz_names_a_task_that_is_down_while_the_feeds_are_healthy(cascade, tmp_path):
    import aiohttp
    sim, _reference = cascade
    fake = await FakeHyperliquid(sim.out_dir, speed=20.0, paused=True).start()
    daemon, _tap = await start_daemon(fake, live_config(fake, tmp_path, **CALM))
    try:
        async with aiohttp.ClientSession() as http:
            async def readyz():
                async with http.get(daemon.url + "/readyz") as r:
                    return r.status, await r.text()

            await wait_for(lambda: daemon.state.readiness()[0], 10)
            assert (await readyz())[0] == 200

            async def broken():
                raise KeyError("a key the poller never expected")

            daemon.supervisor.spawn("hyperliquid.extra_poll", broken, restart=False)
            await wait_for(lambda: daemon.supervisor.states["hyperliquid.extra_poll"].fatal, 5)
            status, text = await readyz()
            assert status == 503
            assert "task hyperliquid.extra_poll failed and is not restarted: KeyError" in text
            async with http.get(daemon.url + "/metrics") as r:
                body = await r.text()
            assert 'adlmon_task_up{task="hyperliquid.extra_poll"} 0.0' in body
            assert 'adlmon_task_failures_total{task="hyperliquid.extra_poll"} 1.0' in body
    finally:
        await daemon.stop()
        await fake.stop()
