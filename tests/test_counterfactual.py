"""The counterfactual on real waves: a simulated cascade replayed through the engine."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from adlmon import mechanisms as mech
from adlmon.config import CounterfactualConfig
from adlmon.counterfactual import (
    OPTIMAL, PRODUCTION, Counterfactual, RegretRun, Winners, production_haircuts,
)
from adlmon.engine.engine import Engine
from adlmon.engine.ledger import Ledger
from adlmon.events import ADL, BUY, SELL, AccountSnapshot, Fill, Liquidation, PositionSnapshot
from adlmon.replay import replay_files
from adlmon.sim import simulate
from adlmon.mechanisms.severity import path_variation as _p, regret_bound_usd as _bound

VAULT = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    out = tmp_path_factory.mktemp("cascade")
    res = simulate(out, accounts=600, coins=3, shock=0.4, seed=7)
    result = replay_files(res.paths, 5000, (0, 1000))
    assert len(result.waves) >= 2
    return result.waves


@pytest.fixture(scope="module")
def reports(cascade):
    cf = Counterfactual(CounterfactualConfig(ilp_time_limit_s=5.0))
    return [cf.report(w) for w in cascade]


def test_every_mechanism_takes_exactly_the_needed_budget_where_capacity_allows(cascade, reports):
    for wave, rep in zip(cascade, reports):
        c = rep["counterfactual"]
        need = wave.needed_usd
        assert c["capacity_usd"] > need  # the simulated winners can always cover the hole
        for name in ("pro_rata", OPTIMAL, "rap", "queue_pnl", "queue_hyperliquid"):
            assert c["mechanisms"][name]["ex_post"]["total_usd"] == pytest.approx(need, rel=1e-9), name
        # Integer rules live on the contract grid: they cover the budget, never far above it.
        ilp = c["mechanisms"]["min_max_integer"]["ex_post"]
        assert ilp["total_usd"] >= need * (1 - 1e-9)


def test_capped_pro_rata_has_the_smallest_worst_share_among_budget_balanced_rules(reports):
    for rep in reports:
        m = rep["counterfactual"]["mechanisms"]
        best = m[OPTIMAL]["ex_post"]["max_share"]
        for name in ("pro_rata", "rap", "queue_pnl", "queue_hyperliquid"):
            assert best <= m[name]["ex_post"]["max_share"] * (1 + 1e-9), name


def test_production_per_winner_sums_to_the_wave_haircut(cascade):
    for wave in cascade:
        w = Winners(wave)
        for h in wave.horizons_ms:
            assert production_haircuts(wave, w, h).sum() == pytest.approx(
                wave.production_haircut_usd[h], rel=1e-12)


def test_excess_versus_optimal_is_production_minus_the_optimum(cascade, reports):
    for wave, rep in zip(cascade, reports):
        c = rep["counterfactual"]
        opt = c["mechanisms"][OPTIMAL]["ex_post"]["total_usd"]
        for h in wave.horizons_ms:
            assert c["excess_vs_optimal_usd"][str(h)] == pytest.approx(
                wave.production_haircut_usd[h] - opt, rel=1e-12)
        assert c["mechanisms"][PRODUCTION]["ex_post"]["total_usd"] == pytest.approx(
            wave.production_haircut_usd[wave.horizons_ms[0]], rel=1e-12)


def test_ex_ante_budget_uses_only_the_first_block_deficit(cascade):
    cf = Counterfactual(CounterfactualConfig(severity="fixed", fixed_theta=0.5,
                                             mechanisms=("pro_rata",)))
    for wave in cascade:
        c = cf.report(wave)["counterfactual"]
        assert wave.deficit_at_start_usd is not None
        assert wave.deficit_at_start_usd <= wave.deficit_usd + 1e-9
        expected = min(0.5 * wave.deficit_at_start_usd, c["capacity_usd"])
        assert c["budget"]["ex_ante_usd"] == pytest.approx(expected, rel=1e-12)
        assert c["mechanisms"]["pro_rata"]["ex_ante"]["total_usd"] == pytest.approx(expected, rel=1e-9)


def test_regret_bound_accumulates_over_waves(cascade, reports):
    d = [w.deficit_usd for w in cascade]
    theta = [min(1.0, w.needed_usd / w.deficit_usd) for w in cascade]
    p = sum(abs(a - b) for a, b in zip(theta[1:], theta[:-1]))
    last = reports[-1]["counterfactual"]["regret"]
    assert last["waves"] == len(cascade)
    assert last["path_variation"] == pytest.approx(p)
    assert last["bound_usd"] == pytest.approx(math.sqrt((1 + 2 * p) * sum(x * x for x in d)))
    assert last["cumulative_loss_usd"][PRODUCTION] > last["cumulative_loss_usd"][OPTIMAL]


def test_rank_audit_is_reported_for_the_wave_coins(cascade, reports):
    for wave, rep in zip(cascade, reports):
        audits = rep["counterfactual"]["rank_audit"]
        assert set(audits) <= set(wave.coins) and audits
        for a in audits.values():
            assert -1.0 <= a["kendall_tau"] <= 1.0 or math.isnan(a["kendall_tau"])


def _adl(user, coin, side, px, sz, start, mark, t=1000, pnl=0.0):
    return Fill("hyperliquid", coin, user, side, px, sz, t, start, ADL, pnl, 0.0, t + len(user), "h",
                Liquidation(VAULT, mark, "backstop"), "Auto-Deleveraging")


def test_winner_unknown_to_the_ledger_gets_its_capacity_from_its_fill():
    # Empty ledger: nothing but the ADL fill is known. closedPnl·|startPosition|/sz scales the
    # realized PnL of the closed part to the whole position.
    eng = Engine("hyperliquid", 5000, (0,), Ledger())
    eng.apply(AccountSnapshot("hyperliquid", VAULT, -50.0, (), 0))
    eng.apply(_adl("0xa", "ETH", BUY, 110.0, 1.0, -2.0, 100.0, pnl=30.0))
    (wave,) = eng.finish()
    rep = Counterfactual(CounterfactualConfig(mechanisms=("pro_rata",))).report(wave)
    c = rep["counterfactual"]
    assert c["capacity_source"] == {"ledger": 0, "fill": 1}
    assert c["capacity_usd"] == pytest.approx(30.0 * 2.0 / 1.0)
    assert c["mechanisms"]["pro_rata"]["ex_post"]["total_usd"] == pytest.approx(10.0)


def _two_winner_wave():
    eng = Engine("hyperliquid", 5000, (0,), Ledger())
    eng.apply(AccountSnapshot("hyperliquid", "0xa", 1000.0, (PositionSnapshot("ETH", -2.0, 150.0, 100.0),), 0))
    eng.apply(AccountSnapshot("hyperliquid", "0xb", 1000.0, (PositionSnapshot("ETH", -1.0, 120.0, 100.0),), 0))
    eng.apply(AccountSnapshot("hyperliquid", VAULT, -40.0, (PositionSnapshot("ETH", 3.0, 100.0, 100.0),), 0))
    eng.apply(_adl("0xa", "ETH", BUY, 105.0, 2.0, -2.0, 100.0, pnl=90.0))
    (wave,) = eng.finish()
    return wave


def test_two_winners_hand_computed():
    # Two shorts against a bankrupt long vault; ETH falls to 100. Winner a: short 2 @ 150 (uPnL
    # 100), b: short 1 @ 120 (uPnL 20). The venue ADLs a's whole 2 ETH at 105 vs mark 100:
    # needed = 5·2 = 10. Pro-rata takes 10·100/120 from a and 10·20/120 from b.
    wave = _two_winner_wave()
    assert wave.needed_usd == pytest.approx(10.0)
    c = Counterfactual(CounterfactualConfig(mechanisms=("pro_rata", "queue_pnl"))).report(wave)["counterfactual"]
    x = {n: m["ex_post"] for n, m in c["mechanisms"].items()}
    assert c["winners"] == 2 and c["capacity_usd"] == pytest.approx(120.0)
    assert x["pro_rata"]["max_share"] == pytest.approx(10.0 / 120.0)
    assert x["queue_pnl"]["max_share"] == pytest.approx(10.0 / 100.0)  # all from the top winner
    assert x["queue_pnl"]["accounts_touched"] == 1
    # Production: a closed 2 short at 105 while the mark stayed 105 (last fill): haircut 0.
    assert x[PRODUCTION]["total_usd"] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(c["excess_vs_optimal_usd"]["0"], -10.0)


# --- issue 9: the regret accounting keeps running sums, not every wave's deficit ---



@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(1e-3, 1e9), st.one_of(st.none(), st.just(float("nan")),
                                                        st.floats(0.0, 1.0))), max_size=60))
def test_running_regret_terms_equal_the_list_formulas(waves):
    run = RegretRun()
    for d, th in waves:
        run.add(d, th)
    ds, ths = [d for d, _ in waves], [th for _, th in waves]
    assert run.waves == len(waves)
    assert run.path_variation == pytest.approx(_p(ths), rel=1e-9, abs=1e-12)
    assert run.bound_usd == pytest.approx(_bound(ds, ths), rel=1e-9, abs=1e-9)


def test_the_counterfactual_keeps_no_per_wave_history():
    cf = Counterfactual()
    assert not [k for k, v in vars(cf).items() if isinstance(v, list)]
# --- incomplete data: float dust, unknown capacity ------------------------------------------

ALL_MECHANISMS = ("pro_rata", "capped_pro_rata", "rap", "queue_pnl", "queue_hyperliquid",
                  "contract_pro_rata", "min_max_integer")


def test_capacity_within_rounding_of_zero_counts_as_zero():
    u = np.array([0.0, 3e-14, 1e-7, 5e-6, 2e-3, 50.0])
    notional = np.array([0.0, 1e6, 0.0, 0.0, 1e6, 1e6])
    # floor = 1e-9·notional + 1e-6: 1e-6, 1e-3 + 1e-6, ...
    np.testing.assert_array_equal(mech.capacity_without_dust(u, notional),
                                  [0.0, 0.0, 0.0, 5e-6, 2e-3, 50.0])
    assert mech.capacity_without_dust([-4.0, 1.0]).tolist() == [0.0, 1.0]


def _trade(px, t):
    """Anyone's ETH fill at ``px``: the mark the production haircut's horizon reads."""
    return Fill("hyperliquid", "ETH", "0xm", BUY, px, 0.1, t, 0.0, "open", 0.0, 0.0, 9, "h")


def _dust_wave():
    """Winner d is short 2 ETH at an entry one ulp above the mark: uPnL = 2·(entry − 100) ≈
    2.8e-14 USD, float dust. Winner a has real capacity 100. The venue ADLs d's 2 ETH at
    101 against mark 100 (B = 2) and ETH trades at 100 before the 1 s horizon: production
    takes 2·(101 − 100) = 2 from d."""
    eng = Engine("hyperliquid", 5000, (1000,), Ledger())
    entry = np.nextafter(100.0, 200.0)
    eng.apply(AccountSnapshot("hyperliquid", "0xd", 1000.0, (PositionSnapshot("ETH", -2.0, entry, 100.0),), 0))
    eng.apply(AccountSnapshot("hyperliquid", "0xa", 1000.0, (PositionSnapshot("ETH", -2.0, 150.0, 100.0),), 0))
    eng.apply(AccountSnapshot("hyperliquid", VAULT, -40.0, (PositionSnapshot("ETH", 4.0, 100.0, 100.0),), 0))
    eng.apply(_adl("0xd", "ETH", BUY, 101.0, 2.0, -2.0, 100.0))
    eng.apply(_trade(100.0, 1200))
    (wave,) = eng.finish()
    return wave


def test_a_share_is_never_computed_against_float_dust():
    wave = _dust_wave()
    w = Winners(wave)
    assert 0 < w.upnl[w.index["0xd"]] < 1e-12 and w.u[w.index["0xd"]] == 0.0
    c = Counterfactual(CounterfactualConfig(mechanisms=ALL_MECHANISMS)).report(wave)["counterfactual"]
    prod = c["mechanisms"][PRODUCTION]["ex_post"]
    assert prod["total_usd"] == pytest.approx(2.0)
    # all of production's haircut is on an account without capacity: unbounded, not 1e14, not 0
    assert prod["max_share"] is None and prod["max_share_unbounded_accounts"] == 1
    assert mech.fairness_share(prod, "pnl") == 1.0
    assert prod["max_share_equity"] == pytest.approx(2.0 / 1000.0)
    for name in ALL_MECHANISMS:
        s = c["mechanisms"][name]["ex_post"]
        assert s["max_share_unbounded_accounts"] == 0, name
        assert s["max_share"] is not None and s["max_share"] <= 1.0 + 1e-9, name


def test_fairness_term_of_every_policy_is_at_most_lambda_times_b(cascade):
    """OL eq. 23 with m in [0, 1]: Σ_t λ·B_t·|m − m_ref| <= λ·ΣB, production included."""
    lam = 3.0
    cf = Counterfactual(CounterfactualConfig(ilp_time_limit_s=5.0, fairness_lambda=lam))
    tracking: dict[str, float] = {}
    for wave in [*cascade, _dust_wave()]:
        rep = cf.report(wave)
        for name, m in rep["counterfactual"]["mechanisms"].items():
            total = (wave.production_haircut_usd[wave.horizons_ms[0]] if name == PRODUCTION
                     else m["ex_post"]["total_usd"])
            tracking[name] = tracking.get(name, 0.0) + abs(total - wave.needed_usd)
    regret = rep["counterfactual"]["regret"]
    assert regret["share_convention"] == "equity"
    total_b = sum(w.needed_usd for w in [*cascade, _dust_wave()] if w.deficit_usd)
    for name, loss in regret["cumulative_loss_usd"].items():
        assert math.isfinite(loss)
        assert loss - tracking[name] <= lam * total_b * (1 + 1e-12), name
        assert loss >= tracking[name] * (1 - 1e-12), name


def _unknown_capacity_wave():
    """As in the demo: the ledger knows the loser only; both winners come from their fills
    with closedPnl 0, so their capacity is 0 and nothing can carry B = 2·1 + 1·2 = 4. ETH
    trades at 100 before the first horizon: production takes 2 from each."""
    eng = Engine("hyperliquid", 5000, (1000, 2000), Ledger())
    eng.apply(AccountSnapshot("hyperliquid", VAULT, -50.0, (PositionSnapshot("ETH", 3.0, 100.0, 100.0),), 0))
    eng.apply(_adl("0xa", "ETH", BUY, 101.0, 2.0, -2.0, 100.0))
    eng.apply(_adl("0xb", "ETH", BUY, 102.0, 1.0, -1.0, 100.0))
    eng.apply(_trade(100.0, 1500))
    (wave,) = eng.finish()
    return wave


def test_when_known_capacity_cannot_carry_b_the_optimum_is_unknown_not_zero():
    wave = _unknown_capacity_wave()
    assert wave.needed_usd == pytest.approx(4.0)
    c = Counterfactual(CounterfactualConfig(mechanisms=ALL_MECHANISMS)).report(wave)["counterfactual"]
    opt = c["optimal"]
    assert opt["status"] == "unknown" and opt["total_usd"] is None
    assert opt["known_capacity_usd"] == 0.0 and opt["winners_without_capacity"] == 2
    assert "known capacity $0.00 cannot carry B = $4.00" in opt["reason"]
    assert "2 of 2 winners have no known capacity" in opt["reason"]
    assert c["excess_vs_optimal_usd"] == {"1000": None, "2000": None}
    # no mechanism takes from a zero capacity, contract pro-rata included
    for name in ALL_MECHANISMS:
        assert c["mechanisms"][name]["ex_post"]["total_usd"] == 0.0, name
    prod = c["mechanisms"][PRODUCTION]["ex_post"]
    assert prod["total_usd"] == pytest.approx(4.0)
    assert prod["max_share"] is None and prod["max_share_unbounded_accounts"] == 2


def test_a_feasible_optimum_is_known_and_has_no_reason(reports):
    for rep in reports:
        opt = rep["counterfactual"]["optimal"]
        assert opt["status"] == "known" and opt["reason"] is None
        assert opt["total_usd"] == pytest.approx(rep["needed_usd"], rel=1e-9)


def test_metrics_do_not_export_excess_vs_optimal_for_an_unknown_optimum():
    from adlmon.metrics import Metrics

    m = Metrics(horizons_ms=(1000, 2000), mechanisms=ALL_MECHANISMS, process_collectors=False)
    known = {"venue": "hyperliquid", "wave_id": 1, "production_haircut_usd": {"1000": 9.0, "2000": 9.0},
             "counterfactual": {"optimal_mechanism": OPTIMAL, "excess_vs_optimal_usd": {"1000": 5.0, "2000": 5.0},
                                "mechanisms": {}}}
    m.observe_wave(known)
    cf = Counterfactual(CounterfactualConfig(mechanisms=ALL_MECHANISMS))
    m.observe_wave(cf.report(_unknown_capacity_wave()))
    get = m.registry.get_sample_value
    lab = {"venue": "hyperliquid", "horizon": "1000"}
    assert get("adlmon_adl_excess_vs_optimal_usd_total", lab) == 5.0  # nothing added
    assert math.isnan(get("adlmon_adl_last_wave_excess_vs_optimal_usd", lab))
    share = get("adlmon_adl_last_wave_max_share_ratio", {"venue": "hyperliquid", "mechanism": PRODUCTION})
    assert share == math.inf


def test_risk_based_drains_the_most_levered_winner_first_hand_computed():
    # The two-winner wave above. Account value (the snapshot's) 1000 each; gross leverage
    # a 200/1000, b 100/1000. Gap 5 per contract, so 10/5 = 2 contracts to close.
    # Water-filling: both end at L with (200 − 100 r_a)/1000 = (100 − 100 r_b)/1000 = L and
    # r_a + r_b = 2, so L = 100/2000, r_a = 2 − 10 L = 1.5, r_b = 1 − 10 L = 0.5; haircut 5 r.
    wave = _two_winner_wave()
    c = Counterfactual(CounterfactualConfig(mechanisms=("risk_based",))).report(wave)["counterfactual"]
    rb = c["mechanisms"]["risk_based"]["ex_post"]
    level = 100.0 / 2000.0
    r_a, r_b = 2 - 10 * level, 1 - 10 * level
    assert rb["contracts"] == pytest.approx(2.0)
    assert rb["total_usd"] == pytest.approx(10.0)
    assert rb["max_share"] == pytest.approx(max(5 * r_a / 100.0, 5 * r_b / 20.0))
    assert rb["accounts_touched"] == 2


def test_risk_based_is_in_every_wave_report_and_the_scorecard(reports):
    from adlmon.scorecard import row_from_report
    feasible = 0
    for rep in reports:
        rb = rep["counterfactual"]["mechanisms"]["risk_based"]["ex_post"]
        # contracts × gap = B where the winners with capacity hold enough contracts; like
        # every rule it takes nothing from an account without capacity (issue 8).
        assert rb["total_usd"] <= rep["needed_usd"] * (1 + 1e-9)
        if rb["feasible"]:
            assert rb["total_usd"] == pytest.approx(rep["needed_usd"], rel=1e-9)
            feasible += 1
        assert row_from_report(rep)["policies"]["risk_based"]["total_usd"] == rb["total_usd"]
    assert feasible, "no wave where risk-based ADL could carry B: the equality is never checked"
