"""Acceptance (issue 4): the real aiohttp server on 127.0.0.1, a simulated cascade
replayed through it (with the counterfactual as the report builder, as the daemon
runs it), and over HTTP: the counters equal the replay's totals and the reports'
mechanism sums, /readyz turns ready, /api/waves returns the waves."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adlmon import sim
from adlmon.config import ServerConfig
from adlmon.counterfactual import Counterfactual
from adlmon.metrics import Metrics
from adlmon.replay import replay_files
from adlmon.server import ServerState, server_url, start_server, stop

HORIZONS = (0, 500, 1000, 2000, 5000)


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    return sim.simulate(tmp_path_factory.mktemp("cascade"), accounts=600, coins=3, seed=21)


async def test_replayed_cascade_is_served_over_http(cascade):
    state = ServerState(Metrics(horizons_ms=HORIZONS), recent_waves=500, mode="replay")
    runner = await start_server(ServerConfig(listen="127.0.0.1:0"), state)
    url = server_url(runner)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            async with http.get(url + "/readyz") as r:
                assert r.status == 503
            state.started = True
            async with http.get(url + "/readyz") as r:
                assert r.status == 503  # started, but no source and no replay yet

            # The replay runs off the event loop, as the daemon would run it; the
            # server keeps answering meanwhile.
            result = await asyncio.to_thread(
                replay_files, cascade.paths, 5000, HORIZONS,
                lambda wave, report: state.add_wave(report),
                report_builder=Counterfactual().report)
            state.replay_done = True
            totals = result.totals
            assert totals["waves"] >= 2, "the cascade should have several ADL waves"

            async with http.get(url + "/readyz") as r:
                assert r.status == 200

            async with http.get(url + "/metrics") as r:
                assert r.status == 200
                text = await r.text()
            samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                       for f in text_string_to_metric_families(text) for s in f.samples}
            hl = (("venue", "hyperliquid"),)
            assert samples[("adlmon_adl_waves_total", hl)] == totals["waves"]
            assert samples[("adlmon_adl_fills_total", hl)] == totals["adl_fills"]
            assert samples[("adlmon_adl_needed_usd_total", hl)] == pytest.approx(totals["needed_usd"])
            assert samples[("adlmon_adl_notional_usd_total", hl)] == pytest.approx(
                totals["notional_usd"])
            assert samples[("adlmon_adl_deficit_unknown_waves_total", hl)] == \
                totals["waves_deficit_unknown"]
            assert samples[("adlmon_adl_deficit_increment_usd_total", hl)] == pytest.approx(
                totals["deficit_increment_usd"])
            for h in map(str, HORIZONS):
                key = (("horizon", h), ("venue", "hyperliquid"))
                assert samples[("adlmon_adl_production_haircut_usd_total", key)] == pytest.approx(
                    totals["production_haircut_usd"][h])
                assert samples[("adlmon_adl_excess_haircut_usd_total", key)] == pytest.approx(
                    totals["excess_haircut_positive_usd"][h])
            # the counterfactual: each mechanism's ex-post haircut summed over the waves
            mechanisms = Metrics().mechanisms
            for name in mechanisms:
                expected = sum(r["counterfactual"]["mechanisms"][name]["ex_post"]["total_usd"]
                               for r in result.reports)
                key = (("mechanism", name), ("venue", "hyperliquid"))
                assert samples[("adlmon_adl_optimal_haircut_usd_total", key)] == \
                    pytest.approx(expected), name
            for h in map(str, HORIZONS):
                expected = sum(max(0.0, r["counterfactual"]["excess_vs_optimal_usd"][h])
                               for r in result.reports)
                key = (("horizon", h), ("venue", "hyperliquid"))
                assert samples[("adlmon_adl_excess_vs_optimal_usd_total", key)] == \
                    pytest.approx(expected)
            last = result.reports[-1]
            regret = last["counterfactual"]["regret"]
            assert regret["counted"], "the cascade's last wave has a known deficit"
            assert samples[("adlmon_adl_regret_bound_usd", hl)] == \
                pytest.approx(regret["bound_usd"])
            key = (("mechanism", "production"), ("venue", "hyperliquid"))
            assert samples[("adlmon_adl_policy_loss_usd", key)] == pytest.approx(
                regret["cumulative_loss_usd"]["production"])
            assert samples[("adlmon_adl_last_wave_end_timestamp_seconds", hl)] == \
                last["t_end_ms"] / 1000

            async with http.get(url + "/api/waves", params={"limit": "500"}) as r:
                assert r.status == 200
                data = json.loads(await r.read())
            assert data["count"] == totals["waves"]
            assert [w["wave_id"] for w in data["waves"]] == \
                [rep["wave_id"] for rep in reversed(result.reports)]
            assert data["waves"][0]["needed_usd"] == pytest.approx(last["needed_usd"])

            async with http.get(url + "/api/status") as r:
                status = json.loads(await r.read())
            assert status["ready"] and status["replay_done"] and status["mode"] == "replay"
            assert status["waves_kept"] == totals["waves"]
    finally:
        await stop(runner)
