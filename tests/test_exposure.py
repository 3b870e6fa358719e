"""The exposure queue and what-if (adlmon/exposure.py) on a hand-made snapshot.

ETH mark 100. Longs (size @ entry, account value) and their hand-computed index
(mark/entry)·(notional/account value):
  0xd  4 @ 100, AV  100: notional  400, uPnL    0, index 1.0·4.0  = 4
  0xb  5 @  50, AV  500: notional  500, uPnL  250, index 2.0·1.0  = 2
  0xa 10 @  80, AV 2000: notional 1000, uPnL  200, index 1.25·0.5 = 0.625
  0xc 20 @ 125, AV 4000: notional 2000, uPnL −500, index 0.8·0.5  = 0.4
  0xe  2 @  90, AV  −10: bankrupt, ranked last
One short (0xs, 3 @ 110, AV 1000: index (110/100)·(300/1000) = 0.33) is on the other side.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from adlmon.config import CounterfactualConfig
from adlmon.engine.ledger import Ledger
from adlmon.events import AccountSnapshot, Mark, PositionSnapshot
from adlmon.exposure import account_report, build_queue, exposure_report, queue_order, queues_of

V = "hyperliquid"
BOOK = {  # user: (size, entry, account value)
    "0xa": (10.0, 80.0, 2000.0),
    "0xb": (5.0, 50.0, 500.0),
    "0xc": (20.0, 125.0, 4000.0),
    "0xd": (4.0, 100.0, 100.0),
    "0xe": (2.0, 90.0, -10.0),
    "0xs": (-3.0, 110.0, 1000.0),
}


def hand_ledger() -> Ledger:
    led = Ledger()
    for user, (size, entry, av) in BOOK.items():
        led.apply(AccountSnapshot(V, user, av, (PositionSnapshot("ETH", size, entry, 100.0),), 0))
    led.apply(Mark(V, "ETH", 100.0, 100.0, 1))
    return led


@pytest.fixture()
def longs():
    return build_queue(hand_ledger().holders("ETH", 1), queue_order(V), "long")


def test_every_long_position_is_ranked_by_the_documented_index(longs):
    assert longs.users == ("0xd", "0xb", "0xa", "0xc", "0xe")
    np.testing.assert_allclose(longs.score[:4], [4.0, 2.0, 0.625, 0.4])
    assert longs.score[4] == -math.inf
    np.testing.assert_allclose(longs.notional_usd, [400, 500, 1000, 2000, 200])
    np.testing.assert_allclose(longs.upnl_usd, [0, 250, 200, -500, 20])
    np.testing.assert_allclose(longs.capacity_usd, [0, 250, 200, 0, 20])
    np.testing.assert_allclose(longs.equity_usd, [100, 500, 2000, 4000, -10])
    np.testing.assert_allclose(longs.leverage[:4], [4.0, 1.0, 0.5, 0.5])
    assert longs.leverage[4] == math.inf


def test_shorts_rank_by_entry_over_mark():
    shorts = build_queue(hand_ledger().holders("ETH", -1), queue_order(V), "short")
    assert shorts.users == ("0xs",)
    np.testing.assert_allclose(shorts.score, [1.1 * 0.3])


def test_greedy_prefix_and_contract_view_hand_computed(longs):
    cfg = CounterfactualConfig(mechanisms=("pro_rata", "capped_pro_rata", "queue_hyperliquid"))
    rep = exposure_report(longs, venue=V, at_ms=None, shortfall_usd=300.0, cfg=cfg,
                          gap_per_contract=10.0)
    rows = {r["user"]: r for r in rep["accounts"]}
    # Greedy prefix of capacities 0, 250, 200, 0, 20 in queue order: 0, 250, 50, 0, 0.
    assert [r["production_take_usd"] for r in rep["accounts"]] == pytest.approx([0, 250, 50, 0, 0])
    # Contract view: 300/10 = 30 contracts, whole positions in order: 4, 5, 10, then 11 of 20.
    cv = [r["contract_view"] for r in rep["accounts"]]
    assert [c["contracts_closed"] for c in cv] == pytest.approx([4, 5, 10, 11, 0])
    assert [c["loss_usd"] for c in cv] == pytest.approx([40, 50, 100, 110, 0])
    assert [c["beyond_pnl_usd"] for c in cv] == pytest.approx([40, 0, 0, 110, 0])
    # Pro-rata over u: 300·u/470. Capped pro-rata: 0xe's cap is min(u, equity)+ = 0, so
    # 0xb and 0xa share 300 at one level 300/450.
    assert rows["0xb"]["take_usd"]["pro_rata"] == pytest.approx(300 * 250 / 470)
    assert rows["0xe"]["take_usd"]["pro_rata"] == pytest.approx(300 * 20 / 470)
    assert rows["0xb"]["take_usd"]["capped_pro_rata"] == pytest.approx(250 * 300 / 450)
    assert rows["0xa"]["take_usd"]["capped_pro_rata"] == pytest.approx(200 * 300 / 450)
    assert rows["0xe"]["take_usd"]["capped_pro_rata"] == pytest.approx(0.0)
    # The wealth queue by the same index is production's greedy prefix.
    assert [r["take_usd"]["queue_hyperliquid"] for r in rep["accounts"]] == pytest.approx([0, 250, 50, 0, 0])
    m = rep["what_if"]["mechanisms"]
    assert m["production"]["max_share"] == pytest.approx(1.0)  # 0xb loses all its PnL
    assert m["production"]["accounts_touched"] == 2
    assert m["production"]["hhi"] == pytest.approx((250 / 300) ** 2 + (50 / 300) ** 2)
    assert m["production_contracts"]["contracts_closed"] == pytest.approx(30)
    assert m["production_contracts"]["beyond_pnl_usd"] == pytest.approx(150)
    assert m["pro_rata"]["max_share"] == pytest.approx(300 / 470)
    assert rep["totals"]["capacity_usd"] == pytest.approx(470)
    assert rep["totals"]["production_take_usd"] == pytest.approx(300)
    json.dumps(rep, allow_nan=False)  # -inf scores and leverages are null, not Infinity
    assert rows["0xe"]["score"] is None and rows["0xe"]["leverage"] is None


def test_risk_based_drains_the_most_levered_long_first(longs):
    cfg = CounterfactualConfig(mechanisms=("risk_based",))
    rep = exposure_report(longs, venue=V, at_ms=None, shortfall_usd=30.0, cfg=cfg,
                          gap_per_contract=10.0)
    take = {r["user"]: r["take_usd"]["risk_based"] for r in rep["accounts"]}
    # 3 contracts: the bankrupt 0xe (infinite leverage) first, 2 contracts; then 0xd (4x) alone
    # drains 1 contract (to 3x, still above everyone else).
    assert take == pytest.approx({"0xd": 10.0, "0xb": 0.0, "0xa": 0.0, "0xc": 0.0, "0xe": 20.0})


def test_shortfall_beyond_capacity_is_reported_uncovered(longs):
    rep = exposure_report(longs, venue=V, at_ms=5, shortfall_usd=1000.0,
                          cfg=CounterfactualConfig(mechanisms=("pro_rata",)), gap_per_contract=10.0)
    assert rep["what_if"]["uncovered_usd"] == pytest.approx(530.0)
    assert rep["totals"]["production_take_usd"] == pytest.approx(470.0)
    assert rep["at_ms"] == 5


def test_account_view_ranks_every_position_with_its_percentile():
    led = hand_ledger()
    led.apply(AccountSnapshot(V, "0xa", 2000.0, (PositionSnapshot("ETH", 10.0, 80.0, 100.0),
                                                 PositionSnapshot("BTC", -1.0, 60000.0, 50000.0)), 2))
    qs = queues_of(led, queue_order(V))
    rows = account_report("0xa", qs)
    assert [(r["coin"], r["side"], r["rank"], r["of"]) for r in rows] == [
        ("BTC", "short", 1, 1), ("ETH", "long", 3, 5)]
    assert rows[1]["percentile"] == pytest.approx(100 * 3 / 5)
    assert account_report("0xnobody", qs) == []


def test_no_queue_for_a_venue_without_a_documented_order():
    with pytest.raises(ValueError, match="no ADL queue order"):
        queue_order("nowhere")


def test_the_generic_module_names_no_venue():
    from pathlib import Path
    src = (Path(__file__).parents[1] / "adlmon" / "exposure.py").read_text().lower()
    assert "hyperliquid" not in src


def test_factor_form_reduces_a_hedged_account_less():
    # 0xd also holds a 3 @ 100 BTC short (mark 100): net notional toward long 400 − 300 = 100,
    # factor leverage 100/100 = 1 instead of 4. 30 USD at gap 10 = 3 contracts: the bankrupt
    # 0xe first (2), then 0xd and 0xb (both at 1x; 0xa and 0xc at 0.5x) drain together to L:
    # (1 − L) + 5(1 − L) = 1, L = 5/6: 0xd 1/6 contract, 0xb 5/6.
    from adlmon.exposure import net_notional
    led = hand_ledger()
    led.apply(AccountSnapshot(V, "0xd", 100.0, (PositionSnapshot("ETH", 4.0, 100.0, 100.0),
                                                PositionSnapshot("BTC", -3.0, 100.0, 100.0)), 2))
    view = led.holders("ETH", 1)
    q = build_queue(view, queue_order(V), "long")
    factor = net_notional(view.users, led.positions, led.marks(), 1)
    assert factor["0xd"] == pytest.approx(100.0) and factor["0xa"] == pytest.approx(1000.0)
    rep = exposure_report(q, venue=V, at_ms=None, shortfall_usd=30.0, gap_per_contract=10.0,
                          cfg=CounterfactualConfig(mechanisms=("risk_based",)), factor_exposure=factor)
    take = {r["user"]: r["take_usd"] for r in rep["accounts"]}
    assert {u: t["risk_based_factor"] for u, t in take.items()} == pytest.approx(
        {"0xd": 10 / 6, "0xb": 50 / 6, "0xa": 0.0, "0xc": 0.0, "0xe": 20.0})
    assert take["0xd"]["risk_based"] == pytest.approx(10.0)  # gross leverage: 0xd drained alone
    assert rep["what_if"]["mechanisms"]["risk_based_factor"]["contracts"] == pytest.approx(3.0)
