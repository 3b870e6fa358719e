"""ADL state rules (issue 11): hand-computed cases, boundaries included."""

import pytest

from adlmon.engine.adlstate import ARMED, NORMAL, WARNING, AdlStateTracker
from adlmon.events import AdlSignal, InsuranceFund, LiquidationOrder, Mark
from adlmon.venues.binance import rules as binance_rules
from adlmon.venues.bybit import rules as bybit_rules
from adlmon.venues.okx import rules as okx_rules


def tracker(**kw):
    return AdlStateTracker({"bybit": bybit_rules.RULE, "okx": okx_rules.rule(15_000),
                            "binance": binance_rules.RULE}, **kw)


def bybit(t, b, pr, tt=10000.0, ipr=-0.3, sr=-0.25, s="ZORAUSDT"):
    return AdlSignal("bybit", s, "alert", t, {"b": b, "pr": pr, "adl_tt": tt, "i_pr": ipr, "adl_sr": sr})


def signals(tr, events):
    tr.apply_all(events)
    return [(s["scope"], s["armed"], s["t_ms"]) for s in tr.signals]


def test_bybit_balance_at_zero_is_armed_until_positive():
    tr = tracker()
    got = signals(tr, [bybit(1, 5.0, 0.0), bybit(2, 0.0, 0.0), bybit(3, -1.0, 0.0),
                       bybit(4, 0.01, 0.0)])
    assert got == [("ZORAUSDT", True, 2), ("ZORAUSDT", False, 4)]
    assert tr.signals[0]["reason"] == bybit_rules.EQUITY


def test_bybit_drawdown_arms_strictly_below_i_pr_and_stops_strictly_above_adl_sr():
    tr = tracker()
    ev = [bybit(1, 20000.0, -0.3),     # pr == i_pr: not armed
          bybit(2, 20000.0, -0.3001),  # pr < i_pr, b > adl_tt: armed
          bybit(3, 20000.0, -0.26),    # between: stays armed (hysteresis)
          bybit(4, 20000.0, -0.25),    # pr == adl_sr: stays armed
          bybit(5, 20000.0, -0.2499),  # pr > adl_sr: off
          bybit(6, 20000.0, -0.26)]    # between, from normal: not armed
    assert signals(tr, ev) == [("ZORAUSDT", True, 2), ("ZORAUSDT", False, 5)]
    assert tr.signals[1]["reason"] == "pr > adl_sr"


def test_bybit_drawdown_needs_balance_above_threshold():
    tr = tracker()
    ev = [bybit(1, 10000.0, -0.5),  # b == adl_tt: rule 1 needs b > adl_tt
          bybit(2, 10000.01, -0.5)]
    assert signals(tr, ev) == [("ZORAUSDT", True, 2)]


def test_bybit_symbols_are_separate_scopes_and_strings_parse_alike():
    tr = tracker()
    ev = [bybit(1, -1.0, 0.0, s="A"), bybit(1, 1.0, 0.0, s="B"), bybit(2, 1.0, 0.0, s="A")]
    assert signals(tr, ev) == [("A", True, 1), ("A", False, 2)]


def okx(t, state, fam="BTC-USDT"):
    return AdlSignal("okx", fam, state, t, {})


def test_okx_adl_is_armed_warning_is_not_and_silence_decays_to_normal():
    tr = tracker()
    ev = [okx(1000, "warning"), okx(2000, "adl"), okx(3000, "adl"), okx(4000, "warning"),
          okx(5000, "adl"),
          Mark("okx", "BTC-USDT-SWAP", 1.0, None, 20000),   # 15 000 ms after 5000: not yet
          Mark("okx", "BTC-USDT-SWAP", 1.0, None, 20001)]   # past: normal at 5000 + 15000
    assert signals(tr, ev) == [("BTC-USDT", True, 2000), ("BTC-USDT", False, 4000),
                               ("BTC-USDT", True, 5000), ("BTC-USDT", False, 20000)]
    levels = [(w["level"], w["t_ms"]) for w in tr.warnings]
    assert levels == [(WARNING, 1000), (ARMED, 2000), (WARNING, 4000), (ARMED, 5000), (NORMAL, 20000)]


def test_okx_old_shape_normal_push_is_normal():
    tr = tracker()
    assert signals(tr, [okx(1, "adl"), okx(2, "normal")]) == [("BTC-USDT", True, 1), ("BTC-USDT", False, 2)]


def test_binance_high_risk_is_a_warning_never_armed():
    tr = tracker()
    tr.apply_all([AdlSignal("binance", "BTCUSDT", r, t) for t, r in
                  enumerate(["low", "high", "medium", "high"])])
    assert tr.signals == []
    assert [(w["level"], w["t_ms"]) for w in tr.warnings] == [(WARNING, 1), (NORMAL, 2), (WARNING, 3)]


H = 3600_000


def test_fund_drawdown_from_trailing_8h_max_and_its_warning():
    tr = tracker(drawdown_warn_ratio=0.2)
    tr.apply(InsuranceFund("binance", "USDT:BTCUSDT", 1000.0, 0, ("BTCUSDT",)))
    tr.apply(InsuranceFund("binance", "USDT:BTCUSDT", 900.0, 1 * H))
    (e,) = tr.estimates()
    assert (e.max_8h_usd, e.drawdown_ratio) == (1000.0, pytest.approx(0.1))
    out = tr.apply(InsuranceFund("binance", "USDT:BTCUSDT", 800.0, 2 * H))  # exactly 0.2: warns
    assert [(t.scope, t.level, t.armed) for t in out] == [("pool:USDT:BTCUSDT", WARNING, False)]
    # 8 h 1 ms after the 1000 reading the window max is 900: drawdown (900-850)/900
    tr.apply(InsuranceFund("binance", "USDT:BTCUSDT", 850.0, 8 * H + 1))
    (e,) = tr.estimates()
    assert e.max_8h_usd == 900.0 and e.drawdown_ratio == pytest.approx(50 / 900)
    assert tr.levels()[("binance", "pool:USDT:BTCUSDT")] == NORMAL
    assert tr.signals == []  # our estimate never arms


def test_bankruptcy_losses_and_shortfall_estimate():
    tr = tracker(drawdown_warn_ratio=0.9)
    tr.apply(InsuranceFund("binance", "USDT:BTCUSDT", 100.0, 1000, ("BTCUSDT", "ETHUSDT")))
    # a long liquidated (sell) filled at 90 against bankruptcy 100, 2 coins: 20 USD
    tr.apply(LiquidationOrder("binance", "ETHUSDT", "sell", 2.0, 100.0, 90.0, 2000))
    # a short liquidated (buy) filled at 50 against bankruptcy 49: 1 coin -> 1 USD
    tr.apply(LiquidationOrder("binance", "BTCUSDT", "buy", 1.0, 49.0, 50.0, 3000))
    # filled better than bankruptcy: no loss
    tr.apply(LiquidationOrder("binance", "BTCUSDT", "buy", 1.0, 51.0, 50.0, 3500))
    (e,) = tr.estimates()
    assert (e.losses_8h_usd, e.projected_usd, e.shortfall_usd) == (21.0, 79.0, 0.0)
    # OKX-style given loss, 90 USD: projected -11 -> shortfall 11 and a warning
    out = tr.apply(LiquidationOrder("binance", "BTCUSDT", "sell", 1.0, 10.0, None, 4000, 90.0))
    (e,) = tr.estimates()
    assert (e.projected_usd, e.shortfall_usd) == (-11.0, 11.0)
    assert [t.level for t in out] == [WARNING] and out[0].reason.startswith("shortfall")
    # a new balance reading books the losses before it
    tr.apply(InsuranceFund("binance", "USDT:BTCUSDT", 5.0, 5000))
    (e,) = tr.estimates()
    assert (e.projected_usd, e.shortfall_usd, e.losses_8h_usd) == (5.0, 0.0, 111.0)


def test_liquidation_without_fill_price_uses_the_last_mark():
    tr = tracker(drawdown_warn_ratio=0.9)
    tr.apply(InsuranceFund("bybit", "USDT:ROSEUSDT", 100.0, 1, ("ROSEUSDT",)))
    tr.apply(Mark("bybit", "ROSEUSDT", 0.04, None, 2))
    tr.apply(LiquidationOrder("bybit", "ROSEUSDT", "sell", 1000.0, 0.045, None, 3))
    assert tr.estimates()[0].losses_8h_usd == pytest.approx(5.0)


def test_unknown_venue_signals_are_counted_not_fatal():
    tr = AdlStateTracker({})
    assert tr.apply(AdlSignal("x", "s", "adl", 1)) == [] and tr.ignored == 1


def test_a_feed_gap_does_not_move_the_venue_clock():
    from adlmon.events import FeedGap
    tr = tracker()
    tr.apply(okx(1000, "adl"))
    tr.apply(FeedGap("okx", "adl-warning", 0, 10**13))  # local time, far ahead
    assert tr.levels()[("okx", "BTC-USDT")] == ARMED
    tr.apply(Mark("okx", "X", 1.0, None, 16_001))
    assert tr.signals[-1] == {"venue": "okx", "scope": "BTC-USDT", "armed": False, "t_ms": 16_000,
                              "reason": "silent for 15000 ms"}
