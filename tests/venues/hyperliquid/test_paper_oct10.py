"""The paper's published 10 Oct 2025 waves, and ``adlmon replay`` beside them."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson
import pytest

from adlmon import cli
from adlmon.sim import DEFAULTS, simulate
from adlmon.venues.hyperliquid import paper_oct10 as paper

REPO = Path(__file__).resolve().parents[3]
OUTPUTS = REPO.parent / "shared" / "data" / "paper_outputs"


@pytest.mark.skipif(not OUTPUTS.is_dir(), reason="shared/data/paper_outputs not present")
def test_embedded_figures_are_the_published_csvs():
    bad_debt = {int(r["wave"]): r for r in csv.DictReader(open(OUTPUTS / "bad_debt_loser_waves.csv"))}
    assert [w.wave for w in paper.PUBLISHED_WAVES] == sorted(bad_debt)
    for h in (0, 500, 1000, 2000, 5000):
        rows = {int(r["wave"]): r for r in csv.DictReader(
            open(OUTPUTS / "horizon_sweep" / f"horizon_ms={h}" / "two_pass_equity_delta_by_wave.csv"))}
        for w in paper.PUBLISHED_WAVES:
            assert w.production_haircut_usd[h] == float(rows[w.wave]["budget_prod_usd"])
            assert w.needed_usd == float(rows[w.wave]["budget_needed_usd"])
    for w in paper.PUBLISHED_WAVES:
        r = bad_debt[w.wave]
        assert (w.t_start_ms, w.t_end_ms, w.adl_fills, w.losers) == (
            int(r["t_start_ms"]), int(r["t_end_ms"]), int(r["n_rows"]), int(r["unique_losers"]))
        assert w.deficit_usd == float(r["deficit_usd"])
    (tot,) = [r for r in csv.DictReader(open(OUTPUTS / "eval_horizon_sweep_gap_ms=5000.csv"))
              if r["eval_horizon_ms"] == "0"]
    assert paper.PUBLISHED_TOTALS["deficit_usd"] == float(tot["total_deficit_usd"])
    assert paper.PUBLISHED_TOTALS["needed_usd"] == float(tot["total_budget_needed_usd"])


def test_per_wave_figures_add_up_to_the_published_totals():
    ws = paper.PUBLISHED_WAVES
    assert len(ws) == paper.PUBLISHED_TOTALS["waves"] == 16
    assert sum(w.needed_usd for w in ws) == pytest.approx(paper.PUBLISHED_TOTALS["needed_usd"], rel=1e-12)
    assert sum(w.deficit_usd for w in ws) == pytest.approx(paper.PUBLISHED_TOTALS["deficit_usd"], rel=1e-12)
    for h, total in paper.PUBLISHED_TOTALS["production_haircut_usd"].items():
        assert sum(w.production_haircut_usd[h] for w in ws) == pytest.approx(total, rel=1e-12)
    # paper-code.md: the 16 published waves hold these fill counts, 31,152 of 34,983
    assert [w.adl_fills for w in ws] == [11279, 2915, 1179, 304, 21, 2248, 100, 2290, 817, 82,
                                        7873, 1896, 75, 26, 10, 37]


@pytest.fixture(scope="module")
def aligned(tmp_path_factory):
    """A simulated cascade shifted so its first wave starts at the paper's wave 1."""
    probe = simulate(tmp_path_factory.mktemp("probe"), accounts=300, seed=3)
    shift = paper.PUBLISHED_WAVES[0].t_start_ms - probe.waves[0]["t_start_ms"]
    return simulate(tmp_path_factory.mktemp("aligned"), accounts=300, seed=3,
                    start_ms=DEFAULTS["start_ms"] + shift)


def _replay(sim, tmp_path, extra_misc: bytes = b"") -> tuple[list[str], Path]:
    misc = tmp_path / "misc_events.jsonl"
    misc.write_bytes(sim.misc_path.read_bytes() + extra_misc)
    paths = [str(sim.account_snapshot_path), str(sim.positions_snapshot_path), str(sim.fills_path), str(misc)]
    return paths, tmp_path / "report.json"


LATE = (b'{"time":"2025-10-10T21:26:00.000000000","hash":"0x00","inner":{"LedgerUpdate":'
        b'{"users":["0x' + b"f" * 40 + b'"],"delta":{"type":"deposit","usdc":"1.0"}}}}\n')


def test_replay_covering_the_window_prints_and_reports_the_published_waves_beside(aligned, tmp_path, capsys):
    paths, report = _replay(aligned, tmp_path, LATE)
    assert cli.main(["replay", *paths, "--report", str(report)]) == 0
    out = capsys.readouterr().out
    doc = orjson.loads(report.read_bytes())
    cmp = doc["paper_comparison"]
    truth = aligned.waves
    rows = {r["paper_wave"]: r for r in cmp["rows"]}
    assert len(rows) == 16
    r1 = rows[1]
    assert r1["adlmon_wave"] == 1 and r1["fills"] == [truth[0]["adl_fills"], 11279]
    b, d = truth[0]["needed_usd"], truth[0]["deficit_usd"]
    assert r1["needed_usd"][0] == pytest.approx(b, rel=1e-12)
    assert r1["rel"]["needed_usd"] == pytest.approx((b - 2266239.82024108) / 2266239.82024108)
    assert r1["rel"]["deficit_usd"] == pytest.approx((d - 10925707.159377944) / 10925707.159377944)
    assert r1["paper_counted"] is True
    # the simulated second wave falls between published waves: unmatched, said so
    assert all(r["adlmon_wave"] is None for k, r in rows.items() if k != 1)
    assert cmp["unmatched"]["waves"] == len(truth) - 1
    t = cmp["totals"]
    assert t["paper"]["needed_usd"] == paper.PUBLISHED_TOTALS["needed_usd"]
    assert t["adlmon_paper_counted"]["waves"] == sum(1 for w in truth if w["deficit_usd"] > 0)
    assert doc["totals"]["paper_counted"]["waves"] == t["adlmon_paper_counted"]["waves"]
    assert "beside the paper's published waves of 10 Oct 2025" in out
    for column in paper.EXPLANATIONS:
        assert f"  {column}: " in out
    assert "adlmon, paper_counted" in out and "paper (published)" in out


def test_no_comparison_when_the_input_does_not_cover_the_window(aligned, tmp_path, capsys):
    paths, report = _replay(aligned, tmp_path)  # ends about a minute after wave 1
    assert cli.main(["replay", *paths, "--report", str(report)]) == 0
    assert "paper_comparison" not in orjson.loads(report.read_bytes())
    out = capsys.readouterr().out
    assert "beside the paper" not in out and "paper-comparable (D > 0, paper_counted)" in out


def test_covers_needs_the_whole_published_window():
    first, last = paper.WINDOW_MS
    assert paper.covers(first, last) and paper.covers(first - 1, last + 1)
    assert not paper.covers(first + 1, last) and not paper.covers(first, last - 1)
    assert not paper.covers(None, last)


def test_the_comparison_needs_a_wave_inside_the_window():
    first, last = paper.WINDOW_MS
    inside = {"t_start_ms": first + 10, "t_end_ms": first + 10}
    before = {"t_start_ms": first - 60_000, "t_end_ms": first - 50_000}
    assert paper.applies(first - 1, last + 1, [before, inside])
    assert not paper.applies(first - 1, last + 1, [before])
    assert not paper.applies(first + 1, last + 1, [inside])
