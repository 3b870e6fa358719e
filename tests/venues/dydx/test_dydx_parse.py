"""dYdX v4 parser: every documented shape of venues-wire.md §1.2-§1.5, §1.9, and bad input."""

from __future__ import annotations

import copy
import math
import json
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings, strategies as st

from adlmon.engine.engine import Engine
from adlmon.events import (
    ADL, BUY, LIQUIDATION, SELL, AccountSnapshot, Fill, InsuranceFund, Mark, ParseError,
    PartialParseError,
)
from adlmon.io.capture import CaptureRecord
from adlmon.venues.dydx.parse import (
    DydxParser, DydxStream, decode_trade_id, encode_trade_id, event_id_hex, iso_ms, ms_iso, packed_tid,
)

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "dydx" / "documented_frames.json"
FRAMES = orjson.loads(FIX.read_bytes())
T_UPDATE = iso_ms("2026-03-04T12:00:01.123Z")


def frame(name: str) -> dict:
    return copy.deepcopy(FRAMES[name])


def primed(oracle: bool = True) -> DydxParser:
    """A parser that has seen the markets snapshot (and, with ``oracle``, the block's oracle price)."""
    p = DydxStream(hold_ms=0)
    p.parse_frame(frame("markets_snapshot"), T_UPDATE - 5000)
    if oracle:
        p.parse_frame(frame("markets_oracle_update"), T_UPDATE)
    return p


def test_trade_id_decodes_height_tx_and_event_as_the_docs_example():
    assert decode_trade_id("0000eef1000000020000004d") == (61169, 0, 77)
    assert encode_trade_id(61169, 0, 77) == "0000eef1000000020000004d"
    assert packed_tid(61169, 0, 77) == (61169 << 32) | (2 << 24) | 77


def test_iso_times_are_exact_milliseconds():
    assert iso_ms("2023-04-04T00:29:19.353Z") == 1680568159353
    assert ms_iso(1680568159353) == "2023-04-04T00:29:19.353Z"
    assert iso_ms("2023-04-04T00:29:19Z") == 1680568159000


def test_deleveraged_trade_is_the_winner_side_at_the_oracle_mark():
    p = primed()
    events = p.parse_frame(frame("trades_update"), T_UPDATE + 20)
    fills = {e.dir: e for e in events}
    adl = fills["DELEVERAGED"]
    # side BUY: the loser (taker) was short and bought; the winner's long was closed (a sell).
    assert adl.kind == ADL and adl.side == SELL and adl.start_position == 0.25
    assert adl.px == 61234.0 and adl.sz == 0.25 and adl.time_ms == T_UPDATE
    assert adl.user == "winner:02c1a5e80000000200000013" and adl.hash == "02c1a5e80000000200000013"
    assert adl.liquidation.mark_px == 61230.51 and adl.liquidation.liquidated_user is None
    assert adl.closed_pnl == 0.0 and adl.fee == 0.0
    liq = fills["LIQUIDATED"]
    assert liq.kind == LIQUIDATION and liq.side == BUY and liq.start_position == -0.5
    assert liq.user == liq.liquidation.liquidated_user
    # Emitted in (height, tx, event) order: event 0x11 before 0x13.
    assert [e.hash for e in events] == ["02c1a5e80000000200000011", "02c1a5e80000000200000013"]


def test_mark_is_the_last_oracle_price_at_or_before_the_trade_time():
    p = primed(oracle=False)  # only the snapshot price, at its receive time
    later = frame("markets_oracle_update")
    later["contents"]["oraclePrices"]["BTC-USD"]["effectiveAt"] = "2026-03-04T12:00:01.124Z"
    later["contents"]["oraclePrices"]["BTC-USD"]["oraclePrice"] = "99999"
    p.parse_frame(later, T_UPDATE + 1)  # 1 ms after the trade: not its mark
    adl = [e for e in p.parse_frame(frame("trades_update"), T_UPDATE) if e.kind == ADL][0]
    assert adl.liquidation.mark_px == 61230.51  # the snapshot's oraclePrice (at T_UPDATE - 5000)
    assert p.mark_at("BTC-USD", T_UPDATE + 1) == 99999.0


def test_adl_without_any_known_mark_keeps_the_fill_with_a_nan_mark():
    p = DydxParser()
    events = p.parse_frame(frame("trades_update"), T_UPDATE)
    adl = [e for e in events if e.kind == ADL][0]
    assert math.isnan(adl.liquidation.mark_px) and adl.px == 61234.0 and p.stats["no_mark"] == 2
    # The engine keeps it and says the wave's needed budget is a lower bound.
    engine = Engine("dydx", horizons_ms=(0,))
    for e in events:
        engine.apply(e)
    (wave,) = engine.finish()
    assert wave.to_dict()["needed_complete"] is False and wave.to_dict()["needed_missing_mark_fills"] == 1


def test_deleveraged_in_a_final_settlement_market_is_not_adl():
    p = primed()
    upd = frame("markets_trading_update")
    upd["contents"]["trading"]["BTC-USD"] = {"status": "FINAL_SETTLEMENT"}
    p.parse_frame(upd, T_UPDATE)
    events = p.parse_frame(frame("trades_update"), T_UPDATE)
    assert [e.kind for e in events] == [LIQUIDATION]
    assert p.stats["final_settlement"] == 1 and p.status["ETH-USD"] == "FINAL_SETTLEMENT"
    # The snapshot's status counts too.
    t = frame("trades_update")
    t["id"] = "LUNA-USD"
    for i, tr in enumerate(t["contents"]["trades"]):
        tr["id"] = encode_trade_id(7, 0, i)
    assert [e.kind for e in p.parse_frame(t, T_UPDATE)] == [LIQUIDATION]


def test_resent_trades_are_deduplicated_on_id():
    p = primed()
    first = p.parse_frame(frame("trades_update"), T_UPDATE)
    again = p.parse_frame(frame("trades_update"), T_UPDATE + 5)
    assert len(first) == 2 and again == [] and p.stats["duplicates"] == 2


def test_first_trades_snapshot_is_history_later_ones_are_backfill():
    p = primed()
    assert p.parse_frame(frame("trades_snapshot"), T_UPDATE) == []
    assert p.stats["history"] == 2
    # After a reconnect the snapshot comes again with a trade missed in between.
    snap = frame("trades_snapshot")
    snap["contents"]["trades"].insert(0, {
        "id": "02c1a5e80000000200000020", "size": "0.3", "price": "61100", "side": "SELL",
        "createdAt": "2026-03-04T12:00:01.123Z", "type": "DELEVERAGED", "createdAtHeight": "46245352"})
    events = p.parse_frame(snap, T_UPDATE + 100)
    assert [(e.kind, e.side, e.start_position) for e in events] == [(ADL, BUY, -0.3)]


def test_rest_trades_page_is_parsed_like_a_snapshot_and_deduplicated():
    p = primed()
    body = frame("trades_snapshot")["contents"]
    got = p.parse_rest("/v4/trades/perpetualMarket/BTC-USD?limit=1000", body, T_UPDATE)
    assert [e.kind for e in got] == [ADL]  # the LIMIT trade gives no event
    assert p.parse_rest("/v4/trades/perpetualMarket/BTC-USD?limit=1000&createdBeforeOrAtHeight=5",
                        body, T_UPDATE) == []
    assert p.last_height["BTC-USD"] == 46245351


def test_numbers_as_json_numbers_are_accepted():
    p = primed()
    f = frame("trades_update")
    for tr in f["contents"]["trades"]:
        tr["size"] = float(tr["size"])
        tr["price"] = int(tr["price"])
    o = frame("markets_oracle_update")
    o["contents"]["oraclePrices"]["BTC-USD"]["oraclePrice"] = 61230.51
    p.parse_frame(o, T_UPDATE)
    events = p.parse_frame(f, T_UPDATE)
    assert sorted((e.px, e.sz) for e in events) == [(61234.0, 0.25), (61240.0, 0.5)]


def test_batched_frames_carry_a_list_of_contents():
    p = primed(oracle=False)
    one = frame("markets_oracle_update")
    batch = {"type": "channel_batch_data", "channel": "v4_markets", "version": "1.0.0",
             "contents": [one["contents"], frame("markets_trading_update")["contents"]]}
    events = p.parse_frame(batch, T_UPDATE)
    assert [type(e) for e in events] == [Mark]
    t = frame("trades_update")
    tb = {"type": "channel_batch_data", "channel": "v4_trades", "id": "BTC-USD", "version": "2.1.0",
          "contents": [{"trades": t["contents"]["trades"][:1]}, {"trades": t["contents"]["trades"][1:]}]}
    assert len(p.parse_frame(tb, T_UPDATE)) == 2


def test_markets_snapshot_gives_marks_at_receive_time_status_and_pairs():
    p = DydxParser()
    events = p.parse_frame(frame("markets_snapshot"), 1234)
    assert {(e.coin, e.mark_px, e.time_ms) for e in events} == {("BTC-USD", 61230.51, 1234),
                                                               ("LUNA-USD", 0.5, 1234)}
    assert p.status == {"BTC-USD": "ACTIVE", "LUNA-USD": "FINAL_SETTLEMENT"}
    assert p.clob_pair["0"] == "BTC-USD" and p.atomic_resolution["BTC-USD"] == -10
    # The REST answer of /v4/perpetualMarkets is the same body.
    q = DydxParser()
    assert q.parse_rest("/v4/perpetualMarkets", frame("markets_snapshot")["contents"], 1234) == events


def test_oracle_update_is_a_mark_at_effective_at():
    p = DydxParser()
    (m,) = p.parse_frame(frame("markets_oracle_update"), 0)
    assert m == Mark("dydx", "BTC-USD", 61230.51, 61230.51, T_UPDATE)


def test_control_frames_give_no_events():
    p = DydxParser()
    for name in ("connected", "error_already_subscribed", "block_height_snapshot", "block_height_update"):
        assert p.parse_frame(frame(name), 0) == []
    assert p.head_height == 46245353 and p.stats["errors_from_venue"] == 1


def test_subaccount_snapshot_is_an_account_snapshot():
    p = DydxParser()
    (s,) = p.parse_frame(frame("subaccount_snapshot"), 77)
    assert isinstance(s, AccountSnapshot)
    assert s.user == "dydx1zsw8fczav25uvc8rg3zcv6zy9j7yhnktpq374m/0" and s.account_value == 10500.25
    assert [(x.coin, x.size, x.entry_px) for x in s.positions] == [("BTC-USD", -0.5, 60000.0)]
    empty = frame("subaccount_snapshot")
    empty["contents"] = {}  # a 404
    assert p.parse_frame(empty, 77) == []


@pytest.mark.parametrize("name, start", [("subaccount_fills_hex", 0.8),  # positionSizeBefore
                                         ("subaccount_fills_buffer", 0.25)])  # absent: closed to flat
def test_offsetting_fill_names_the_winner_in_both_event_id_forms(name, start):
    p = primed()
    f = frame(name)
    p.parse_frame(f, T_UPDATE)
    eid = event_id_hex(f["contents"]["fills"][0]["eventId"])
    trades = frame("trades_update")
    trades["contents"]["trades"][0]["id"] = eid
    adl = [e for e in p.parse_frame(trades, T_UPDATE) if e.kind == ADL][0]
    assert adl.user == "dydx1zsw8fczav25uvc8rg3zcv6zy9j7yhnktpq374m/0"
    assert adl.start_position == start  # the winner's long closed
    assert p.stats["named_winners"] == 1


def test_buffer_event_id_equals_its_hex():
    assert event_id_hex({"type": "Buffer", "data": [0, 0, 238, 241, 0, 0, 0, 2, 0, 0, 0, 77]}) \
        == "0000eef1000000020000004d"


def test_bank_balance_is_the_insurance_fund_in_usd():
    p = DydxParser(pools={"dydx1c7ptc87hkd54e3r7zjy92q29xkq7t79w64slrq": "insurance_fund"})
    (f,) = p.parse_rest("/cosmos/bank/v1beta1/balances/dydx1c7ptc87hkd54e3r7zjy92q29xkq7t79w64slrq",
                        frame("bank_balance"), 99)
    assert f == InsuranceFund("dydx", "insurance_fund", 1250000.0, 99)


def test_capture_records_go_through_the_same_paths():
    p = primed()
    rec = CaptureRecord(T_UPDATE, "dydx", "c", "ws", orjson.dumps(frame("trades_update")).decode())
    assert len(p.parse(rec)) == 2
    assert p.parse(CaptureRecord(1, "dydx", "c", "open", "")) == []
    rest = CaptureRecord(2, "dydx", "c", "rest", orjson.dumps(frame("markets_snapshot")["contents"]).decode(),
                         {"req": "/v4/perpetualMarkets"})
    assert len(p.parse(rest)) == 2


# --------------------------------------------------------------------------- bad input

def _bad_trade(**change):
    f = frame("trades_update")
    f["contents"]["trades"] = [dict(f["contents"]["trades"][0], **change)]
    return f


@pytest.mark.parametrize("change, reason", [
    ({"id": "8ee6d90d-9c4e-4f8e-9e71-1c6154154a13"}, "unknown_format"),  # the stale UUID id of the docs
    ({"id": "zz" * 12}, "bad_value"),
    ({"id": None}, "missing_field"),
    ({"side": "LONG"}, "bad_value"),
    ({"size": "abc"}, "bad_number"),
    ({"size": "-1"}, "bad_value"),
    ({"price": "nan"}, "bad_number"),
    ({"price": True}, "bad_number"),
    ({"type": "ADL"}, "unknown_format"),
    ({"createdAt": "yesterday noon"}, "bad_value"),
    ({"createdAt": 1700000000000}, "bad_value"),
    ({"createdAtHeight": "1"}, "bad_value"),
])
def test_malformed_trades_raise_parse_errors(change, reason):
    p = primed()
    with pytest.raises(ParseError) as exc:
        p.parse_frame(_bad_trade(**change), T_UPDATE)
    assert exc.value.reason == reason


def test_a_bad_trade_among_good_ones_keeps_the_good_ones():
    p = primed()
    f = frame("trades_update")
    f["contents"]["trades"].append({"id": "bad", "type": "DELEVERAGED"})
    with pytest.raises(PartialParseError) as exc:
        p.parse_frame(f, T_UPDATE)
    assert len(exc.value.events) == 2 and all(isinstance(e, Fill) for e in exc.value.events)


@pytest.mark.parametrize("obj, reason", [
    ([], "bad_value"),
    ({"type": "hello"}, "unknown_format"),
    ({"channel": "v4_trades"}, "missing_field"),
    ({"type": "channel_data", "channel": "v4_orderbook", "id": "BTC-USD", "contents": {}}, "unknown_channel"),
    ({"type": "channel_data", "channel": "v4_trades", "contents": {"trades": []}}, "missing_field"),
    ({"type": "channel_data", "channel": "v4_trades", "id": "BTC-USD", "contents": {}}, "missing_field"),
    ({"type": "channel_data", "channel": "v4_markets", "contents": {"other": 1}}, "unknown_format"),
    ({"type": "channel_data", "channel": "v4_markets",
      "contents": {"oraclePrices": {"BTC-USD": {"oraclePrice": "1"}}}}, "missing_field"),
    ({"type": "subscribed", "channel": "v4_markets",
      "contents": {"markets": {"X-USD": {"status": "DELISTED", "oraclePrice": "1"}}}}, "unknown_format"),
    ({"type": "channel_batch_data", "channel": "v4_markets", "contents": {}}, "bad_value"),
])
def test_malformed_and_unknown_frames_raise_parse_errors(obj, reason):
    with pytest.raises(ParseError) as exc:
        DydxParser().parse_frame(obj, 0)
    assert exc.value.reason == reason


def test_unknown_rest_answer_and_bad_json_are_parse_errors():
    p = DydxParser()
    with pytest.raises(ParseError) as exc:
        p.parse_rest("/v4/orderbooks/perpetualMarket/BTC-USD", {}, 0)
    assert exc.value.reason == "unknown_format"
    with pytest.raises(ParseError) as exc:
        DydxStream().parse(CaptureRecord(1, "dydx", "c", "ws", '{"type":'))
    assert exc.value.reason == "bad_json"


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25)
_keys = st.sampled_from(["type", "channel", "id", "contents", "trades", "markets", "oraclePrices",
                         "trading", "fills", "subaccount", "size", "price", "side", "createdAt",
                         "eventId", "status", "oraclePrice", "effectiveAt", "height"])


def _mutations():
    base = [frame(n) for n in FRAMES if not n.startswith("_") and n != "bank_balance"]

    def mutate(args):
        f, path_keys, value = args
        f = copy.deepcopy(f)
        node = f
        for k in path_keys:
            if isinstance(node, dict) and node:
                key = k if k in node else sorted(node)[hash(k) % len(node)]
                if isinstance(node[key], (dict, list)) and node[key]:
                    node = node[key] if isinstance(node[key], dict) else node[key][0]
                    continue
                node[key] = value
                return f
        if isinstance(node, dict):
            node[path_keys[-1] if path_keys else "x"] = value
        return f
    return st.tuples(st.sampled_from(base), st.lists(_keys, min_size=1, max_size=4), _json).map(mutate)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_json, _mutations()))
def test_fuzz_parser_raises_only_parse_errors(obj):
    p = primed()
    try:
        events = p.parse_frame(obj, T_UPDATE)
    except ParseError:
        return
    for e in events:
        assert e.venue == "dydx"
        if isinstance(e, Fill):
            assert e.sz > 0 and e.px > 0 and e.kind in (ADL, LIQUIDATION)


def test_block_decode_names_winner_and_loser_by_perpetual_and_amount():
    # BTC-USD: clobPairId "0", atomicResolution -10; trade sizes 0.25 and 0.1 (the fixture's
    # fills are 0.1 and 0.25 in that queue order).
    p = DydxStream(hold_ms=0, decode_blocks=True)
    p.parse_frame(frame("markets_snapshot"), T_UPDATE - 5000)
    p.parse_frame(frame("markets_oracle_update"), T_UPDATE)
    t = frame("trades_update")
    t["contents"]["trades"][1].update(type="DELEVERAGED", size="0.1")
    assert p.frame(t, T_UPDATE) == [] and p.wanted == [0x02c1a5e8]  # both wait for their block
    named = p.rest(f"/cosmos/tx/v1beta1/txs/block/{0x02c1a5e8}", frame("node_block"), T_UPDATE + 10)
    assert {(f.sz, f.user, f.liquidation.liquidated_user) for f in named} == {
        (0.1, "dydx1winnera/0", "dydx1loser/3"), (0.25, "dydx1winnerb/1", "dydx1loser/3")}
    assert p.stats["named_winners"] == 2


def test_block_decode_gives_up_after_the_wait_and_keeps_the_fill_unnamed():
    p = DydxStream(hold_ms=0, decode_blocks=True, decode_wait_ms=1000)
    p.parse_frame(frame("markets_oracle_update"), T_UPDATE)
    assert [e for e in p.frame(frame("trades_update"), T_UPDATE) if e.kind == ADL] == []
    late = p.tick(T_UPDATE + 1000)
    assert [e.user for e in late if e.kind == ADL] == ["winner:02c1a5e80000000200000013"]
    assert p.stats["decode_timeouts"] == 1 and p.pending == {}


@pytest.mark.parametrize("body", [{"txs": {}}, {"txs": [{"body": {"messages": [
    {"@type": "/dydxprotocol.clob.MsgProposedOperations", "operations_queue": [
        {"match": {"match_perpetual_deleveraging": {"liquidated": {"number": 1}, "fills": []}}}]}]}}]}])
def test_malformed_blocks_are_parse_errors(body):
    with pytest.raises(ParseError):
        DydxStream().parse_rest("/cosmos/tx/v1beta1/txs/block/5", body, 0)


_req = st.sampled_from(["/v4/perpetualMarkets", "/v4/trades/perpetualMarket/BTC-USD?limit=5",
                        "/v4/height", "/cosmos/tx/v1beta1/txs/block/46245352",
                        "/cosmos/tx/v1beta1/txs/block/x", "/cosmos/bank/v1beta1/balances/dydx1x", "/v9"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["ws", "rest", "open", "close"]), _req,
                          st.one_of(_json, _mutations()), st.integers(0, 10_000)), max_size=6))
def test_fuzz_capture_stream_raises_only_parse_errors(records):
    p = DydxStream(hold_ms=500, decode_blocks=True, decode_wait_ms=200)
    t = T_UPDATE
    for kind, req, obj, step in records:
        t += step
        text = json.dumps(obj) if kind in ("ws", "rest") else ""
        try:
            p.parse(CaptureRecord(t, "dydx", "c", kind, text, {"req": req}))
        except ParseError:
            pass
    p.finish()
    assert p.pending == {} and len(p.merge) == 0
