"""Every fuzzed entry point, one ``register`` line each (tests/fuzz/harness.py).

Seeds are documented or recorded inputs (tests/fixtures/<venue>/, docs/venues.md
shapes). Other venues add their parsers here, one line per channel/parser.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import orjson

from adlmon.bus import nats as nats_bus
from adlmon.config import ConfigError, parse_config
from adlmon.venues.binance import parse as binance
from adlmon.venues.bybit import fake as byf
from adlmon.venues.bybit import parse as bybit
from adlmon.venues.dydx import parse as dydx
from adlmon.venues.hyperliquid import parse as hl
from adlmon.venues.okx import fake as okf
from adlmon.venues.okx import parse as okx
from adlmon.venues.hyperliquid import snapshot as hl_snap

from tests.fuzz.harness import register

ROOT = Path(__file__).resolve().parents[2]
HL = ROOT / "tests" / "fixtures" / "hyperliquid"
U1, U2, U3 = ("0x" + c * 40 for c in "123")


def _lines(path: Path) -> list:
    return [orjson.loads(x) for x in path.read_bytes().splitlines() if x.strip()]


def _fill(**over) -> dict:
    f = {"coin": "SOL", "px": "72.153", "sz": "0.58", "side": "A", "time": 1782636233257,
         "startPosition": "-162.6", "dir": "Auto-Deleveraging", "closedPnl": "1.5", "hash": "0xdc25",
         "oid": 1, "crossed": False, "fee": "-0.001", "tid": 340554939716632, "feeToken": "USDC",
         "liquidation": {"liquidatedUser": U2, "markPx": "72.0", "method": "backstop"}}
    f.update(over)
    return {k: v for k, v in f.items() if v is not None}


# -- seeds -------------------------------------------------------------------------------
NODE_BLOCKS = _lines(HL / "cascade" / "node_fills_by_block.jsonl") + _lines(HL / "adl_block_758800641.jsonl")
# a block of >= 12 fills takes the block path of parse.fill_rows
NODE_BLOCKS.append({"block_number": 9, "events": [[U1 if i % 2 else U3, _fill(tid=i, time=1782636233257)]
                                                   for i in range(16)]})
NODE_FILLS = [[U1, _fill()], {**_fill(dir="Close Long", liquidation=None), "user": U3}]
MISC = _lines(HL / "cascade" / "misc_events.jsonl") + [
    {"time": 5, "hash": "0x", "inner": {"CDeposit": {"user": U1, "amount": "10"}}},
    {"time": 6, "hash": "0x", "inner": {"LedgerUpdate": {"users": [U1, U2], "delta": {
        "type": "internalTransfer", "usdc": "1", "fee": "0.1", "destination": U2}}}},
    {"time": 7, "hash": "0x", "inner": {"LedgerUpdate": {"users": [U1], "delta": {
        "type": "vaultWithdraw", "vault": U2, "netWithdrawnUsd": "1", "requestedUsd": "1.1"}}}},
    {"time": "2025-10-10T21:16:04.831874687", "hash": "0x", "delta": {"type": "liquidation",
                                                                      "accountValue": "-3", "user": U1}}]
MISC_BY_BLOCK = [{"local_time": "x", "block_number": 1, "events": MISC[:3]}]
CLEARINGHOUSE = {
    "assetPositions": [{"type": "oneWay", "position": {
        "coin": "BTC", "entryPx": "26951.0", "positionValue": "211.64542", "szi": "-0.00785",
        "unrealizedPnl": "-0.08007", "leverage": {"type": "cross", "value": 20}}}],
    "marginSummary": {"accountValue": "1182.312496", "totalNtlPos": "3434.8"},
    "crossMarginSummary": {"accountValue": "1182.312496"}, "time": 1760130964831}
META = [{"universe": [{"name": "BTC", "szDecimals": 5}, {"name": "OLD", "isDelisted": True},
                      {"name": "ETH"}]},
        [{"markPx": "100.5", "oraclePx": "100.0"}, {"markPx": None}, {"markPx": "5.25", "oraclePx": "5.2"}]]
WS = {
    "userFills": [{"channel": "userFills", "data": {"user": U1, "isSnapshot": True,
                                                    "fills": [_fill(), _fill(tid=2, dir="Open Long")]}}],
    "user": [{"channel": "user", "data": {"fills": [_fill()]}},
             {"channel": "user", "data": {"funding": {"time": 5, "coin": "ETH", "usdc": "-0.25"}}},
             {"channel": "user", "data": {"liquidation": {"lid": 1, "liquidator": U3, "liquidated_user": U2,
                                                          "liquidated_account_value": "-3.5"}}}],
    "userFundings": [{"channel": "userFundings", "data": {"user": U1, "fundings": [
        {"time": 5, "coin": "ETH", "usdc": "-0.25", "szi": "1", "fundingRate": "0.0001"}]}}],
    "userNonFundingLedgerUpdates": [{"channel": "userNonFundingLedgerUpdates", "data": {
        "user": U1, "nonFundingLedgerUpdates": [{"time": 5, "hash": "0x", "delta": {"type": "deposit",
                                                                                   "usdc": "3"}}]}}],
    "activeAssetCtx": [{"channel": "activeAssetCtx", "data": {"coin": "BTC", "ctx": {
        "markPx": "108416.0", "oraclePx": "108400.5", "funding": "0.0001"}}}],
    "allMids": [{"channel": "allMids", "data": {"mids": {"BTC": "30135.0", "@107": "1.0", "kPEPE": "0.0015"}}}],
    "trades": [{"channel": "trades", "data": [
        {"coin": "BTC", "side": "B", "px": "100.0", "sz": "1", "hash": "0x", "time": 10, "tid": 1, "users": [U1, U2]},
        {"coin": "ETH", "side": "A", "px": "5.0", "sz": "1", "hash": "0x", "time": 11, "tid": 3, "users": [U1, U2]}]}],
    "clearinghouseState": [{"channel": "clearinghouseState", "data": {"user": U1,
                                                                      "clearinghouseState": CLEARINGHOUSE}}],
}
ACCOUNT_VALUES = [orjson.loads((HL / "cascade" / "account_value_snapshot_758750000_1760130900000.json").read_bytes()),
                  {U1: "10.5", U2: {"account_value": 3}}]
POSITIONS = [orjson.loads((HL / "cascade" / "perp_positions_by_market_758750000_1760130900000.json").read_bytes()),
             {"BTC": [{"user": U1, "szi": "1", "entryPx": "10", "side": "short", "positionValue": "11"}]}]
CONFIG = [tomllib.loads((ROOT / "config.toml").read_text())]


def _snapshot_events(values_doc, positions_doc=None):
    positions, pv = hl_snap.parse_positions_by_market(positions_doc) if positions_doc is not None else ({}, {})
    values = hl_snap.parse_account_values(values_doc) if values_doc is not None else {}
    return hl_snap.snapshot_events(values, positions, 1760130900000, position_values=pv)


# -- Hyperliquid: websocket channels, node lines, REST answers, snapshots ----------------
for channel, seeds in WS.items():
    register(f"hyperliquid.ws.{channel}", lambda m: hl.parse_ws_message(m, user=U1, recv_ms=1760130964831), seeds)
register("hyperliquid.node.node_fills_by_block", hl.parse_node_line, NODE_BLOCKS, form="bytes")
register("hyperliquid.node.node_fills", hl.parse_node_line, NODE_FILLS, form="bytes")
register("hyperliquid.node.misc_events", hl.parse_node_line, MISC, form="bytes")
register("hyperliquid.node.misc_events_by_block", hl.parse_node_line, MISC_BY_BLOCK, form="bytes")
register("hyperliquid.node.block_fill_rows", hl.block_fill_rows, NODE_BLOCKS)
register("hyperliquid.rest.clearinghouseState", lambda o: hl.parse_clearinghouse_state(U1, o, 7), [CLEARINGHOUSE])
register("hyperliquid.rest.unrealized_pnl", hl.unrealized_pnl, [CLEARINGHOUSE], events=False)
register("hyperliquid.rest.metaAndAssetCtxs", lambda o: hl.parse_meta_and_asset_ctxs(o, 7), [META])
register("hyperliquid.rest.perp_coins", hl.perp_coins, [META], events=False)
register("hyperliquid.rest.vaultDetails.children", hl.vault_children,
         [{"relationship": {"type": "parent", "data": {"childAddresses": [U1, U2]}}}], events=False)
register("hyperliquid.rest.vaultDetails.name", hl.vault_name, [{"name": "HLP Liquidator 2", "leader": U3}],
         events=False)
register("hyperliquid.snapshot.account_values", _snapshot_events, ACCOUNT_VALUES)
register("hyperliquid.snapshot.positions_by_market", lambda d: _snapshot_events(None, d), POSITIONS)
# -- Bybit, OKX, Binance (issue 11): public frames, REST answers, private streams ----------
def _fx(venue: str, name: str):
    return orjson.loads((ROOT / "tests" / "fixtures" / venue / name).read_bytes())


def _okx():
    return okx.OkxParser({"IOST-USDT-SWAP": 1000.0, "BTC-USDT-SWAP": 0.01, "ETH-USDT-SWAP": 0.1})


register("bybit.ws", lambda m: bybit.BybitParser().parse_obj(m),
         [_fx("bybit", n) for n in ("adl_alert_numbers.json", "adl_alert_strings.json", "all_liquidation.json",
                                     "insurance_ws.json", "tickers.json")]
         + [orjson.loads(byf.execution(5, "BTCUSDT", "Sell", "60000", "1", "61000", "e1")[1]),
            orjson.loads(byf.position(5, "BTCUSDT", "Buy", "2", "50000", 5)[1])])
register("bybit.rest.adlAlert", lambda b: bybit.BybitParser().parse_rest("/v5/market/adlAlert", b),
         [_fx("bybit", "rest_adl_alert.json")], form="bytes")
register("bybit.rest.insurance", lambda b: bybit.BybitParser().parse_rest("/v5/market/insurance", b),
         [_fx("bybit", "rest_insurance.json")], form="bytes")
register("okx.ws", lambda m: _okx().parse_obj(m),
         [_fx("okx", n) for n in ("adl_warning_v1.json", "adl_warning_v2.json", "liquidation_orders.json",
                                  "mark_price.json")]
         + [orjson.loads(okf.order_fill(5, "BTC-USDT-SWAP", "buy", "60000", "100", "59000", "a1")[1]),
            orjson.loads(okf.position(5, "BTC-USDT-SWAP", "-200", "70000", "5")[1])])
register("okx.rest.insurance-fund",
         lambda b: _okx().parse_rest("/api/v5/public/insurance-fund", b),
         [_fx("okx", "rest_insurance_fund.json")], form="bytes")
register("okx.rest.instruments", lambda b: _okx().parse_rest("/api/v5/public/instruments", b),
         [_fx("okx", "rest_instruments.json")], form="bytes")
register("binance.ws", lambda m: binance.BinanceParser().parse_obj(m),
         [_fx("binance", n) for n in ("force_order_raw.json", "force_order_combined.json", "mark_price_arr.json")]
         + [{"e": "ORDER_TRADE_UPDATE", "E": 3, "T": 3, "o": {
             "s": "BTCUSDT", "c": "adl_autoclose", "S": "BUY", "x": "TRADE", "X": "FILLED", "l": "1.5",
             "L": "64000", "i": 7, "t": 99, "T": 3, "rp": "9000", "n": "0"}},
            {"e": "ACCOUNT_UPDATE", "E": 1, "T": 1, "a": {"P": [{"s": "BTCUSDT", "pa": "-2", "ep": "70000"}]}}])
register("binance.rest.insuranceBalance",
         lambda b: binance.parse_rest("/fapi/v1/insuranceBalance", b),
         [_fx("binance", "rest_insurance_balance.json")], form="bytes")
register("binance.rest.symbolAdlRisk", lambda b: binance.parse_rest("/fapi/v1/symbolAdlRisk", b),
         [_fx("binance", "rest_symbol_adl_risk.json")], form="bytes")
# -- dYdX v4 (documented frames, tests/fixtures/dydx) --------------------------------------
DYDX = orjson.loads((ROOT / "tests" / "fixtures" / "dydx" / "documented_frames.json").read_bytes())
DYDX_T = 1772625601123


def _dydx_stream() -> dydx.DydxStream:
    """A stream that knows the markets (status, pairs, a mark), with block decode on."""
    p = dydx.DydxStream(hold_ms=0, decode_blocks=True)
    p.parse_frame(DYDX["markets_snapshot"], DYDX_T - 5000)
    return p


def _dydx_frame(obj):
    p = _dydx_stream()
    return p.frame(obj, DYDX_T) + p.finish()


register("dydx.ws.frame", _dydx_frame, [v for k, v in DYDX.items()
                                        if isinstance(v, dict) and "type" in v])
register("dydx.rest.trades", lambda o: _dydx_stream().parse_rest(
    "/v4/trades/perpetualMarket/BTC-USD", o, DYDX_T), [DYDX["trades_snapshot"]["contents"]])
register("dydx.rest.perpetualMarkets", lambda o: dydx.DydxParser().parse_rest(
    "/v4/perpetualMarkets", o, DYDX_T), [DYDX["markets_snapshot"]["contents"]])
register("dydx.rest.block", lambda o: _dydx_stream().parse_rest(
    "/cosmos/tx/v1beta1/txs/block/46245352", o, DYDX_T), [DYDX["node_block"]])
register("dydx.rest.bank_balance", lambda o: dydx.DydxParser().parse_rest(
    "/cosmos/bank/v1beta1/balances/dydx1x", o, DYDX_T), [DYDX["bank_balance"]])
# -- the NATS bus: messages as engine workers receive them ---------------------------------
register("bus.nats.decode", nats_bus.decode,
         [orjson.loads(nats_bus.encode([e for m in WS.values() for f in m
                                        for e in hl.parse_ws_message(f, user=U1, recv_ms=5)]))],
         form="bytes", venue="hyperliquid")
# -- config ------------------------------------------------------------------------------
register("config.parse_config", parse_config, CONFIG, events=False, errors=(ConfigError,), venue="config")
