"""Fake Bybit, OKX and Binance on 127.0.0.1 with the venues' real collectors (issue 11
acceptance 2): the scripted drawdown and alert sequences give exactly the transitions,
drawdowns and shortfall estimates the rules give (hand-computed below), under faults
(a dropped socket, a malformed frame), and the capture replayed gives the same."""

import pytest

from adlmon.events import FeedGap, LiquidationOrder
from adlmon.venues.binance import fake as bnf
from adlmon.venues.bybit import fake as byf
from adlmon.venues.okx import fake as okf

from .live import replay, run_live


def gauge(metrics, name, **labels):
    return metrics.registry.get_sample_value(name, labels)

FAST = dict(insurance_poll_interval_s=0.05, ping_interval_s=0.3, liveness_timeout_s=2.0,
            backoff_initial_s=0.01, backoff_max_s=0.05, quarantine_path="")


def _same_replay(name, cfg, cap, tracker, events):
    again, replayed, errors = replay(name, cfg, cap)
    assert again.signals == tracker.signals
    assert again.warnings == tracker.warnings
    assert [(e.pool, e.balance_usd, e.max_8h_usd, e.losses_8h_usd, e.shortfall_usd) for e in again.estimates()] \
        == [(e.pool, e.balance_usd, e.max_8h_usd, e.losses_8h_usd, e.shortfall_usd) for e in tracker.estimates()]
    assert [e for e in replayed] == [e for e in events if not isinstance(e, FeedGap)]
    return errors


async def test_bybit_live_transitions_estimates_and_replay(tmp_path):
    fake = await byf.FakeBybit().start()
    t0 = byf.T0
    try:
        tracker, events, metrics, cap, status, cfg = await run_live(
            "bybit", fake, byf.scenario(t0), tmp_path,
            done=lambda ev: any(getattr(e, "time_ms", 0) == t0 + 7000 for e in ev),
            symbols=("ZORAUSDT",), inverse=False, adl_alert_poll_interval_s=0.05, **FAST)
    finally:
        await fake.stop()
    assert tracker.signals == [
        {"venue": "bybit", "scope": "ZORAUSDT", "armed": True, "t_ms": t0 + 3000, "reason": "b > adl_tt and pr < i_pr"},
        {"venue": "bybit", "scope": "ZORAUSDT", "armed": False, "t_ms": t0 + 5000, "reason": "pr > adl_sr"},
        {"venue": "bybit", "scope": "FWOGUSDT", "armed": True, "t_ms": t0 + 6000, "reason": "b <= 0"},
        {"venue": "bybit", "scope": "FWOGUSDT", "armed": False, "t_ms": t0 + 7000, "reason": "b > 0"},
    ]
    (est,) = tracker.estimates()
    # pool 20000 -> 15000: drawdown 0.25; a long liquidated at bk 0.12 with mark 0.1, 100000 coins
    assert (est.pool, est.max_8h_usd, est.balance_usd, est.drawdown_ratio) == ("USDT:ZORAUSDT", 20000.0, 15000.0, 0.25)
    assert (est.losses_8h_usd, est.projected_usd, est.shortfall_usd) == (pytest.approx(2000.0), pytest.approx(13000.0), 0.0)
    assert [(w["scope"], w["level"], w["t_ms"]) for w in tracker.warnings if w["scope"].startswith("pool:")] \
        == [("pool:USDT:ZORAUSDT", "warning", t0 + 2500)]
    assert any(isinstance(e, FeedGap) for e in events)  # the dropped socket
    linear = status["bybit.linear"]["session"]
    assert linear["reconnects"].get("abnormal_1006", 0) >= 1
    assert status["bybit.linear"]["parse_errors"] == {"unknown": 1}  # the garbage frame, counted
    assert fake.rest_requests and all(r.startswith("/v5/market/") for r in fake.rest_requests)
    by = {"venue": "bybit"}
    for scope in ("ZORAUSDT", "FWOGUSDT"):
        assert gauge(metrics, "adlmon_adl_armed", **by, scope=scope) == 0  # both armed once, now off
    assert gauge(metrics, "adlmon_adl_transitions_total", **by, level="armed") == 2
    pool = {"venue": "bybit", "pool": "USDT:ZORAUSDT"}
    assert gauge(metrics, "adlmon_insurance_fund_drawdown_ratio", **pool) == 0.25
    assert gauge(metrics, "adlmon_insurance_fund_losses_usd", **pool) == pytest.approx(2000.0)
    assert gauge(metrics, "adlmon_insurance_fund_shortfall_usd", **pool) == 0.0
    assert gauge(metrics, "adlmon_adl_warning", **by, scope="pool:USDT:ZORAUSDT") == 1
    assert gauge(metrics, "adlmon_liquidations_total", **by) == 1
    assert _same_replay("bybit", cfg, cap, tracker, events) == 1


async def test_okx_live_current_shape_silence_is_normal_and_replay(tmp_path):
    fake = await okf.FakeOkx().start()
    t0 = okf.T0
    try:
        tracker, events, metrics, cap, status, cfg = await run_live(
            "okx", fake, okf.scenario(t0), tmp_path,
            done=lambda ev: any(getattr(e, "time_ms", 0) == t0 + 19001 for e in ev),
            families=("BTC-USDT",), mark_symbols=("BTC-USDT-SWAP",), instruments_poll_interval_s=60.0,
            **FAST)
    finally:
        await fake.stop()
    assert [(s["scope"], s["armed"], s["t_ms"]) for s in tracker.signals] == [
        ("BTC-USDT", True, t0 + 2000), ("BTC-USDT", False, t0 + 3000),
        ("BTC-USDT", True, t0 + 4000), ("BTC-USDT", False, t0 + 19000)]
    assert tracker.signals[-1]["reason"] == "silent for 15000 ms"
    (est,) = tracker.estimates()
    # max 1000000 (REST), live bal 500000 at t0+4000, then bkLoss 600000: projected -100000
    assert (est.max_8h_usd, est.balance_usd, est.drawdown_ratio) == (1000000.0, 500000.0, 0.5)
    assert (est.losses_8h_usd, est.projected_usd, est.shortfall_usd) == (600000.0, -100000.0, 100000.0)
    (liq,) = [e for e in events if isinstance(e, LiquidationOrder)]
    assert liq.qty == pytest.approx(3.0)  # 300 contracts x ctVal 0.01
    sess = status["okx.public"]["session"]
    assert status["okx.public"]["parse_errors"] == {"adl-warning": 1}  # the fault frame, counted
    ok, pool = {"venue": "okx"}, {"venue": "okx", "pool": "BTC-USDT"}
    assert gauge(metrics, "adlmon_adl_armed", **ok, scope="BTC-USDT") == 0
    assert gauge(metrics, "adlmon_adl_warning", **ok, scope="BTC-USDT") == 0  # normal after the silence
    assert gauge(metrics, "adlmon_insurance_fund_drawdown_ratio", **pool) == 0.5
    assert gauge(metrics, "adlmon_insurance_fund_shortfall_usd", **pool) == 100000.0
    assert gauge(metrics, "adlmon_adl_warning", **ok, scope="pool:BTC-USDT") == 1
    assert _same_replay("okx", cfg, cap, tracker, events) == 1


async def test_binance_live_warning_never_armed_estimates_and_replay(tmp_path):
    fake = await bnf.FakeBinance(ping_every_s=0.2, pong_timeout_s=1.0).start()
    t0, H = bnf.T0, bnf.H
    try:
        tracker, events, metrics, cap, status, cfg = await run_live(
            "binance", fake, bnf.scenario(t0), tmp_path,
            done=lambda ev: any(getattr(e, "time_ms", 0) == t0 + 2 * H and getattr(e, "state", "") == "medium"
                                for e in ev),
            adl_risk_poll_interval_s=0.05, **FAST)
    finally:
        await fake.stop()
    assert tracker.signals == []  # Binance never arms
    assert [(w["scope"], w["level"], w["t_ms"]) for w in tracker.warnings] == [
        ("ETHUSDT", "warning", t0 + H), ("pool:USDT:BTCUSDT", "warning", t0 + 2 * H),
        ("ETHUSDT", "normal", t0 + 2 * H)]
    (est,) = tracker.estimates()
    assert (est.max_8h_usd, est.balance_usd, est.drawdown_ratio) == (1000.0, 750.0, 0.25)
    assert (est.losses_8h_usd, est.shortfall_usd) == (50.0, 0.0)  # 1 ETH at 3950 against bk 4000
    assert fake.closed_no_pong == 0
    assert status["binance.market"]["parse_errors"] == {"unknown": 1}
    bn, pool = {"venue": "binance"}, {"venue": "binance", "pool": "USDT:BTCUSDT"}
    assert gauge(metrics, "adlmon_adl_armed", **bn, scope="ETHUSDT") == 0  # warned once: a series, never 1
    assert gauge(metrics, "adlmon_adl_warning", **bn, scope="ETHUSDT") == 0
    assert gauge(metrics, "adlmon_insurance_fund_drawdown_ratio", **pool) == 0.25
    assert gauge(metrics, "adlmon_insurance_fund_losses_usd", **pool) == 50.0
    assert gauge(metrics, "adlmon_liquidations_total", **bn) == 2
    assert gauge(metrics, "adlmon_liquidation_notional_usd_total", **bn) == 4000.0 + 100000.0
    assert _same_replay("binance", cfg, cap, tracker, events) == 1
