"""The simulated Lighter cascade: its capture, replayed through the parser and the engine,
reproduces truth.json's waves, B, H and D (issue 10 "Tests and acceptance")."""

from __future__ import annotations

import pytest

from lighter_helpers import assert_waves_match, replay

from adlmon.venues.lighter.sim import simulate


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    return simulate(tmp_path_factory.mktemp("lighter-sim"), seed=3)


def test_capture_replay_through_the_engine_reproduces_truth(cascade):
    waves, parser, eng = replay(cascade.capture_paths, cascade.truth)
    assert_waves_match(waves, cascade.truth["waves"])
    assert parser.rejected == {} and eng.stats["out_of_order"] == 0
    assert eng.stats["adl_fills"] == cascade.truth["totals"]["adl_fills"] == cascade.adl_trades


def test_the_conversion_keeps_the_models_needed_budget(cascade):
    # M(t_k) of the Lighter marks is the simulator's markPx of each ADL fill.
    for t in cascade.truth["waves"]:
        assert t["needed_usd"] == pytest.approx(t["sim_needed_usd"], rel=1e-12)
        assert t["deficit_usd"] > 0 and t["production_haircut_usd"]["0"] > 0


def test_same_seed_same_bytes_and_lz4_replays_the_same(tmp_path, cascade):
    again = simulate(tmp_path / "a", seed=3)
    assert [p.read_bytes() for p in again.capture_paths] == [p.read_bytes() for p in cascade.capture_paths]
    packed = simulate(tmp_path / "z", seed=3, compress=True)
    assert all(p.name.endswith(".lz4") for p in packed.capture_paths)
    waves, _, _ = replay(packed.capture_paths, packed.truth)
    assert_waves_match(waves, cascade.truth["waves"])
