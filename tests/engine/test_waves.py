"""Wave segmentation and per-wave numbers through the Engine (paper §4.4, DESIGN §4), hand-computed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adlmon.engine.engine import Engine
from adlmon.engine.ledger import Ledger
from adlmon.engine.waves import Wave
from adlmon.events import (
    ADL, BUY, CLOSE, LIQUIDATION, OPEN, OTHER, SELL,
    AccountSnapshot, Fill, Liquidation, PositionSnapshot,
)

V = "hyperliquid"
L = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"  # the loser (HLP Liquidator)
W = "0x" + "a" * 40
X = "0x" + "b" * 40
M = "0x" + "c" * 40  # market maker / anyone
GAP = 5000


def fill(user, coin, side, px, sz, start, t, kind=OPEN, pnl=0.0, liq=None, d=""):
    return Fill(V, coin, user, side, px, sz, t, start, kind, pnl, 0.0, t, "0x", liq, d)


def adl(user, coin, side, px, sz, start, t, mark, loser=L, pnl=0.0):
    return fill(user, coin, side, px, sz, start, t, ADL, pnl, Liquidation(loser, mark, "backstop"),
                "Auto-Deleveraging")


def run(events, horizons=(0,), gap=GAP, ledger=None, finish=True):
    eng = Engine(V, gap, horizons, ledger)
    waves = []
    for e in events:
        waves += eng.apply(e)
    if finish:
        waves += eng.finish()
    return waves, eng


def test_a_gap_of_exactly_gap_ms_stays_in_the_wave():
    waves, _ = run([adl(W, "ETH", BUY, 101.0, 1.0, -1.0, 1000, 100.0),
                    adl(X, "ETH", BUY, 101.0, 1.0, -1.0, 1000 + GAP, 100.0)])
    assert len(waves) == 1
    assert (waves[0].t_start_ms, waves[0].t_end_ms, waves[0].adl_fills) == (1000, 1000 + GAP, 2)


def test_a_gap_of_gap_ms_plus_one_starts_a_new_wave():
    waves, _ = run([adl(W, "ETH", BUY, 101.0, 1.0, -1.0, 1000, 100.0),
                    adl(X, "ETH", BUY, 101.0, 1.0, -1.0, 1001 + GAP, 100.0)])
    assert [(w.wave_id, w.t_start_ms, w.closed_by) for w in waves] == [
        (1, 1000, "gap"), (2, 1001 + GAP, "input_ended")]


def test_two_coins_in_one_wave():
    waves, _ = run([
        adl(W, "ETH", BUY, 101.0, 2.0, -2.0, 1000, 100.0),   # needed |100 − 101|·2 = 2
        adl(X, "BTC", SELL, 49.0, 1.0, 1.0, 1500, 50.0),     # needed |50 − 49|·1 = 1
    ])
    (w,) = waves
    assert w.coins == ("BTC", "ETH")
    assert w.needed_usd == pytest.approx(3.0)
    assert w.notional_usd == pytest.approx(2 * 101.0 + 49.0)
    assert (w.accounts, w.losers, w.adl_fills) == (2, 1, 2)
    assert set(w.eligible) == {"BTC", "ETH"}


def test_a_winner_closed_partly_in_two_fills_is_netted_per_user():
    # A long 10 ETH closed 4 @ 100 then 3 @ 104; B closes 1 @ 103; the mark at
    # t_end + 1000 = 3000 is 102 (a trade at 2500). Per user, s = +1 (longs):
    # A: 4·(102 − 100) + 3·(102 − 104) = 2; B: 1·(102 − 103) = −1 -> 0. H = 2.
    events = [
        fill(W, "ETH", BUY, 90.0, 10.0, 0.0, 100),
        fill(X, "ETH", BUY, 90.0, 1.0, 0.0, 100),
        adl(W, "ETH", SELL, 100.0, 4.0, 10.0, 1000, 99.0),
        adl(X, "ETH", SELL, 103.0, 1.0, 1.0, 1500, 102.0),
        adl(W, "ETH", SELL, 104.0, 3.0, 6.0, 2000, 103.0),
        fill(M, "ETH", BUY, 102.0, 1.0, 0.0, 2500),
        fill(M, "ETH", BUY, 95.0, 1.0, 1.0, 3001),
    ]
    waves, eng = run(events, horizons=(1000,))
    (w,) = waves
    assert w.production_haircut_usd[1000] == pytest.approx(2.0)
    assert w.horizon_status[1000] == "reached"
    assert w.needed_usd == pytest.approx(4 * 1.0 + 1 * 1.0 + 3 * 1.0)
    assert w.excess_haircut_usd[1000] == pytest.approx(2.0 - 8.0)
    assert w.excess_haircut_positive_usd[1000] == 0.0
    assert eng.ledger.position(W, "ETH") == pytest.approx((3.0, 90.0))
    assert list(w.fills.closed_sign) == [1.0, 1.0, 1.0]


def test_horizon_marks_are_at_or_before_t_end_plus_delta():
    # A short closed at 100 (s = −1): H = px − M. Trades: 98 @ 1400, 90 @ 1600, 95 @ 2100.
    events = [
        adl(W, "ETH", BUY, 100.0, 1.0, -1.0, 1000, 99.0),
        fill(M, "ETH", BUY, 98.0, 1.0, 0.0, 1400),
        fill(M, "ETH", BUY, 90.0, 1.0, 1.0, 1600),
        fill(M, "ETH", BUY, 95.0, 1.0, 2.0, 2100),
    ]
    waves, _ = run(events, horizons=(0, 500, 1000, 5000))
    (w,) = waves
    assert w.production_haircut_usd == pytest.approx({0: 0.0, 500: 2.0, 1000: 10.0, 5000: 5.0})
    assert w.horizon_status == {0: "reached", 500: "reached", 1000: "reached", 5000: "input_ended"}
    assert w.closed_by == "input_ended"


def test_a_horizon_with_no_later_mark_is_reported_as_input_ended():
    waves, _ = run([adl(W, "ETH", BUY, 100.0, 2.0, -2.0, 1000, 99.0)], horizons=(0, 2000))
    (w,) = waves
    assert w.horizon_status == {0: "input_ended", 2000: "input_ended"}
    assert w.production_haircut_usd == {0: 0.0, 2000: 0.0}  # the last mark is the ADL price itself
    d = w.to_dict()
    assert d["horizon_status"] == {"0": "input_ended", "2000": "input_ended"}


def deficit_scenario():
    """L: snapshot av 100, ETH long 10 @ 110 (mark 100) -> cash 200. W short 5 @ 120, X short 3 @ 120."""
    snaps = [
        AccountSnapshot(V, L, 100.0, (PositionSnapshot("ETH", 10.0, 110.0, 100.0),), 0),
        AccountSnapshot(V, W, 1000.0, (PositionSnapshot("ETH", -5.0, 120.0, 100.0),), 0),
        AccountSnapshot(V, X, 1000.0, (PositionSnapshot("ETH", -3.0, 120.0, 100.0),), 0),
        AccountSnapshot(V, M, 5000.0, (PositionSnapshot("ETH", 2.0, 90.0, 100.0),), 0),
    ]
    liq = lambda mark: Liquidation(L, mark, "backstop")  # noqa: E731
    events = snaps + [
        fill(M, "ETH", SELL, 85.0, 1.0, 2.0, 500, CLOSE),              # L: 200 + 10·(85 − 110) = −50
        adl(W, "ETH", BUY, 86.0, 4.0, -5.0, 1000, 85.0, pnl=136.0),
        fill(L, "ETH", SELL, 86.0, 4.0, 10.0, 1000, LIQUIDATION, -96.0, liq(85.0), "Liquidated Cross Long"),
        fill(M, "ETH", SELL, 80.0, 1.0, 1.0, 1050, CLOSE),             # L: 104 + 6·(80 − 110) = −76
        adl(W, "ETH", BUY, 81.0, 1.0, -1.0, 1100, 80.0, pnl=39.0),
        fill(L, "ETH", SELL, 81.0, 1.0, 6.0, 1100, LIQUIDATION, -29.0, liq(80.0), "Liquidated Cross Long"),
        # L after: 75 + 5·(81 − 110) = −70; second wave after the gap
        adl(X, "ETH", BUY, 82.0, 1.0, -3.0, 20000, 81.0, pnl=38.0),
        fill(L, "ETH", SELL, 82.0, 1.0, 5.0, 20000, LIQUIDATION, -28.0, liq(81.0), "Liquidated Cross Long"),
    ]
    return events


def test_deficit_is_the_min_loser_equity_before_each_block_and_its_increment():
    waves, eng = run(deficit_scenario(), horizons=(0,))
    w1, w2 = waves
    assert w1.deficit_source == "ledger"
    assert w1.loser_min_equity == {L: pytest.approx(-76.0)}
    assert w1.deficit_usd == pytest.approx(76.0)
    assert w1.deficit_increment_usd == pytest.approx(76.0)
    assert w1.needed_usd == pytest.approx(4 * 1.0 + 1 * 1.0)
    assert w1.theta_needed == pytest.approx(5.0 / 76.0)
    # H(0): mark at t_end = 81 (the last ADL price): W: −[4·(81 − 86) + 1·(81 − 81)] = 20
    assert w1.production_haircut_usd[0] == pytest.approx(20.0)
    assert w1.theta_prod == pytest.approx(20.0 / 76.0)
    # the same hole, smaller, is re-counted in the stock but adds no increment
    assert w2.deficit_usd == pytest.approx(70.0)
    assert w2.deficit_increment_usd == 0.0
    assert eng.stats["liquidation_fills"] == 3 and eng.stats["divergences"] == 0


def test_eligible_winners_are_captured_before_the_adl_fills():
    waves, _ = run(deficit_scenario(), horizons=(0,))
    view = waves[0].eligible["ETH"]
    assert view.sign == -1
    by_user = dict(zip(view.users, view.size))
    assert by_user == {W: -5.0, X: -3.0}  # W before its ADL; longs (L, M) excluded
    i = view.users.index(W)
    # W's equity at mark 85 before the block: cash 1000 − (−5)(100 − 120) = 900; uPnL −5·(85 − 120)
    assert view.upnl[i] == pytest.approx(175.0)
    assert view.equity[i] == pytest.approx(900.0 + 175.0)


def test_a_loser_the_ledger_does_not_know_gives_no_deficit():
    waves, _ = run([adl(W, "ETH", BUY, 101.0, 1.0, -1.0, 1000, 100.0)])
    (w,) = waves
    assert (w.deficit_usd, w.deficit_increment_usd, w.deficit_source) == (None, None, "unknown")
    assert w.theta_needed is None and w.theta_prod is None


def test_counterparty_fill_carrying_liquidation_is_not_a_liquidation():
    liq = Liquidation(L, 72.149, "market")
    events = [
        fill(L, "SOL", SELL, 72.0, 1.0, 1.0, 1000, LIQUIDATION, liq=liq, d="Liquidated Cross Long"),
        fill(M, "SOL", BUY, 72.0, 1.0, 0.0, 1000, OPEN, liq=liq, d="Open Long"),
        fill(M, "SOL", BUY, 72.0, 1.0, 1.0, 1001, OTHER, d="Something New"),
    ]
    waves, eng = run(events)
    assert waves == []
    assert (eng.stats["liquidation_fills"], eng.stats["adl_fills"], eng.stats["unknown_dir"]) == (1, 0, 1)
    assert eng.stats["fills"] == 3


def test_live_tick_closes_a_quiet_wave_and_reaches_horizons_by_clock():
    eng = Engine(V, GAP, (0, 10000))
    assert eng.apply(adl(W, "ETH", BUY, 101.0, 1.0, -1.0, 1000, 100.0)) == []
    assert eng.tick(1000 + GAP) == []
    assert eng.tick(1001 + GAP) == []  # closed, but the 10 s horizon is not reached yet
    (w,) = eng.tick(11001)
    assert w.closed_by == "clock"
    assert w.horizon_status == {0: "reached", 10000: "reached"}
    assert eng.finish() == []


def test_report_has_the_contract_fields_with_string_horizon_keys():
    waves, _ = run(deficit_scenario(), horizons=(0, 500))
    d = waves[0].to_dict()
    assert set(d) == {
        "venue", "wave_id", "t_start_ms", "t_end_ms", "adl_fills", "accounts", "losers", "coins",
        "notional_usd", "closed_pnl_usd", "needed_usd", "needed_complete", "needed_missing_mark_fills",
        "deficit_usd", "deficit_increment_usd",
        "deficit_source", "production_haircut_usd", "excess_haircut_usd",
        "excess_haircut_positive_usd", "horizon_status", "theta_needed", "theta_prod", "closed_by",
        "paper_counted"}
    assert set(d["production_haircut_usd"]) == {"0", "500"}
    assert d["coins"] == ["ETH"] and d["closed_pnl_usd"] == pytest.approx(175.0)


def test_wave_carries_fill_arrays_for_the_counterfactual():
    waves, _ = run(deficit_scenario())
    f = waves[0].fills
    assert f.user == (W, W) and f.coin == ("ETH", "ETH") and f.side == (BUY, BUY)
    assert isinstance(f.px, np.ndarray) and list(f.px) == [86.0, 81.0]
    assert list(f.mark_px) == [85.0, 80.0] and list(f.start_position) == [-5.0, -1.0]
    assert f.liquidated_user == (L, L) and list(f.closed_sign) == [-1.0, -1.0]


def test_adl_fill_without_liquidation_object_makes_the_deficit_unknown():
    f = fill(W, "ETH", BUY, 101.0, 1.0, -1.0, 1000, ADL, d="Auto-Deleveraging")
    (w,) = run([f], ledger=Ledger(new_accounts_empty=True))[0]
    assert w.deficit_source == "unknown" and w.needed_usd == 0.0 and w.losers == 0
    assert not math.isnan(w.notional_usd)


def test_wave_is_immutable():
    (w,) = run([adl(W, "ETH", BUY, 101.0, 1.0, -1.0, 1000, 100.0)])[0]
    assert isinstance(w, Wave)
    with pytest.raises(AttributeError):
        w.needed_usd = 0.0  # type: ignore[misc]


def test_adl_block_arriving_after_the_clock_passed_its_time_brings_its_coin_into_the_horizons():
    # Live: the clock reaches t_end (horizon 0 captured), then a late block at the same time
    # adds a coin the wave had not seen; the horizon marks must cover it.
    from adlmon.engine.engine import Engine
    from adlmon.engine.ledger import Ledger
    from adlmon.events import ADL, BUY, AccountSnapshot, Fill, Liquidation

    vault = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"

    def adl(user, coin, t, tid):
        return Fill("hyperliquid", coin, user, BUY, 105.0, 1.0, t, -1.0, ADL, 0.0, 0.0, tid, "h",
                    Liquidation(vault, 100.0, "backstop"), "Auto-Deleveraging")

    eng = Engine("hyperliquid", 5000, (0,), Ledger())
    eng.apply(AccountSnapshot("hyperliquid", vault, -10.0, (), 0))
    eng.apply(adl("0xa", "BTC", 1000, 1))
    eng.tick(1500)  # horizon 0 of the open wave captured (BTC only)
    eng.apply(adl("0xb", "ETH", 1000, 2))  # late block of the same time, a new coin
    (wave,) = eng.finish()
    assert set(wave.horizon_marks[0]) == {"BTC", "ETH"}
    assert wave.adl_fills == 2 and wave.needed_usd == 10.0


# ----------------------------------------------------------------------------- paper_counted

def test_paper_counted_is_deficit_above_zero_and_unknown_stays_unknown():
    # Wave 1: L underwater (D 50: equity −50 before its one ADL block). Wave 2 (t = 40000): S is
    # solvent before its block (equity 1000 + 1·(100 − 100) = 1000 -> D = 0): the
    # paper's pipeline drops it. Wave 3 (t = 80000): the loser U is unknown -> D unknown.
    S, U = "0x" + "d" * 40, "0x" + "e" * 40
    events = deficit_scenario()[:7] + [
        AccountSnapshot(V, S, 1000.0, (PositionSnapshot("ETH", 1.0, 100.0, 100.0),), 1200),
        adl(X, "ETH", BUY, 101.0, 1.0, -3.0, 40000, 100.0, loser=S),
        adl(X, "ETH", BUY, 101.0, 1.0, -2.0, 80000, 100.0, loser=U),
    ]
    waves, _ = run(events, horizons=(0, 500))
    assert [w.deficit_usd for w in waves] == [pytest.approx(50.0), 0.0, None]
    assert [w.paper_counted for w in waves] == [True, False, None]
    assert [w.to_dict()["paper_counted"] for w in waves] == [True, False, None]


def test_paper_counted_totals_take_only_counted_waves_and_sum_stocks_as_the_paper():
    from adlmon.engine.waves import paper_counted_totals

    S = "0x" + "d" * 40
    events = deficit_scenario() + [
        AccountSnapshot(V, S, 1000.0, (PositionSnapshot("ETH", 1.0, 100.0, 100.0),), 20500),
        adl(W, "ETH", BUY, 103.0, 1.0, -1.0, 40000, 100.0, loser=S),
    ]
    waves, _ = run(events, horizons=(0,))
    assert [w.paper_counted for w in waves] == [True, True, False]
    t = paper_counted_totals(waves, (0,))
    # waves 1 and 2 of the scenario: D stocks 76 + 70 (one hole re-counted), increments 76 + 0,
    # needed 5 + |81 − 82|·1 = 6; wave 3 (needed 3) is dropped.
    assert (t["waves"], t["waves_dropped"], t["waves_unknown"]) == (2, 1, 0)
    assert t["adl_fills"] == 3
    assert t["needed_usd"] == pytest.approx(6.0)
    assert t["deficit_stock_sum_usd"] == pytest.approx(146.0)
    assert t["deficit_increment_usd"] == pytest.approx(76.0)
    assert t["production_haircut_usd"]["0"] == pytest.approx(
        waves[0].production_haircut_usd[0] + waves[1].production_haircut_usd[0])


def test_adl_fills_without_mark_px_are_kept_counted_and_mark_b_incomplete():
    """Two ADL fills of one wave lack markPx (a liquidation object without it, and none at
    all): B is the other fill's term, the wave says so, the fills still move positions,
    and the engine counts them for adlmon_engine_anomalies_total{kind="missing_mark_px"}."""
    from adlmon.metrics import Metrics

    snaps = deficit_scenario()[:4]
    no_mark = Liquidation(L, float("nan"), "backstop")
    events = snaps + [
        adl(W, "ETH", BUY, 86.0, 2.0, -5.0, 1000, 85.0),
        fill(W, "ETH", BUY, 86.0, 1.0, -3.0, 1000, ADL, 0.0, no_mark, "Auto-Deleveraging"),
        fill(X, "ETH", BUY, 86.0, 1.0, -3.0, 1000, ADL, 0.0, None, "Auto-Deleveraging"),
        fill(L, "ETH", SELL, 86.0, 4.0, 10.0, 1000, LIQUIDATION, -96.0, no_mark,
             "Liquidated Cross Long"),
    ]
    (w,), eng = run(events)
    assert w.needed_usd == pytest.approx(2.0 * 1.0)
    d = w.to_dict()
    assert d["needed_complete"] is False and d["needed_missing_mark_fills"] == 2
    assert eng.stats["missing_mark_px"] == 3  # two ADL fills and the loser's liquidation fill
    assert eng.ledger.position(W, "ETH")[0] == pytest.approx(-2.0)  # -5 + 2 + 1: all applied
    assert eng.ledger.position(X, "ETH")[0] == pytest.approx(-2.0)
    assert eng.ledger.position(L, "ETH")[0] == pytest.approx(6.0)
    m = Metrics(horizons_ms=(0,), mechanisms=(), process_collectors=False)
    m.observe_engine_stats(V, eng.stats)
    assert m.registry.get_sample_value(
        "adlmon_engine_anomalies_total", {"venue": V, "kind": "missing_mark_px"}) == 3


def test_wave_with_every_mark_px_is_complete():
    (w1, _w2), _ = run(deficit_scenario())
    assert w1.to_dict()["needed_complete"] is True and w1.needed_missing_mark_fills == 0


def test_replay_totals_sum_deficit_increments_and_give_the_largest_stock():
    """One hole across two waves (stocks 76 then 70, increments 76 then 0): the totals say
    76 once, not 146, and label what they are."""
    from adlmon import replay

    waves, eng = run(deficit_scenario())
    totals = replay._totals(waves, (0,), eng.stats, {}, GAP)
    assert "deficit_usd" not in totals  # the sum of stocks means nothing
    assert totals["deficit_increment_usd"] == pytest.approx(76.0)
    assert totals["deficit_stock_max_usd"] == pytest.approx(76.0)
    assert totals["deficit_stock_max_wave"] == 1
    text = replay.format_table(waves, totals)
    assert "new holes (Σ increments) $76.00" in text and "largest stock $76.00 (wave 1)" in text
    assert "146" not in text
