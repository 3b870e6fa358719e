"""Your own ADL from a fake Bybit user stream (issue 11 "Your own ADL"): the private
socket authenticates with read-only keys, AdlTrade fills become Fill(kind="adl"),
the wave engine makes the same waves live and from the capture, and the key is in
no log, capture or status."""

import logging

import orjson
import pytest

from adlmon.engine.engine import Engine
from adlmon.events import ADL, Fill
from adlmon.venues.bybit import fake as byf
from adlmon.venues.bybit.parse import BybitParser
from adlmon.venues.keys import ApiKeys, load_keys
from adlmon.venues.ownfills import OWN

from .live import replay, run_live

KEY, SECRET = "rk-9f8e7d6c5b4a39281706", "sk-0a1b2c3d4e5f60718293a4b5c6d7e8f9"


async def test_own_adl_fills_make_the_same_waves_live_and_replayed_and_the_key_never_leaks(
        tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("ADLMON_BYBIT_API_KEY", KEY)
    monkeypatch.setenv("ADLMON_BYBIT_API_SECRET", SECRET)
    fake = await byf.FakeBybit(api_key=KEY, api_secret=SECRET).start()
    t0 = byf.T0
    steps = [("preset", ("/v5/market/insurance", byf.rest_insurance(t0, []))),
             ("preset", ("/v5/market/adlAlert", byf.rest_insurance(t0, [])))] + byf.user_scenario(t0)
    try:
        tracker, events, metrics, cap, status, cfg = await run_live(
            "bybit", fake, steps, tmp_path,
            done=lambda ev: sum(isinstance(e, Fill) for e in ev) == 3,
            symbols=("BTCUSDT",), inverse=False, insurance_poll_interval_s=60.0,
            adl_alert_poll_interval_s=60.0, ping_interval_s=0.3, liveness_timeout_s=2.0,
            backoff_initial_s=0.01, backoff_max_s=0.05, quarantine_path="")
    finally:
        await fake.stop()
    fills = [e for e in events if isinstance(e, Fill)]
    assert [(f.kind, f.user, f.side, f.sz, f.start_position, f.liquidation.mark_px) for f in fills] == [
        (ADL, OWN, "sell", 1.0, 2.0, 61000.0), (ADL, OWN, "sell", 0.5, 1.0, 60500.0),
        (ADL, OWN, "sell", 0.5, 0.5, 59500.0)]
    live = waves_of("bybit", events)
    # B = |mark - px| * sz: wave 1 = 1000*1 + 600*0.5, wave 2 = 500*0.5 (10 s > gap 5 s)
    assert live == [(t0 + 1000, t0 + 2000, 2, 1300.0, 1), (t0 + 12000, t0 + 12000, 1, 250.0, 1)]
    _tr, replayed, _errors = replay("bybit", cfg, cap)
    assert waves_of("bybit", replayed) == live
    assert fake.auth_failures == 0 and len(fake.authed) >= 2  # re-authenticated after the drop
    # the key and the secret are nowhere: logs, capture files, status
    texts = [caplog.text, orjson.dumps(status, default=str).decode()]
    texts += [p.read_text() for p in cap.iterdir()]
    for text in texts:
        assert KEY not in text and SECRET not in text


def test_rank_and_position_from_the_private_position_topic():
    p = BybitParser()
    p.parse_frame(byf.position(5, "BTCUSDT", "Sell", "3", "100", 4)[1])
    assert p.own.positions["BTCUSDT"] == -3.0 and p.own.ranks["BTCUSDT"] == {"rank": 4, "time_ms": 5}
    (f,) = p.parse_frame(byf.execution(6, "BTCUSDT", "Buy", "90", "1", "95", "x", exec_type="BustTrade")[1])
    assert (f.kind, f.start_position, f.closed_pnl) == ("liquidation", -3.0, 10.0)


def test_keys_are_masked_and_come_from_a_file_or_the_environment(tmp_path):
    from adlmon.venues.bybit.config import BybitConfig
    cfg = BybitConfig()
    assert load_keys(cfg, environ={}) is None
    keys = load_keys(cfg, environ={"ADLMON_BYBIT_API_KEY": KEY, "ADLMON_BYBIT_API_SECRET": SECRET})
    assert (keys.key, keys.secret) == (KEY, SECRET) and KEY not in repr(keys) and SECRET not in str(keys)
    f = tmp_path / "keys.json"
    f.write_text(orjson.dumps({"key": KEY, "secret": SECRET}).decode())
    import dataclasses
    assert load_keys(dataclasses.replace(cfg, api_key_file=str(f))) == ApiKeys(KEY, SECRET, "", f"file {f}")
    f.write_text("{}")
    with pytest.raises(ValueError) as e:
        load_keys(dataclasses.replace(cfg, api_key_file=str(f)))
    assert KEY not in str(e.value)


def test_binance_adl_autoclose_fill_with_the_public_mark():
    from adlmon.venues.binance.parse import BinanceParser
    p = BinanceParser()
    p.parse_frame(orjson.dumps({"e": "ACCOUNT_UPDATE", "E": 1, "T": 1, "a": {"m": "ORDER", "B": [], "P": [
        {"s": "BTCUSDT", "pa": "-2", "ep": "70000", "ps": "BOTH"}]}}))
    p.parse_frame(b'{"e":"markPriceUpdate","E":2,"s":"BTCUSDT","p":"65000","i":"65000","P":"0","r":"0","T":3}')
    new = {"e": "ORDER_TRADE_UPDATE", "E": 3, "T": 3, "o": {
        "s": "BTCUSDT", "c": "adl_autoclose", "S": "BUY", "o": "LIMIT", "x": "NEW", "X": "NEW", "l": "0",
        "L": "0", "i": 7, "t": 0, "T": 3}}
    assert p.parse_frame(orjson.dumps(new)) == []  # the announcement, no execution yet
    trade = {**new, "o": {**new["o"], "x": "TRADE", "X": "FILLED", "l": "1.5", "L": "64000", "t": 99,
                          "rp": "9000", "n": "0"}}
    (f,) = p.parse_frame(orjson.dumps(trade))
    assert (f.kind, f.user, f.side, f.sz, f.px, f.start_position, f.closed_pnl, f.liquidation.mark_px) == (
        ADL, OWN, "buy", 1.5, 64000.0, -2.0, 9000.0, 65000.0)
    p.parse_rest("/fapi/v1/adlQuantile", b'[{"symbol":"BTCUSDT","adlQuantile":{"LONG":0,"SHORT":4,"BOTH":0}}]')
    assert p.own.ranks["BTCUSDT"]["rank"] == {"LONG": 0, "SHORT": 4, "BOTH": 0}


def test_okx_adl_category_fill_in_contracts_and_the_adl_rank():
    from adlmon.venues.okx.parse import OkxParser
    p = OkxParser({"ETH-USDT-SWAP": 0.1})
    p.parse_frame(orjson.dumps({"arg": {"channel": "positions", "instType": "SWAP"}, "data": [
        {"instId": "ETH-USDT-SWAP", "pos": "30", "avgPx": "3000", "adl": "5", "posSide": "net", "uTime": "10"}]}))
    assert p.own.positions["ETH-USDT-SWAP"] == pytest.approx(3.0) and p.own.ranks["ETH-USDT-SWAP"]["rank"] == 5
    (f,) = p.parse_frame(orjson.dumps({"arg": {"channel": "orders", "instType": "SWAP"}, "data": [
        {"instId": "ETH-USDT-SWAP", "fillSz": "10", "fillPx": "3500", "side": "sell", "category": "adl",
         "fillTime": "11", "tradeId": "t1", "fillMarkPx": "3600", "fillPnl": "500", "fillFee": "0"}]}))
    assert (f.kind, f.sz, f.start_position, f.liquidation.mark_px, f.closed_pnl) == (
        ADL, pytest.approx(1.0), pytest.approx(3.0), 3600.0, 500.0)


async def test_okx_own_adl_after_login_same_waves_live_and_replayed(tmp_path, monkeypatch, caplog):
    from adlmon.venues.okx import fake as okf
    caplog.set_level(logging.DEBUG)
    phrase = "pp-5566778899"
    for k, v in (("KEY", KEY), ("SECRET", SECRET), ("PASSPHRASE", phrase)):
        monkeypatch.setenv(f"ADLMON_OKX_API_{k}", v)
    fake = await okf.FakeOkx(api_key=KEY, api_secret=SECRET, passphrase=phrase).start()
    t0 = okf.T0
    steps = [("preset", ("/api/v5/public/instruments", okf.rest_instruments([("BTC-USDT-SWAP", "0.01")]))),
             ("preset", ("/api/v5/public/insurance-fund", okf.rest_insurance(t0, "BTC-USDT", "1000000"))),
             ("push", okf.position(t0, "BTC-USDT-SWAP", "-200", "70000", "5")),        # short 2 BTC
             ("push", okf.order_fill(t0 + 500, "BTC-USDT-SWAP", "buy", "60000", "100", "59000", "a1")),
             ("drop", ()),
             ("push", okf.order_fill(t0 + 1500, "BTC-USDT-SWAP", "buy", "60100", "100", "59100", "a2"))]
    try:
        tracker, events, metrics, cap, status, cfg = await run_live(
            "okx", fake, steps, tmp_path, done=lambda ev: sum(isinstance(e, Fill) for e in ev) == 2,
            now_ms=lambda: t0 + 1000,  # the scripted venue's clock: the reconnect's FeedGap inside the wave
            families=("BTC-USDT",), mark_symbols=(), ping_interval_s=0.3, liveness_timeout_s=2.0,
            backoff_initial_s=0.01, backoff_max_s=0.05, quarantine_path="", insurance_poll_interval_s=60.0)
    finally:
        await fake.stop()
    fills = [e for e in events if isinstance(e, Fill)]
    assert [(f.kind, f.side, f.sz, f.start_position) for f in fills] == [
        (ADL, "buy", pytest.approx(1.0), pytest.approx(-2.0)), (ADL, "buy", pytest.approx(1.0), pytest.approx(-1.0))]
    live = waves_of("okx", events)
    assert live == [(t0 + 500, t0 + 1500, 2, 2000.0, 1)]  # |59000-60000|*1 + |59100-60100|*1
    _tr, replayed, _errors = replay("okx", cfg, cap)
    assert waves_of("okx", replayed) == live
    assert fake.auth_failures == 0 and len(fake.authed) >= 2
    for text in [caplog.text, orjson.dumps(status, default=str).decode()] + [p.read_text() for p in cap.iterdir()]:
        assert KEY not in text and SECRET not in text and phrase not in text


def waves_of(venue, events):
    eng = Engine(venue, gap_ms=5000, horizons_ms=(0,))
    out = []
    for e in events:
        out += eng.apply(e)
    out += eng.finish()
    return [(w.t_start_ms, w.t_end_ms, w.adl_fills, round(w.needed_usd, 6), w.accounts) for w in out]
