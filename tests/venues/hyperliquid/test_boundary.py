"""The typed boundary at the Hyperliquid parsers (issue 9 "What was found"): every
reproduction in its parsers, REST answers, node lines and snapshot files is
refused as a counted ``ParseError``; nothing of the wrong type reaches the engine."""

from __future__ import annotations

import orjson
import pytest
from aiohttp import web

from adlmon import validate
from adlmon.engine.engine import Engine
from adlmon.events import Fill, LedgerUpdate, ParseError
from adlmon.net.rest import RestClient, WeightLimiter
from adlmon.venues.hyperliquid import parse, snapshot
from adlmon.venues.hyperliquid.rest import InfoClient, Vault, VaultStatePoller, poll_winners
from tests.local_http import serve_post

U1 = "0x" + "1" * 40
U2 = "0x" + "2" * 40


def ws_fill(**over) -> dict:
    f = {"coin": "SOL", "px": "72.153", "sz": "0.58", "side": "A", "time": 1782636233257,
         "startPosition": "-162.6", "dir": "Auto-Deleveraging", "closedPnl": "1.5",
         "hash": "0xdc25", "oid": 1, "crossed": False, "fee": "0.0", "tid": 340554939716632}
    f.update(over)
    return {k: v for k, v in f.items() if v is not None}


def reason(fn, *args, **kw) -> str:
    with pytest.raises(ParseError) as err:
        fn(*args, **kw)
    return err.value.reason


# ----------------------------------------------------------------------------- websocket

def test_a_user_events_liquidation_whose_liquidated_user_is_an_object_is_refused():
    msg = {"channel": "user", "data": {"liquidation": {
        "lid": 1, "liquidator": U2, "liquidated_user": {"x": 1}, "liquidated_ntl_pos": "1",
        "liquidated_account_value": "-3.5"}}}
    assert reason(parse.parse_ws_message, msg, user=U1, recv_ms=5) == "bad_value"
    # the engine never saw it, so it still applies the next good event
    good = parse.parse_ws_message({"channel": "user", "data": {"liquidation": {
        "liquidated_user": U2, "liquidated_account_value": "-3.5"}}}, user=U1, recv_ms=5)
    assert good == [LedgerUpdate("hyperliquid", U2, "liquidation", 0.0, 5, -3.5)]
    assert Engine().apply(good[0]) == []


@pytest.mark.parametrize("msg", [
    {"channel": "activeAssetCtx", "data": {"coin": ["BTC"], "ctx": {"markPx": "1"}}},
    {"channel": "trades", "data": [{"coin": ["BTC"], "px": "1", "time": 5}]},
    {"channel": "clearinghouseState", "data": {"user": U1, "clearinghouseState": {
        "marginSummary": {"accountValue": "1"},
        "assetPositions": [{"position": {"coin": ["BTC"], "szi": "1", "entryPx": "1"}}]}}},
    {"channel": "userFills", "data": {"user": U1, "fills": [ws_fill(coin=["SOL"])]}},
    {"channel": "userFills", "data": {"user": {"u": 1}, "fills": [ws_fill()]}},
    {"channel": "userFills", "data": {"user": U1, "fills": 5}},
    {"channel": "userFundings", "data": {"user": U1, "fundings": [{"coin": 5, "usdc": "1", "time": 1}]}},
    {"channel": ["user"], "data": {}},
    {"channel": "allMids", "data": {"mids": ["BTC", "1"]}},
    {"channel": "userFills", "data": [1, 2]},
])
def test_a_list_or_object_where_a_name_belongs_is_refused(msg):
    assert reason(parse.parse_ws_message, msg, user=U1, recv_ms=5) in ("bad_value", "missing_field")


@pytest.mark.parametrize("over, why", [
    ({"time": 2 ** 63}, "out_of_range"),
    ({"time": -1}, "out_of_range"),
    ({"time": 10 ** 20}, "out_of_range"),
    ({"tid": 2 ** 64}, "out_of_range"),
    ({"tid": -5}, "out_of_range"),
    ({"tid": "1.5"}, "bad_value"),
    ({"hash": ["0x"]}, "bad_value"),
    ({"dir": 5}, "bad_value"),
    ({"coin": ""}, "missing_field"),
    ({"coin": "X" * 1000}, "bad_value"),
    ({"liquidation": {"liquidatedUser": U1, "markPx": "1", "method": {"m": 1}}}, "bad_value"),
])
def test_times_and_ids_that_do_not_fit_the_wave_arrays_are_refused_on_every_path(over, why):
    # one fill (the fill-by-fill path) and a block of 20 (the block path) say the same
    assert reason(parse.fill_rows, [(U1, ws_fill(**over))]) == why
    block = [(U1, ws_fill(tid=i)) for i in range(20)] + [(U1, ws_fill(**over))]
    errors: list = []
    rows = parse.fill_rows(block, errors=errors)
    assert len(rows) == 20 and [(i, e.reason) for i, e in errors] == [(20, why)]


def test_the_largest_time_and_id_still_pass_and_build_the_wave_arrays():
    f = ws_fill(time=validate.MAX_TIME_MS - 10_000, tid=validate.INT64_MAX,
                liquidation={"liquidatedUser": U2, "markPx": "70.0", "method": "backstop"})
    rows = parse.fill_rows([(U1, f)] * 13)  # the block path
    assert rows == parse.fill_rows([(U1, f)])  * 13  # the fill-by-fill path
    engine = Engine("hyperliquid", 5000, (0,))
    engine.apply_fill_rows(rows)
    (wave,) = engine.finish()
    assert wave.adl_fills == 13
    assert wave.t_start_ms == validate.MAX_TIME_MS - 10_000


# ----------------------------------------------------------------------------- node lines

@pytest.mark.parametrize("line, why", [
    ({"time": 5, "hash": "0x", "inner": {"LedgerUpdate": {"users": 5, "delta": {"type": "deposit", "usdc": "1"}}}},
     "bad_value"),
    ({"time": 5, "hash": "0x", "inner": {"LedgerUpdate": {"users": [{"a": 1}], "delta": {"type": "deposit", "usdc": "1"}}}},
     "bad_value"),
    ({"time": "²", "hash": "0x", "inner": {"CDeposit": {"user": U1, "amount": "1"}}}, "bad_number"),
    ({"time": "1" * 30, "hash": "0x", "inner": {"CDeposit": {"user": U1, "amount": "1"}}}, "out_of_range"),
    ({"time": "9999-99-99T00:00:00", "hash": "0x", "inner": {"CDeposit": {"user": U1, "amount": "1"}}},
     "bad_number"),
    ({"time": 5, "hash": "0x", "inner": {"CDeposit": {"user": [U1], "amount": "1"}}}, "bad_value"),
    ({"time": 5, "hash": "0x", "inner": {"Funding": {"deltas": 5}}}, "bad_value"),
    ({"time": 5, "hash": "0x", "inner": {"Funding": {"deltas": [5]}}}, "bad_value"),
    ({"time": 5, "hash": "0x", "inner": {"LedgerUpdate": {"users": [U1], "delta": {"type": ["deposit"]}}}},
     "bad_value"),
    ({"time": 5, "hash": "0x", "inner": {"LedgerUpdate": {"users": [U1], "delta": {
        "type": "internalTransfer", "usdc": "1", "destination": {"d": 1}}}}}, "bad_value"),
    ({"time": 5, "hash": "0x", "inner": {"Delegation": {"user": 7}}}, "bad_value"),
    ({"time": 5, "delta": {"type": "deposit", "usdc": "1"}, "user": ["x"]}, "bad_value"),
    ({"events": 5, "block_number": 1}, "bad_value"),
])
def test_a_bad_node_line_is_a_parse_error_not_a_type_error(line, why):
    assert reason(parse.parse_node_line, orjson.dumps(line)) == why


def test_a_by_block_misc_line_keeps_its_good_events_and_counts_the_bad_one():
    line = {"events": [{"time": 5, "hash": "0x", "inner": {"CDeposit": {"user": U1, "amount": "2"}}},
                       {"time": 6, "hash": "0x", "inner": {"LedgerUpdate": {"users": 5, "delta": {
                           "type": "deposit", "usdc": "1"}}}}]}
    errors: list = []
    events = parse.parse_node_line(orjson.dumps(line), errors=errors)
    assert [e.user for e in events] == [U1] and [(i, e.reason) for i, e in errors] == [(1, "bad_value")]


# ----------------------------------------------------------------------------- REST answers

@pytest.fixture
async def info_server():
    """A real info endpoint on 127.0.0.1 answering ``state["answers"][user]``."""
    state = {"answers": {}, "calls": 0}

    async def info(request: web.Request) -> web.Response:
        body = await request.json()
        state["calls"] += 1
        return web.Response(body=orjson.dumps(state["answers"][body["user"]]),
                            content_type="application/json")

    async with serve_post("/info", info) as url:
        client = InfoClient(RestClient(url, WeightLimiter(1200), max_attempts=1))
        yield client, state
        await client.close()


GOOD_STATE = {"marginSummary": {"accountValue": "100.0"}, "time": 1000, "assetPositions": [
    {"type": "oneWay", "position": {"coin": "BTC", "szi": "1", "entryPx": "10", "positionValue": "12",
                                    "unrealizedPnl": "2.0"}}]}


async def test_a_winner_whose_clearinghouse_state_has_asset_positions_5_is_skipped(info_server):
    info, state = info_server
    u3 = "0x" + "3" * 40
    bad_pnl = {**GOOD_STATE, "assetPositions": [{"position": {
        "coin": "BTC", "szi": "1", "entryPx": "1", "unrealizedPnl": [1]}}]}
    state["answers"] = {U1: {**GOOD_STATE, "assetPositions": 5}, u3: bad_pnl, U2: GOOD_STATE}
    snaps, records = await poll_winners(info, [U1, u3, U2], max_users=5, budget_s=30, now_ms=lambda: 7)
    assert [s.user for s in snaps] == [U2] and state["calls"] == 3
    assert records[0]["pnl_capacity_usd"] == 2.0


@pytest.mark.parametrize("poison", [
    {**GOOD_STATE, "assetPositions": 5},
    {**GOOD_STATE, "assetPositions": [5]},
    {**GOOD_STATE, "marginSummary": 5},
    {**GOOD_STATE, "time": "²"},
    [1, 2],
])
async def test_a_vault_poll_with_a_poisoned_answer_counts_an_error_and_keeps_polling(info_server, poison):
    info, state = info_server
    state["answers"] = {U1: poison}
    published = []

    async def publish(events):
        published.extend(events)

    poller = VaultStatePoller(info, [Vault(U1, "HLP Liquidator")], publish, interval_s=0.01, now_ms=lambda: 7)
    await poller.poll_once()
    assert poller.states[U1].errors == 1 and published == [] and not poller.bootstrapped
    state["answers"] = {U1: GOOD_STATE}  # the venue recovers: so does the poller
    await poller.poll_once()
    assert poller.bootstrapped and published[0].account_value == 100.0


# ----------------------------------------------------------------------------- snapshots

@pytest.mark.parametrize("doc", [
    [{"user": ["x"], "account_value": "1"}],
    [{"user": {"u": 1}, "account_value": "1"}],
    [5],
    {"accounts": [{"user": U1, "account_value": [1]}]},
])
def test_account_value_entries_of_the_wrong_type_are_refused(doc):
    assert reason(snapshot.parse_account_values, doc) in ("bad_value", "bad_number", "missing_field")


@pytest.mark.parametrize("doc", [
    [{"market_name": ["BTC"], "positions": []}],
    [{"market_name": "BTC", "positions": 5}],
    [{"market_name": "BTC", "positions": [5]}],
    [{"market_name": "BTC", "positions": [{"user": ["x"], "size": "1", "entry_price": "1"}]}],
    [{"market_name": "BTC", "positions": [{"user": U1, "size": "1", "entry_price": "1", "side": ["s"]}]}],
    [{"market_name": "BTC", "positions": [{"user": U1, "size": "1e-300", "entry_price": "1",
                                           "notional_size": "1e300", "account_value": "1"}]}],
    {"BTC": 5},
])
def test_position_entries_of_the_wrong_type_are_refused(doc):
    assert reason(snapshot.parse_positions_by_market, doc) in ("bad_value", "bad_number", "missing_field",
                                                              "out_of_range")


def test_a_truncated_snapshot_lz4_is_an_input_error_naming_the_file(tmp_path):
    import lz4.frame

    path = tmp_path / "account_value_snapshot_1_1000.json.lz4"
    data = lz4.frame.compress(orjson.dumps([{"user": U1, "account_value": "1"}] * 5000))
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match="ends early"):
        snapshot.load_snapshot([path])
