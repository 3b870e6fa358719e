"""The engine fed by the dYdX capture parser over a simulated cascade reproduces truth.json."""

from __future__ import annotations

import pytest

from adlmon.engine.engine import Engine
from adlmon.io.capture import decode_line
from adlmon.sim import open_lines
from adlmon.venues.dydx import FACE
from adlmon.venues.dydx.sim import simulate

PARAMS = dict(seed=4, accounts=600, coins=3)


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    out = tmp_path_factory.mktemp("dydx-sim")
    truth = simulate(out, **PARAMS)
    return out, truth


def replay(out, truth):
    parser = FACE.capture_parser(None)
    engine = Engine("dydx", gap_ms=truth["gap_ms"], horizons_ms=truth["horizons_ms"])
    waves = []
    for name in truth["files"]["capture"]:
        for line in open_lines(out / name):
            for e in parser.parse(decode_line(line)):
                waves += engine.apply(e)
    for e in parser.finish():
        waves += engine.apply(e)
    return waves + engine.finish(), parser, engine


def test_simulation_has_waves_and_is_deterministic(cascade, tmp_path):
    out, truth = cascade
    assert truth["totals"]["waves"] >= 2 and truth["totals"]["adl"] >= 5
    assert truth["totals"]["liquidations"] > 0 and truth["totals"]["final_settlement"] == 1
    again = simulate(tmp_path, **PARAMS)
    name = truth["files"]["capture"][0]
    assert (tmp_path / name).read_bytes() == (out / name).read_bytes()
    assert again["waves"] == truth["waves"]


def test_rendered_needed_budget_equals_the_models_own(cascade):
    _out, truth = cascade
    for w in truth["waves"]:
        assert w["needed_usd"] == pytest.approx(w["model_needed_usd"], rel=1e-12, abs=1e-9)


def test_replay_of_the_capture_reproduces_truth(cascade):
    out, truth = cascade
    waves, parser, engine = replay(out, truth)
    assert len(waves) == len(truth["waves"])
    for w, tw in zip(waves, truth["waves"]):
        assert (w.t_start_ms, w.t_end_ms, w.adl_fills) == (tw["t_start_ms"], tw["t_end_ms"], tw["adl_fills"])
        assert list(w.coins) == tw["coins"]
        assert w.needed_usd == pytest.approx(tw["needed_usd"], rel=1e-9, abs=1e-9)
        for h in truth["horizons_ms"]:
            assert w.production_haircut_usd[h] == pytest.approx(
                tw["production_haircut_usd"][str(h)], rel=1e-9, abs=1e-9)
            assert w.horizon_status[h] == "reached"
        # Public dYdX trades name no loser: the deficit is unknown, not zero.
        assert w.deficit_usd is None and w.deficit_source == "unknown"
        assert sorted(w.fills.tid.tolist()) == sorted(int(x[:8], 16) << 32 | 2 << 24 | int(x[16:], 16)
                                                      for x in tw["trade_ids"])
    assert parser.stats["final_settlement"] == 1
    assert engine.stats["adl_fills"] == truth["totals"]["adl"]
    assert engine.stats["liquidation_fills"] == truth["totals"]["liquidations"]
    assert engine.stats["out_of_order"] == 0


def test_replaying_the_capture_twice_into_one_parser_adds_nothing(cascade):
    out, truth = cascade
    parser = FACE.capture_parser(None)
    name = truth["files"]["capture"][0]
    first = [e for line in open_lines(out / name) for e in parser.parse(decode_line(line))]
    first += parser.finish()
    fills = [e for line in open_lines(out / name) for e in parser.parse(decode_line(line))
             if e.__class__.__name__ == "Fill"] + parser.finish()
    assert fills == [] and any(e.__class__.__name__ == "Fill" for e in first)
