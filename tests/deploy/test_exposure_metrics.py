"""The exposure gauges on a simulated cascade's ledger pass ``promtool check metrics`` and
carry the queue's own numbers (adlmon/exposure.py -> Metrics.set_exposure)."""

from __future__ import annotations

import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adlmon import sim
from adlmon.exposure import queue_order, queues_of, side_summary, watch_ranks
from adlmon.exposure_cli import ledger_at
from adlmon.metrics import Metrics
from promql_names import ROOT, promtool


@pytest.fixture(scope="module")
def exposition(tmp_path_factory):
    res = sim.simulate(tmp_path_factory.mktemp("sim"), accounts=400, coins=3, seed=11)
    ledger, _, _ = ledger_at(res.paths)
    qs = queues_of(ledger, queue_order("hyperliquid"))
    head = {k: q.users[0] for k, q in qs.items()}
    watched = sorted(set(head.values()))[:3]
    m = Metrics(process_collectors=False)
    sides = {k: side_summary(q, 1_000_000.0) for k, q in qs.items()}
    m.set_exposure("hyperliquid", sides, watch_ranks(qs, watched))
    m.set_insurance_fund("hyperliquid", "hlp_liquidator", 250_000.0)
    m.set_deficit("hyperliquid", 1000.0)
    return m.exposition(), qs, sides, watched


def test_exposure_exposition_passes_promtool_check_metrics(exposition):
    text, *_ = exposition
    p = subprocess.run([promtool(), "check", "metrics"], input=text, capture_output=True,
                       timeout=60, cwd=ROOT)
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()


def test_exposure_gauges_carry_the_queue_numbers(exposition):
    text, qs, sides, watched = exposition
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(text.decode()) for s in f.samples}
    for (coin, side), s in sides.items():
        key = (("coin", coin), ("side", side), ("venue", "hyperliquid"))
        assert samples[("adlmon_adl_queue_positions", key)] == len(qs[(coin, side)])
        assert samples[("adlmon_adl_queue_capacity_usd", key)] == pytest.approx(
            float(qs[(coin, side)].capacity_usd.sum()))
        assert 0.0 <= samples[("adlmon_adl_queue_top10_share_ratio", key)] <= 1.0
    for (coin, side), q in qs.items():
        if q.users[0] in watched:
            key = (("address", q.users[0]), ("coin", coin), ("side", side), ("venue", "hyperliquid"))
            assert samples[("adlmon_adl_watch_rank", key)] == 1.0
            assert samples[("adlmon_adl_watch_quantile_ratio", key)] == 1.0
    assert samples[("adlmon_adl_shortfall_absorbable_usd", (("venue", "hyperliquid"),))] == 249_000.0
