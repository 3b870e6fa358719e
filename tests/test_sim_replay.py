"""Acceptance (issue 2): replaying a simulated cascade reproduces truth.json.

Every wave is found; needed, deficit and production haircut agree with the
simulator's truth within 1e-6 relative; the ledger's equity of every account
equals the simulator's. The truth comes from the simulator's internal state,
the replay only sees the files: they meet only through the archive formats.
"""

from __future__ import annotations

import orjson
import pytest

from adlmon import sim

replay = pytest.importorskip("adlmon.replay")
from adlmon.engine.engine import Engine  # noqa: E402
from adlmon.engine.ledger import Ledger  # noqa: E402

REL = 1e-6
CASES = {
    "one_vault_plain": dict(accounts=1500, coins=3, seed=7),
    "two_vaults_lz4_block_misc": dict(accounts=1200, coins=4, seed=11, vaults=2, lz4=True,
                                      misc_format="block"),
}


def _close(a, b) -> bool:
    return a == pytest.approx(b, rel=REL, abs=1e-9)


def _assert_waves_match(replayed: list[dict], truth: list[dict]) -> None:
    assert [(w["t_start_ms"], w["t_end_ms"], w["adl_fills"]) for w in replayed] == \
           [(w["t_start_ms"], w["t_end_ms"], w["adl_fills"]) for w in truth]
    for got, want in zip(replayed, truth):
        wid = want["wave_id"]
        for key in ("accounts", "losers", "coins", "deficit_source"):
            assert got[key] == want[key], (wid, key)
        for key in ("needed_usd", "deficit_usd", "deficit_increment_usd", "notional_usd",
                    "closed_pnl_usd"):
            assert _close(got[key], want[key]), (wid, key, got[key], want[key])
        for h, value in want["production_haircut_usd"].items():
            assert _close(got["production_haircut_usd"][h], value), (wid, h)
            assert got["horizon_status"][h] == "reached", (wid, h)
        for key in ("theta_needed", "theta_prod"):
            assert _close(got[key], want[key]), (wid, key)


@pytest.mark.parametrize("params", CASES.values(), ids=CASES.keys())
def test_replaying_a_simulated_cascade_reproduces_truth(tmp_path, params):
    res = sim.simulate(tmp_path, **params)
    truth = res.truth
    assert len(truth["waves"]) >= 2
    engine = Engine("hyperliquid", sim.GAP_MS, sim.HORIZONS_MS, Ledger(new_accounts_empty=True))
    out = replay.replay_files(res.paths, sim.GAP_MS, sim.HORIZONS_MS, engine=engine)
    assert out.ok and not out.errors, out.errors
    assert engine.stats["fills"] == res.fills
    assert engine.stats["adl_fills"] == res.adl_fills
    assert engine.stats["divergences"] == 0 and engine.stats["unknown_dir"] == 0
    _assert_waves_match([w.to_dict() for w in out.waves], truth["waves"])
    ledger = engine.ledger
    for user, equity in truth["accounts"].items():
        assert ledger.known(user), user
        assert ledger.equity(user) == pytest.approx(equity, rel=1e-9, abs=1e-6), user
    assert ledger.marks() == truth["marks"]


def test_adlmon_replay_report_of_a_simulated_cascade_matches_truth(tmp_path):
    from adlmon.cli import main as cli_main

    res = sim.simulate(tmp_path / "sim", accounts=800, coins=3, seed=4)
    assert len(res.truth["waves"]) >= 2
    report = tmp_path / "report.json"
    rc = cli_main(["replay", *map(str, res.paths), "--report", str(report), "--quiet"])
    assert rc == 0
    doc = orjson.loads(report.read_bytes())
    _assert_waves_match(doc["waves"], res.truth["waves"])
