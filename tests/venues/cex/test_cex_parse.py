"""Bybit, OKX and Binance parsers on every documented shape (issue 11 acceptance 1),
bad input counted as ParseError, a hypothesis fuzz test per parser."""

from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adlmon.engine.adlstate import AdlStateTracker
from adlmon.events import AdlSignal, InsuranceFund, LiquidationOrder, Mark, ParseError
from adlmon.io.capture import CaptureRecord
from adlmon.venues.binance import parse as bn
from adlmon.venues.bybit import rules as bybit_rules
from adlmon.venues.bybit.parse import BybitParser
from adlmon.venues.okx import parse as okx
from adlmon.venues.okx.parse import OkxParser

FIX = Path(__file__).resolve().parents[2] / "fixtures"


def raw(venue, name):
    return (FIX / venue / name).read_text()


# ------------------------------------------------------------------ Bybit
def test_bybit_adl_alert_numbers_and_strings_give_the_same_inputs():
    nums = BybitParser().parse_frame(raw("bybit", "adl_alert_numbers.json"))
    assert [(s.symbol, s.time_ms, s.details["b"], s.details["pr"]) for s in nums] == [
        ("ZORAUSDT", 1757736794000, 19873.46255153, 0.000174), ("FWOGUSDT", 1757736794000, -5421.29889888, 0.0)]
    assert nums[0].details["adl_tt"] == 10000.0 and nums[0].details["i_pr"] == -0.3
    (s,) = BybitParser().parse_frame(raw("bybit", "adl_alert_strings.json"))  # "list", strings
    assert (s.details["b"], s.details["pr"], s.details["adl_sr"]) == (19873.46255153, -0.31, -0.25)
    tr = AdlStateTracker({"bybit": bybit_rules.RULE})
    tr.apply_all(nums + [s])
    assert [(x["scope"], x["armed"]) for x in tr.signals] == [("FWOGUSDT", True), ("ZORAUSDT", True)]


def test_bybit_rest_adl_alert_camel_case():
    (s,) = BybitParser().parse_rest("/v5/market/adlAlert", raw("bybit", "rest_adl_alert.json"))
    assert (s.symbol, s.time_ms, s.details["pr"], s.details["i_pr"]) == ("BTCUSDT", 1757733960000, -0.560973, -0.3)


def test_bybit_liquidation_side_is_the_position_side():
    (liq,) = BybitParser().parse_frame(raw("bybit", "all_liquidation.json"))
    # "Sell" is a short position liquidated: the liquidation order buys
    assert liq == LiquidationOrder("bybit", "ROSEUSDT", "buy", 20000.0, 0.04499, None, 1739502302929)


def test_bybit_insurance_ws_and_rest_pools():
    (f,) = BybitParser().parse_frame(raw("bybit", "insurance_ws.json"))
    assert f == InsuranceFund("bybit", "USDT:SOLAYERUSDT", 3241.69957484, 1747722930000, ("SOLAYERUSDT",))
    shared, iso = BybitParser().parse_rest("/v5/market/insurance?coin=USDT", raw("bybit", "rest_insurance.json"))
    assert (shared.pool, shared.balance_usd, shared.time_ms) == ("USDT", 1200100000.1, 1714003200000)
    assert shared.symbols == ("BTCUSDT", "ETHUSDT", "SOLUSDT") and iso.pool == "USDT:ZORAUSDT"


def test_bybit_inverse_pool_waits_for_its_mark():
    p = BybitParser()
    frame = orjson.dumps({"topic": "insurance.inverse", "ts": 5, "data": [
        {"coin": "BTC", "symbols": "BTCUSD", "balance": "2", "updateTime": "5"}]})
    assert p.parse_frame(frame) == []
    p.parse_frame(orjson.dumps({"topic": "tickers.BTCUSD", "ts": 4, "data": {"symbol": "BTCUSD", "markPrice": "100"}}))
    assert p.parse_frame(frame)[0].balance_usd == 200.0


def test_bybit_tickers_delta_without_mark_gives_nothing():
    p = BybitParser()
    assert p.parse_frame(raw("bybit", "tickers.json")) == [Mark("bybit", "BTCUSDT", 60001.5, 60000.1, 1673853746003)]
    assert p.parse_frame(b'{"topic":"tickers.BTCUSDT","type":"delta","ts":2,"data":{"symbol":"BTCUSDT","volume24h":"1"}}') == []


def test_bybit_control_frames_and_errors():
    p = BybitParser()
    assert p.parse_frame(b'{"success":true,"ret_msg":"pong","conn_id":"x","req_id":"","op":"ping"}') == []
    with pytest.raises(ParseError) as e:
        p.parse_frame(b'{"success":false,"ret_msg":"error:handler not found","op":"subscribe"}')
    assert e.value.reason == "venue_error"


@pytest.mark.parametrize("frame,reason", [
    (b"{", "bad_json"),
    (b'{"topic":"adlAlert.USDT","ts":1,"data":[{"s":"X","b":"abc","pr":0,"i_pr":0,"adl_tt":0,"adl_sr":0}]}', "bad_number"),
    (b'{"topic":"adlAlert.USDT","ts":1,"data":[{"s":"X","b":1}]}', "missing_field"),
    (b'{"topic":"allLiquidation.X","ts":1,"data":[{"T":1,"s":"X","S":"Long","v":"1","p":"1"}]}', "bad_value"),
    (b'{"topic":"orderbook.1.X","ts":1,"data":{}}', "unknown_channel"),
    # a list where a side string belongs (found by the fuzz test): bad_value, not a TypeError
    (b'{"topic":"allLiquidation.X","ts":1,"data":[{"T":1,"s":"X","S":[],"v":"1","p":"1"}]}', "bad_value"),
    (b'{"topic":"adlAlert.USDT","ts":"soon","data":[]}', "bad_number"),
])
def test_bybit_malformed_frames_are_parse_errors(frame, reason):
    with pytest.raises(ParseError) as e:
        BybitParser().parse_frame(frame)
    assert e.value.reason == reason


# -------------------------------------------------------------------- OKX
def test_okx_adl_warning_old_shape_before_the_cutover():
    sig, fund = OkxParser().parse_frame(raw("okx", "adl_warning_v1.json"))
    assert okx.adl_warning_version(sig.time_ms) is okx.adl_warning_v1
    assert (sig.symbol, sig.state, sig.time_ms) == ("BTC-USDT", "normal", 1700210763001)
    assert sig.details["adlRate"] == 0.5 and sig.details["adlRecBal"] == 8000.0 and sig.details["maxBal"] is None
    assert fund == InsuranceFund("okx", "BTC-USDT", 280784384.9564228289548144, 1700210763001, ("BTC-USDT",))


def test_okx_adl_warning_current_shape_ignores_retired_fields():
    sig, fund = OkxParser().parse_frame(raw("okx", "adl_warning_v2.json"))
    assert okx.adl_warning_version(sig.time_ms) is okx.adl_warning_v2
    assert (sig.state, sig.details["shape"]) == ("warning", "v2")
    assert okx.adl_warning_version(okx.CUTOVER_MS - 1) is okx.adl_warning_v1
    assert okx.adl_warning_version(okx.CUTOVER_MS) is okx.adl_warning_v2


def test_okx_current_shape_rejects_a_normal_push_and_unknown_states():
    item = orjson.loads(raw("okx", "adl_warning_v2.json"))
    item["data"][0]["state"] = "normal"
    with pytest.raises(ParseError) as e:
        OkxParser().parse_obj(item)
    assert e.value.reason == "bad_value"


def test_okx_liquidation_contracts_times_ct_val():
    p = OkxParser()
    with pytest.raises(ParseError) as e:
        p.parse_frame(raw("okx", "liquidation_orders.json"))
    assert e.value.reason == "missing_field" and "ctVal" in str(e.value)
    assert p.parse_rest("/api/v5/public/instruments?instType=SWAP", raw("okx", "rest_instruments.json")) == []
    (liq,) = p.parse_frame(raw("okx", "liquidation_orders.json"))
    assert liq == LiquidationOrder("okx", "IOST-USDT-SWAP", "buy", 13000.0, 0.007831, None,
                                   1692266434010, 0.0, "IOST-USDT")


def test_okx_mark_insurance_and_control():
    p = OkxParser()
    assert p.parse_frame(raw("okx", "mark_price.json")) == [Mark("okx", "BTC-USDT-SWAP", 42310.6, None, 1630049139746)]
    (f,) = p.parse_rest("/api/v5/public/insurance-fund?instType=OPTION&instFamily=ETH-USD",
                        raw("okx", "rest_insurance_fund.json"))
    assert f == InsuranceFund("okx", "ETH-USD", 1369179138.7489, 1704883083000, ("ETH-USD",))
    assert p.parse_frame(b"pong") == []
    assert p.parse_frame(b'{"id":"1512","event":"subscribe","arg":{"channel":"adl-warning"},"connId":"a"}') == []
    with pytest.raises(ParseError) as e:
        p.parse_frame(b'{"id":"1512","event":"error","code":"60012","msg":"Illegal request","connId":"a"}')
    assert e.value.reason == "venue_error"


# ---------------------------------------------------------------- Binance
def test_binance_force_order_raw_and_combined():
    (a,) = bn.parse_frame(raw("binance", "force_order_raw.json"))
    (b,) = bn.parse_frame(raw("binance", "force_order_combined.json"))
    assert a == LiquidationOrder("binance", "BTCUSDT", "sell", 0.014, 9910.0, 9910.0, 1568014460893)
    assert (b.avg_px, b.qty) == (9905.0, 0.014)
    assert bn.channel_of(orjson.loads(raw("binance", "force_order_combined.json"))) == "forceOrder"


def test_binance_mark_price_array():
    marks = bn.parse_frame(raw("binance", "mark_price_arr.json"))
    assert marks == [Mark("binance", "BTCUSDT", 11794.15, 11784.62659091, 1562305380000),
                     Mark("binance", "ETHUSDT", 300.1, 300.0, 1562305380000)]


def test_binance_insurance_balance_usd_assets_only_and_symbol_adl_risk():
    funds = bn.parse_rest("/fapi/v1/insuranceBalance", raw("binance", "rest_insurance_balance.json"))
    assert [(f.pool, f.balance_usd) for f in funds] == [
        ("USDC:BNBUSDT", 299999998.6497832), ("USDT:BNBUSDT", 793930579.315848), ("BNFCR:BNBUSDT", 633223.99396922)]
    both = bn.parse_rest("/fapi/v1/insuranceBalance",
                         "[" + raw("binance", "rest_insurance_balance.json") + "]")
    assert both == funds
    risks = bn.parse_rest("/fapi/v1/symbolAdlRisk", raw("binance", "rest_symbol_adl_risk.json"))
    assert risks == [AdlSignal("binance", "BTCUSDT", "low", 1597370495002),
                     AdlSignal("binance", "ZORAUSDT", "high", 1597370495002)]


@pytest.mark.parametrize("frame,reason", [
    (b"[1]", "bad_value"),
    (b'{"e":"aggTrade","s":"X"}', "unknown_channel"),
    (b'{"e":"forceOrder","E":1,"o":{"s":"X","S":"HOLD","q":"1","p":"1","T":1}}', "bad_value"),
    (b'{"e":"forceOrder","E":1,"o":{"s":"X","S":"SELL","q":"nan","p":"1","T":1}}', "bad_number"),
    (b'{"code":-1121,"msg":"Invalid symbol."}', "venue_error"),
])
def test_binance_malformed_frames_are_parse_errors(frame, reason):
    with pytest.raises(ParseError) as e:
        bn.parse_frame(frame)
    assert e.value.reason == reason


# ------------------------------------------------------------------- fuzz
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2**60, 2**60) | st.floats() | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
        st.sampled_from(["topic", "ts", "data", "list", "s", "b", "pr", "i_pr", "adl_tt", "adl_sr", "S", "v",
                         "p", "T", "coin", "symbols", "balance", "arg", "channel", "state", "instFamily",
                         "bal", "details", "instId", "sz", "bkPx", "side", "e", "E", "o", "q", "stream",
                         "markPx", "symbol", "markPrice", "event", "op", "success", "execType", "execPrice", "execQty",
                         "execTime", "execId", "size", "fillSz", "fillPx", "fillTime", "category", "pa", "P",
                         "L", "l", "x", "c", "pos", "adl", "adlRankIndicator"]), kids, max_size=6),
    max_leaves=20)
_topics = st.sampled_from(["adlAlert.USDT", "insurance.USDT", "allLiquidation.X", "tickers.X", "x",
                           "execution", "position"])
_channels = st.sampled_from(["adl-warning", "liquidation-orders", "mark-price", "x", "orders", "positions"])
_events = st.sampled_from(["forceOrder", "markPriceUpdate", "x", "ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE"])


def _only_parse_errors(fn, value):
    try:
        out = fn(value)
    except ParseError:
        return
    assert isinstance(out, list)


@settings(max_examples=300, deadline=None)
@given(_json, _topics, _json)
def test_bybit_fuzz_only_parse_errors(body, topic, data):
    p = BybitParser()
    _only_parse_errors(p.parse_obj, body)
    _only_parse_errors(p.parse_obj, {"topic": topic, "ts": 1, "data": data})
    _only_parse_errors(p.parse_obj, {"topic": topic, "ts": 1, "data": [data]})
    _only_parse_errors(lambda b: p.parse_rest("/v5/market/adlAlert", orjson.dumps(b)),
                       {"retCode": 0, "result": {"updatedTime": "1", "list": data}})


@settings(max_examples=300, deadline=None)
@given(_json, _channels, _json)
def test_okx_fuzz_only_parse_errors(body, channel, data):
    p = OkxParser({"X": 1.0})
    _only_parse_errors(p.parse_obj, body)
    _only_parse_errors(p.parse_obj, {"arg": {"channel": channel}, "data": data})
    _only_parse_errors(lambda b: p.parse_rest("/api/v5/public/insurance-fund", orjson.dumps(b)),
                       {"code": "0", "data": data})


@settings(max_examples=300, deadline=None)
@given(_json, _events, _json)
def test_binance_fuzz_only_parse_errors(body, e, o):
    p = bn.BinanceParser()
    _only_parse_errors(p.parse_obj, body)
    _only_parse_errors(p.parse_obj, {"e": e, "E": 1, "o": o, "a": o, "s": "X", "p": o})
    _only_parse_errors(lambda b: bn.parse_rest("/fapi/v1/insuranceBalance", orjson.dumps(b)), o)


def test_capture_records_replay_through_each_parser():
    rec = CaptureRecord(1, "binance", "u", "rest", raw("binance", "rest_symbol_adl_risk.json"),
                        {"req": "/fapi/v1/symbolAdlRisk"})
    assert len(bn.BinanceParser().parse(rec)) == 2
    rec = CaptureRecord(1, "okx", "u", "ws", "pong")
    assert OkxParser().parse(rec) == []
    assert BybitParser().parse(CaptureRecord(1, "bybit", "u", "open", "")) == []
