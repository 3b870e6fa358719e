"""Lighter frames and REST answers -> events, frame by frame (venues-wire.md §2.2-§2.6, issue 10)."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adlmon.counterfactual import Winners
from adlmon.engine.engine import Engine
from adlmon.events import (
    ADL, BUY, CLOSE, LIQUIDATION, OPEN, SELL, AccountSnapshot, FeedGap, Fill, InsuranceFund, Mark,
    ParseError,
)
from adlmon.io.capture import CaptureRecord
from adlmon.venues.lighter.parse import (
    LLP_MAINNET, NO_POSITION_DIR, LighterParser, _checked_trade, _fast_trade, closed_pnl,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "lighter"
POOL = str(LLP_MAINNET)


def fixture(name: str) -> dict:
    return orjson.loads((FIXTURES / name).read_bytes())


def ws(obj, t=0, src="c0") -> CaptureRecord:
    return CaptureRecord(t, "lighter", src, "ws", obj if isinstance(obj, str) else orjson.dumps(obj).decode())


def rest(req: str, obj, t=0) -> CaptureRecord:
    return CaptureRecord(t, "lighter", "rest", "rest", orjson.dumps(obj).decode(), {"req": req})


def trade(**over) -> dict:
    """A deleverage trade of the documented shape, fields overridable (None removes)."""
    tr = {"trade_id": 10, "tx_hash": "ab", "type": "deleverage", "market_id": 0, "size": "2",
          "price": "100", "usd_amount": "200", "ask_id": 1, "bid_id": 2, "ask_client_id": 0,
          "bid_client_id": 0, "ask_account_id": 7, "bid_account_id": 9, "is_maker_ask": True,
          "block_height": 5, "timestamp": 2000}
    tr.update(over)
    return {k: v for k, v in tr.items() if v is not None}


def frame(*trades, liq=(), kind="update/trade") -> dict:
    return {"type": kind, "channel": "trade:0", "nonce": 1, "trades": list(trades),
            "liquidation_trades": list(liq)}


def stats(t, **marks) -> dict:
    return {"type": "update/market_stats", "channel": "market_stats:all", "timestamp": t,
            "market_stats": {k.lstrip("m"): {"market_id": int(k.lstrip("m")), "mark_price": v}
                             for k, v in marks.items()}}


# ----------------------------------------------------------------------------- documented shapes

def test_real_snapshot_gives_the_liquidated_taker_and_skips_sides_without_positions():
    p = LighterParser()
    events = p.parse(ws(fixture("trade_snapshot_real.json"), t=1790015210800))
    # The regular trade has no position fields: neither side is a fact for the ledger.
    # The liquidation's taker (is_maker_ask true: the taker bought, a short was liquidated)
    # is kept for the liquidation counters, with the closing convention.
    assert len(events) == 1
    f = events[0]
    assert (f.kind, f.user, f.side, f.coin, f.tid) == (LIQUIDATION, "3220", BUY, "0", 882932008)
    assert (f.px, f.sz, f.time_ms) == (2769.77, 1.0034, 1790008326252)
    assert f.start_position == -1.0034 and f.closed_pnl == 0.0
    assert f.liquidation.liquidated_user == "3220" and math.isnan(f.liquidation.mark_px)
    assert f.fee == pytest.approx(2779.187218 * 10000 / 1e6)
    assert p.stats["position_unknown"] == 3 and p.rejected == {}


def test_deleverage_with_every_optional_field_names_winner_loser_and_capacity():
    p = LighterParser()
    marks = p.parse(ws(fixture("market_stats_all.json")))
    assert [(m.coin, m.mark_px, m.oracle_px, m.time_ms) for m in marks] == [
        ("ETH", 2601.5, 2601.1, 1790015211500), ("BTC", 91010.5, 91000.0, 1790015211500)]
    taker, winner = p.parse(ws(fixture("trade_deleverage.json")))
    # is_maker_ask false: the maker (bid, 41234) bought, closing its short; the taker (ask) is
    # the deleveraged LLP pool.
    assert (winner.kind, winner.user, winner.side, winner.coin) == (ADL, "41234", BUY, "ETH")
    assert winner.start_position == -3.0
    assert winner.closed_pnl == pytest.approx(2 * (2800.0 - 2600.0))  # entry 8400/3 = 2800
    assert winner.liquidation.liquidated_user == POOL and winner.liquidation.mark_px == 2601.5
    assert winner.dir == "deleverage" and winner.tid == 886492500
    assert winner.liquidation.entry_px == 2800.0  # 8400 / |-3|: the winner's capacity at the mark
    assert (taker.kind, taker.user, taker.side, taker.start_position) == (CLOSE, POOL, SELL, 10.0)
    assert taker.closed_pnl == pytest.approx(2 * (2600.0 - 2800.0))  # entry 28000/10
    assert p.stats["capacity_unknown"] == 0


def test_deleverage_without_position_fields_says_the_capacity_is_not_public():
    p = LighterParser()
    (w,) = p.parse(ws(frame(trade())))
    # is_maker_ask true: the maker (ask, 7) sold: the winner's long was closed.
    assert (w.kind, w.user, w.side, w.start_position, w.closed_pnl) == (ADL, "7", SELL, 2.0, 0.0)
    assert w.liquidation.liquidated_user == "9" and w.dir == "deleverage" + NO_POSITION_DIR
    assert w.liquidation.entry_px is None
    assert p.stats["capacity_unknown"] == 1 and p.stats["adl_without_mark"] == 1


@pytest.mark.parametrize("array", ["trades", "liquidation_trades"])
def test_deleverage_is_adl_in_either_array_and_in_snapshots(array):
    for kind in ("subscribed/trade", "update/trade"):
        p = LighterParser()
        obj = {"type": kind, "channel": "trade:0", array: [trade()]}
        assert [f.kind for f in p.parse(ws(obj))] == [ADL]


def test_numbers_as_strings_and_as_numbers_give_the_same_events():
    as_str = trade(size="2.5", price="100.25", maker_position_size_before="4",
                   maker_entry_quote_before="380", trade_id="10")
    as_num = trade(size=2.5, price=100.25, maker_position_size_before=4,
                   maker_entry_quote_before=380, trade_id=10)
    a = LighterParser().parse(ws(frame(as_str)))
    b = LighterParser().parse(ws(frame(as_num)))
    assert a == b and a[0].closed_pnl == pytest.approx(2.5 * (100.25 - 95.0))


def test_trade_id_str_twin_is_the_dedupe_key_when_trade_id_is_absent():
    p = LighterParser()
    assert len(p.parse(ws(frame(trade(trade_id=None, trade_id_str="77"))))) == 1
    assert p.parse(ws(frame(trade(trade_id=77)))) == []
    assert p.stats["duplicates"] == 1


def test_resent_snapshot_is_deduplicated_on_trade_id():
    p = LighterParser()
    first = p.parse(ws(frame(trade(trade_id=1), trade(trade_id=2), kind="subscribed/trade")))
    again = p.parse(ws(frame(trade(trade_id=1), trade(trade_id=2), trade(trade_id=3),
                             kind="subscribed/trade")))
    assert [f.tid for f in first] == [1, 2] and [f.tid for f in again] == [3]
    assert p.stats["duplicates"] == 2


def test_liquidation_feeds_the_liquidation_kind_not_waves_and_market_settlement_is_not_adl():
    p = LighterParser()
    evs = p.parse(ws(frame(liq=[trade(type="liquidation", taker_position_size_before="-2",
                                      maker_position_size_before="0")])))
    assert [(f.kind, f.user) for f in evs] == [(LIQUIDATION, "9"), (OPEN, "7")]
    evs = p.parse(ws(frame(trade(trade_id=11, type="market-settlement", taker_position_size_before="-2",
                                 maker_position_size_before="2"))))
    assert [f.kind for f in evs] == [CLOSE, CLOSE] and all(f.liquidation is None for f in evs)


def test_mark_is_the_last_market_stats_mark_at_or_before_the_trade_time():
    p = LighterParser()
    p.parse(ws(stats(1000, m0="100")))
    p.parse(ws(stats(3000, m0="120")))  # after the trade: not its mark
    p.parse(ws(stats(2000, m0="110")))  # late frame, still the last mark <= t
    (w,) = p.parse(ws(frame(trade(timestamp=2000))))
    assert w.liquidation.mark_px == 110.0
    (w,) = p.parse(ws(frame(trade(trade_id=11, timestamp=1999))))
    assert w.liquidation.mark_px == 100.0


def test_single_market_stats_and_frames_without_timestamp_use_the_receive_time():
    p = LighterParser()
    obj = {"type": "update/market_stats", "channel": "market_stats:3",
           "market_stats": {"market_id": 3, "symbol": "SOL", "mark_price": "150.5"}}
    (m,) = p.parse(ws(obj, t=5555))
    assert (m.coin, m.mark_px, m.time_ms, m.oracle_px) == ("SOL", 150.5, 5555, None)
    assert p.stats["marks_at_receive_time"] == 1


def test_rest_answers_names_pool_account_and_backfill():
    p = LighterParser()
    p.parse(rest("/api/v1/orderBooks", {"code": 200, "order_books": [
        {"symbol": "ETH", "market_id": 0}, {"symbol": "BTC", "market_id": 1}]}))
    p.parse(rest("/api/v1/systemConfig", {"code": 200, "liquidity_pool_index": LLP_MAINNET}))
    acct = {"code": 200, "accounts": [{"index": LLP_MAINNET, "total_asset_value": "1000000.5",
                                       "collateral": "900000", "positions": [
        {"market_id": 0, "symbol": "ETH", "sign": -1, "position": "10", "avg_entry_price": "2500",
         "position_value": "26000"},
        {"market_id": 1, "symbol": "BTC", "sign": 1, "position": "0", "avg_entry_price": "0",
         "position_value": "0"}]}]}
    snap, fund = p.parse(rest(f"/api/v1/account?by=index&value={LLP_MAINNET}", acct, t=777))
    assert isinstance(snap, AccountSnapshot) and snap.user == POOL and snap.account_value == 1000000.5
    assert [(x.coin, x.size, x.entry_px, x.mark_px) for x in snap.positions] == [("ETH", -10.0, 2500.0, 2600.0)]
    assert fund == InsuranceFund("lighter", "llp", 1000000.5, 777)
    # recentTrades is newest first; events come out in time order, deduplicated with the feed.
    p.parse(ws(frame(trade(trade_id=5, timestamp=1500))))
    back = p.parse(rest("/api/v1/recentTrades?market_id=0&limit=3", {"code": 200, "trades": [
        trade(trade_id=6, timestamp=1600), trade(trade_id=5, timestamp=1500),
        trade(trade_id=4, timestamp=1400)]}))
    assert [(f.tid, f.coin) for f in back] == [(4, "ETH"), (6, "ETH")]


def test_connection_marks_give_a_feed_gap_per_channel_after_a_reconnect():
    p = LighterParser()
    assert p.parse(CaptureRecord(100, "lighter", "c0", "open", "")) == []
    p.parse(ws({"type": "connected", "session_id": "x"}, t=150))
    assert p.parse(CaptureRecord(200, "lighter", "c0", "close", "", {"reason": "abnormal_1006"})) == []
    gaps = p.parse(CaptureRecord(900, "lighter", "c0", "open", ""))
    assert gaps == [FeedGap("lighter", "trade", 150, 900, "reconnect"),
                    FeedGap("lighter", "market_stats", 150, 900, "reconnect")]


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("raw, reason", [
    ("not json", "bad_json"),
    ("[1, 2]", "bad_value"),
    ('{"channel": "trade:0"}', "missing_field"),
    ('{"type": "update/orderbook", "channel": "order_book:0"}', "unknown_variant"),
    ('{"type": "surprise"}', "unknown_variant"),
    ('{"type": "update/trade", "trades": {"a": 1}}', "bad_value"),
    ('{"type": "update/market_stats", "market_stats": 5}', "missing_field"),
])
def test_malformed_frames_raise_parse_errors_with_a_reason(raw, reason):
    with pytest.raises(ParseError) as exc:
        LighterParser().parse(ws(raw))
    assert exc.value.reason == reason


@pytest.mark.parametrize("over, reason", [
    ({"type": "self-trade"}, "unknown_variant"),
    ({"type": None}, "missing_field"),
    ({"size": "abc"}, "bad_number"),
    ({"price": "-1"}, "bad_value"),
    ({"price": "nan"}, "bad_number"),
    ({"is_maker_ask": "yes"}, "bad_value"),
    ({"timestamp": None}, "missing_field"),
    ({"ask_account_id": 1.5}, "bad_number"),
    ({"trade_id": None}, "missing_field"),
])
def test_a_bad_trade_is_counted_and_the_frames_other_trades_are_kept(over, reason):
    p = LighterParser()
    events = p.parse(ws(frame(trade(trade_id=1), trade(**{"trade_id": 2, **over}), trade(trade_id=3))))
    assert [f.tid for f in events] == [1, 3]
    assert p.rejected == {reason: 1}


def test_rest_answer_without_its_request_or_of_an_unknown_path_is_an_error():
    p = LighterParser()
    with pytest.raises(ParseError):
        p.parse(CaptureRecord(0, "lighter", "rest", "rest", "{}"))
    with pytest.raises(ParseError) as exc:
        p.parse(rest("/api/v1/funding", {"code": 200}))
    assert exc.value.reason == "unknown_variant"


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=5),
    max_leaves=20)
_keys = st.sampled_from(list(trade()) + ["trade_id_str", "maker_position_size_before",
                                         "taker_position_size_before", "maker_entry_quote_before"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(_keys, _json), max_size=6), st.sampled_from(
    ["update/trade", "subscribed/trade", "update/market_stats", "connected", "x"]), _json)
def test_fuzz_any_frame_gives_events_or_parse_error_never_another_exception(edits, kind, stats_v):
    tr = trade()
    for k, v in edits:
        tr[k] = v
    obj = {"type": kind, "trades": [tr], "liquidation_trades": [copy.deepcopy(tr)],
           "market_stats": stats_v, "timestamp": tr.get("timestamp")}
    p = LighterParser()
    try:
        events = p.parse(ws(orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS).decode()
                            if _dumpable(obj) else "{}"))
    except ParseError:
        return
    assert all(isinstance(e, (Fill, Mark)) for e in events)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(_keys, _json | st.sampled_from(["1.5", "-2", "", "nan", "1e3", " 7 "])),
                max_size=6))
def test_the_fast_path_decodes_exactly_what_the_checked_path_does(edits):
    tr = trade(maker_position_size_before="4", taker_fee=450)
    for k, v in edits:
        tr[k] = v
    fast = _fast_trade(tr)
    try:
        checked = _checked_trade(tr)
    except ParseError:
        assert fast is None
        return
    assert fast is None or fast == checked


def _dumpable(obj) -> bool:
    try:
        orjson.dumps(obj, option=orjson.OPT_NON_STR_KEYS)
        return True
    except (TypeError, orjson.JSONEncodeError):
        return False


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_raw_bytes_never_raise_another_exception(raw):
    try:
        LighterParser().parse(ws(raw.decode("utf-8", "replace")))
    except ParseError:
        pass


# ----------------------------------------------------------------------------- with the engine

def test_closed_pnl_is_realized_on_the_closed_part_only():
    assert closed_pnl(3.0, 300.0, SELL, 120.0, 5.0) == pytest.approx(3 * 20.0)  # flip: 3 closed
    assert closed_pnl(-3.0, 300.0, BUY, 90.0, 1.0) == pytest.approx(10.0)
    assert closed_pnl(3.0, 300.0, BUY, 90.0, 1.0) == 0.0  # increases
    assert closed_pnl(3.0, None, SELL, 90.0, 1.0) == 0.0


def test_engine_wave_b_and_h_by_hand():
    """Two ADL fills of two winners, marks before and after: B and H(Δ) computed by hand."""
    p = LighterParser()
    eng = Engine("lighter", gap_ms=5000, horizons_ms=(0, 1000))
    recs = [
        ws(stats(1000, m0="100", m1="50")),
        # winner 7 (long closed by selling 2 @ 99; mark 100): B += 1·2
        ws(frame(trade(trade_id=1, timestamp=1500, price="99", size="2", is_maker_ask=True,
                       maker_position_size_before="5", maker_entry_quote_before="400"))),
        ws(stats(1800, m0="97", m1="52")),
        # winner 8 (short closed by buying 4 @ 53 on market 1; mark 52): B += 1·4
        ws({"type": "update/trade", "channel": "trade:1", "trades": [trade(
            trade_id=2, market_id=1, timestamp=2000, price="53", size="4", is_maker_ask=False,
            bid_account_id=8, ask_account_id=9)]}),
        ws(stats(2500, m0="95", m1="54")),
        ws(stats(3200, m0="90", m1="60")),
        ws(stats(9000, m0="90", m1="60")),
    ]
    waves = []
    for r in recs:
        for e in p.parse(r):
            waves += eng.apply(e)
    waves += eng.finish()
    (w,) = waves
    assert (w.t_start_ms, w.t_end_ms, w.adl_fills, w.accounts) == (1500, 2000, 2, 2)
    assert w.needed_usd == pytest.approx(2 * 1 + 4 * 1)
    # H(0): marks at t_end = 2000 are (97, 52). Winner 7: +1·2·(97 − 99) = −4 -> 0;
    # winner 8: −1·4·(52 − 53) = +4.
    assert w.production_haircut_usd[0] == pytest.approx(4.0)
    # H(1000): marks at 3000 are (95, 54): 7: 2·(95 − 99) < 0; 8: −4·(54 − 53) < 0.
    assert w.production_haircut_usd[1000] == pytest.approx(0.0)
    assert w.deficit_source == "unknown"  # losers 9 unknown to the ledger: D is not zero, unknown
    # Capacities (issue 10): winner 7 held 5 long at entry 400/5 = 80, mark 100 at its fill:
    # u = 5·(100 − 80) = 100. Winner 8's trade has no position fields: nothing known (0).
    win = Winners(w)
    assert dict(zip(win.users, win.upnl)) == pytest.approx({"7": 100.0, "8": 0.0})


def test_an_adl_fill_keeps_its_entry_across_the_nats_encoding():
    from adlmon.bus.nats import decode, encode

    p = LighterParser()
    p.parse(ws(stats(1000, m0="101")))
    (w,) = p.parse(ws(frame(trade(maker_position_size_before="5", maker_entry_quote_before="400"))))
    assert decode(encode([w])) == [w] and w.liquidation.entry_px == 80.0
    # Without a mark (NaN: JSON null on the wire) the ADL fill still crosses the bus.
    (u,) = LighterParser().parse(ws(frame(trade(trade_id=11))))
    (back,) = decode(encode([u]))
    assert math.isnan(back.liquidation.mark_px) and back.user == u.user and back.kind == ADL


def test_the_time_merge_puts_connections_in_time_order_and_finish_releases_the_rest():
    p = LighterParser(hold_ms=500)
    # Shard 1's trade at 2000 arrives before shard 0's marks of 1000 and 1900 (receive times).
    assert p.parse(ws(frame(trade(trade_id=1, timestamp=2000)), t=2010, src="s1")) == []
    first = p.parse(ws(stats(1000, m0="100"), t=2020, src="s0"))  # 500 ms old already: out
    assert [e.time_ms for e in first] == [1000]
    assert p.parse(ws(stats(1900, m0="101"), t=2100, src="s0")) == []  # the trade still waits
    out = p.parse(ws(stats(2700, m0="102"), t=2600, src="s0"))
    assert [(type(e).__name__, e.time_ms) for e in out] == [("Mark", 1900), ("Fill", 2000)]
    assert out[1].liquidation.mark_px == 101.0  # M(t) from the marks whatever their arrival
    assert p.merge.late == 0
    assert [e.time_ms for e in p.finish()] == [2700]
