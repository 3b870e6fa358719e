"""Hyperliquid websocket sources, frame by frame (no sockets): dedupe, backfill,
the vault/trade join that infers ADL winners, frame classification, REST weights
and discovery."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adlmon.config import HLP_LIQUIDATORS
from adlmon.engine.ledger import Ledger
from adlmon.events import ADL, BUY, LIQUIDATION, SELL, AccountSnapshot, Fill, Funding, Mark
from adlmon.net.rest import RestError
from adlmon.net.session import ACK, DATA, ERROR, PONG
from adlmon.venues.hyperliquid.rest import (
    discover_liquidators, item_weight, perp_coins, request_weight, slug,
)
from adlmon.venues.hyperliquid.ws import (
    INFERRED_ADL_DIR, UNKNOWN_WINNER, MarketAdapter, SeenSet, VaultAdapter, VaultTradeJoin,
    complete_inferred_fill,
)

VAULT = HLP_LIQUIDATORS[0]
WINNER = "0xe92d2041199b18f611b137457f3acee8bedb22d3"
T = 1760130964831


def ws_fill(tid, *, time=T, side="A", dir="Liquidated Cross Long", coin="AVAX", px="22.075",
            sz="28.53", liquidated=VAULT, start="28.53", pnl="-3.1"):
    f = {"coin": coin, "px": px, "sz": sz, "side": side, "time": time, "startPosition": start,
         "dir": dir, "closedPnl": pnl, "hash": "0x92", "oid": 1, "crossed": False, "fee": "0.0",
         "tid": tid, "feeToken": "USDC"}
    if liquidated:
        f["liquidation"] = {"liquidatedUser": liquidated, "markPx": "22.025", "method": "backstop"}
    return f


def user_fills(*fills, snapshot=False, user=VAULT):
    data = {"user": user, "fills": list(fills)}
    if snapshot:
        data["isSnapshot"] = True
    return {"channel": "userFills", "data": data}


def trade(tid, *, time=T, buyer=VAULT, seller=WINNER, coin="AVAX", px="22.075"):
    return {"coin": coin, "side": "B", "px": px, "sz": "28.53", "hash": "0x92", "time": time,
            "tid": tid, "users": [buyer, seller]}


class Clock:
    def __init__(self):
        self.ms = T

    def __call__(self):
        return self.ms


def adapters(trades=True, watermark=T - 1):
    clock = Clock()
    join = VaultTradeJoin([VAULT], enabled=trades, hold_ms=2000, now_ms=clock)
    vault = VaultAdapter(VAULT, fills=True, events=True, join=join, seen=SeenSet(), now_ms=clock)
    vault.watermark_ms = watermark
    market = MarketAdapter(["AVAX"], trades=trades, marks=None, silence_budget_s=60, join=join,
                           now_ms=clock)
    return vault, market, join, clock


def test_seen_set_forgets_its_oldest_keys_past_its_bound():
    seen = SeenSet(3)
    assert all(seen.add(k) for k in "abcd")
    assert "a" not in seen and "d" in seen and len(seen) == 3
    assert not seen.add("d") and seen.duplicates == 1


def test_vault_adl_fill_and_its_trade_give_the_winner_side_before_the_vault_side():
    vault, market, join, _ = adapters()
    # the vault sold 28.53 AVAX to close its long: the winner bought, closing a short
    vault_fill = ws_fill(7, side="A")
    assert vault.parse("userFills", user_fills(vault_fill)) == []  # held for the trade
    out = market.parse("trades", {"channel": "trades", "data": [trade(7, buyer=WINNER, seller=VAULT)]})
    winner, vault_side, mark = out
    assert (winner.user, winner.kind, winner.side, winner.sz, winner.px, winner.tid) == \
        (WINNER, ADL, BUY, 28.53, 22.075, 7)
    assert winner.start_position == -28.53 and winner.dir == INFERRED_ADL_DIR
    assert winner.liquidation.liquidated_user == VAULT and winner.liquidation.mark_px == 22.025
    assert (vault_side.user, vault_side.kind) == (VAULT, LIQUIDATION)
    assert isinstance(mark, Mark) and mark.time_ms == T
    assert join.inferred == 1 and join.unknown_winners == 0


def test_trade_first_waits_for_the_vault_fill_so_the_block_comes_before_its_marks():
    vault, market, join, _ = adapters()
    assert market.parse("trades", {"channel": "trades", "data": [trade(8, buyer=WINNER, seller=VAULT)]}) == []
    out = vault.parse("userFills", user_fills(ws_fill(8)))
    assert [type(e).__name__ for e in out] == ["Fill", "Fill", "Mark"]
    assert out[0].user == WINNER and out[0].kind == ADL


def test_without_trades_the_winner_is_unknown_and_nothing_waits():
    vault, _market, join, _ = adapters(trades=False)
    out = vault.parse("userFills", user_fills(ws_fill(9)))
    assert [e.user for e in out] == [UNKNOWN_WINNER, VAULT]
    assert join.unknown_winners == 1


def test_a_vault_fill_whose_trade_never_comes_is_released_after_the_hold():
    vault, market, join, clock = adapters()
    assert vault.parse("userFills", user_fills(ws_fill(10))) == []
    assert join.expire() == []
    clock.ms += 2000
    out = join.expire()
    assert [e.user for e in out] == [UNKNOWN_WINNER, VAULT] and join.released_late == 1


def test_the_market_stream_past_a_fill_releases_it_without_waiting_for_its_lost_trade():
    vault, market, join, _ = adapters()
    assert vault.parse("userFills", user_fills(ws_fill(11, time=T))) == []
    later = trade(99, time=T + 5000, buyer="0xa", seller="0xb")  # not a vault trade
    out = market.parse("trades", {"channel": "trades", "data": [later]})
    assert [getattr(e, "user", "mark") for e in out] == [UNKNOWN_WINNER, VAULT, "mark"]


def test_backfill_after_a_reconnect_adds_only_unseen_fills_and_user_events_do_not_double_count():
    vault, _market, join, _ = adapters(trades=False)
    vault.parse("userFills", user_fills(snapshot=True))  # first connection: nothing yet
    first = vault.parse("userFills", user_fills(ws_fill(1, dir="Open Long", liquidated=None)))
    again = vault.parse("user", {"channel": "user", "data": {"fills": [
        ws_fill(1, dir="Open Long", liquidated=None)]}})  # userEvents repeats the fill
    backfill = vault.parse("userFills", user_fills(
        ws_fill(1, dir="Open Long", liquidated=None), ws_fill(2, dir="Open Long", liquidated=None),
        snapshot=True))
    assert [e.tid for e in first] == [1] and again == []
    assert [e.tid for e in backfill] == [2] and vault.backfilled == 1
    assert vault.seen.duplicates == 2


def test_history_in_the_bootstrap_snapshot_is_not_applied_again():
    vault, _market, _join, _ = adapters(trades=False, watermark=None)
    vault.bootstrapped(AccountSnapshot("hyperliquid", VAULT, 1000.0, (), T))
    out = vault.parse("userFills", user_fills(
        ws_fill(1, time=T - 5, dir="Open Long", liquidated=None),
        ws_fill(2, time=T, dir="Open Long", liquidated=None),
        ws_fill(3, time=T + 5, dir="Open Long", liquidated=None), snapshot=True))
    assert [e.tid for e in out] == [3]


def test_first_snapshot_without_a_bootstrap_is_history_not_applied():
    vault, _market, _join, _ = adapters(trades=False, watermark=None)
    assert vault.parse("userFills", user_fills(ws_fill(1, dir="Open Long", liquidated=None),
                                               snapshot=True)) == []


def test_vault_events_carry_funding_to_the_vault():
    vault, _market, _join, _ = adapters(trades=False)
    out = vault.parse("user", {"channel": "user", "data": {"funding": {
        "time": T + 1, "coin": "BTC", "usdc": "-1.5", "szi": "2.0", "fundingRate": "0.0001"}}})
    assert out == [Funding("hyperliquid", VAULT, "BTC", -1.5, T + 1)]


def test_trades_backfill_after_a_reconnect_is_deduplicated_on_coin_and_tid():
    _vault, market, _join, _ = adapters(trades=False)
    frame = {"channel": "trades", "data": [trade(1, buyer="0xa", seller="0xb"),
                                           trade(2, buyer="0xa", seller="0xb", px="23.0")]}
    assert [m.mark_px for m in market.parse("trades", frame)] == [23.0]
    assert market.parse("trades", frame) == []
    assert market.seen.duplicates == 2


def test_inferred_fill_takes_start_position_and_pnl_from_a_ledger_that_knows_the_winner():
    ledger = Ledger()
    ledger.apply(AccountSnapshot("hyperliquid", WINNER, 500.0, (), T - 10))
    ledger.apply(Fill("hyperliquid", "AVAX", WINNER, SELL, 25.0, 40.0, T - 5, 0.0, "open", 0.0,
                      0.0, 1, "0x", None, "Open Short"))
    fill = Fill("hyperliquid", "AVAX", WINNER, BUY, 22.075, 28.53, T, -28.53, ADL, 0.0, 0.0, 7,
                "0x", None, INFERRED_ADL_DIR)
    done = complete_inferred_fill(fill, ledger)
    assert done.start_position == -40.0
    assert done.closed_pnl == pytest.approx(28.53 * (25.0 - 22.075))
    assert complete_inferred_fill(fill, Ledger()) is fill  # unknown winner: unchanged


@pytest.mark.parametrize("frame,kind", [
    ({"channel": "pong"}, PONG),
    ({"channel": "subscriptionResponse", "data": {}}, ACK),
    ({"channel": "error", "data": "Already subscribed: {}"}, ERROR),
    ({"channel": "trades", "data": []}, DATA),
])
def test_frames_are_classified_by_channel(frame, kind):
    _vault, market, _join, _ = adapters()
    assert market.classify(frame)[0] == kind


def test_duplicate_subscription_errors_are_harmless_other_errors_are_not():
    _vault, market, _join, _ = adapters()
    assert not market.error_is_fatal({"channel": "error", "data": "Already subscribed: {...}"})
    assert market.error_is_fatal({"channel": "error", "data": "Invalid subscription"})
    assert market.ignore_text(b"Websocket connection established.")
    assert market.guess_channel(b'{"channel":"trades","data":[{"co') == "trades"


def test_subscriptions_per_source():
    _vault, market, _join, _ = adapters()
    vault = VaultAdapter(VAULT, fills=True, events=True, join=VaultTradeJoin([], False),
                         seen=SeenSet(), now_ms=Clock())
    assert [s["subscription"] for s in vault.subscriptions()] == [
        {"type": "userFills", "user": VAULT}, {"type": "userEvents", "user": VAULT}]
    marks = MarketAdapter(["BTC", "ETH"], trades=True, marks="activeAssetCtx", silence_budget_s=5,
                          join=VaultTradeJoin([], False), now_ms=Clock())
    subs = [s["subscription"] for s in marks.subscriptions()]
    assert {"type": "trades", "coin": "ETH"} in subs and {"type": "activeAssetCtx", "coin": "BTC"} in subs
    assert [c.name for c in marks.channels] == ["trades", "activeAssetCtx"]
    assert all(c.busy for c in marks.channels) and not any(c.busy for c in vault.channels)


@pytest.mark.parametrize("body,weight", [
    ({"type": "clearinghouseState", "user": VAULT}, 2), ({"type": "allMids"}, 2),
    ({"type": "l2Book", "coin": "BTC"}, 2), ({"type": "userRole", "user": VAULT}, 60),
    ({"type": "vaultDetails", "vaultAddress": VAULT}, 20), ({"type": "metaAndAssetCtxs"}, 20),
])
def test_info_request_weights_follow_the_venue_table(body, weight):
    assert request_weight(body) == weight


def test_fill_history_requests_cost_one_more_per_20_items():
    assert item_weight({"type": "userFills"}, [{}] * 45) == 2
    assert item_weight({"type": "clearinghouseState"}, {"a": 1}) == 0


class StubInfo:
    def __init__(self, answers):
        self.answers = answers

    async def vault_details(self, vault):
        answer = self.answers[vault]
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_liquidators_are_the_children_of_hlp_named_liquidator():
    hlp = "0xdfc24b077bc1425ad1dea75bcb6f8158e10df303"
    info = StubInfo({
        hlp: {"relationship": {"type": "parent", "data": {"childAddresses": ["0xA", "0xB", "0xC"]}}},
        "0xA": {"name": "HLP Strategy A"}, "0xB": {"name": "HLP Liquidator"},
        "0xC": {"name": "HLP Liquidator 3"},
    })
    vaults, how = await discover_liquidators(info, hlp, HLP_LIQUIDATORS)
    assert [(v.address, v.name) for v in vaults] == [("0xb", "HLP Liquidator"), ("0xc", "HLP Liquidator 3")]
    assert slug(vaults[1].name) == "hlp_liquidator_3"


async def test_discovery_failure_falls_back_to_the_known_liquidator_addresses():
    hlp = "0xdfc24b077bc1425ad1dea75bcb6f8158e10df303"
    vaults, how = await discover_liquidators(StubInfo({hlp: RestError("connect_error", "down")}),
                                             hlp, HLP_LIQUIDATORS)
    assert [v.address for v in vaults] == list(HLP_LIQUIDATORS)
    assert "discovery failed" in how


def test_perp_coins_skip_delisted_markets():
    meta = [{"universe": [{"name": "BTC"}, {"name": "LUNA", "isDelisted": True}, {"name": "ETH"}]}, []]
    assert perp_coins(meta) == ["BTC", "ETH"]


def test_asset_context_marks_carry_the_local_estimate_of_venue_time():
    clock = Clock()
    market = MarketAdapter(["BTC"], trades=False, marks="activeAssetCtx", silence_budget_s=5,
                           join=VaultTradeJoin([], False), now_ms=clock)
    (mark,) = market.parse("activeAssetCtx", {"channel": "activeAssetCtx", "data": {
        "coin": "BTC", "ctx": {"markPx": "100000.5", "oraclePx": "100001.0", "funding": "0.0"}}})
    assert (mark.coin, mark.mark_px, mark.oracle_px, mark.time_ms) == ("BTC", 100000.5, 100001.0, T)


SDK_FILLS = (Path(__file__).resolve().parents[2] / "fixtures" / "hyperliquid" / "sdk_user_fills"
             / "user_fills_without_tid.json")


def test_fills_without_tid_are_told_apart_by_hash_oid_time_px_sz_side():
    """The SDK's recorded userFills (older shape, no tid): 500 distinct fills, which a
    (user, coin, tid) key collapsed to one per coin. All are kept once; the reconnect
    backfill and userEvents repeating them add nothing."""
    rec = json.loads(SDK_FILLS.read_text())
    user, fills = rec["user"], rec["fills"]
    assert len(fills) == 500 and not any("tid" in f for f in fills)
    clock = Clock()
    join = VaultTradeJoin([user], enabled=False, hold_ms=2000, now_ms=clock)
    vault = VaultAdapter(user, fills=True, events=True, join=join, seen=SeenSet(), now_ms=clock)
    vault.watermark_ms = min(f["time"] for f in fills) - 1
    live = vault.parse("userFills", user_fills(*fills, user=user))
    assert len(live) == 500 and all(e.__class__ is Fill and e.tid == 0 for e in live)
    backfill = vault.parse("userFills", user_fills(*fills, snapshot=True, user=user))
    again = vault.parse("user", {"channel": "user", "data": {"fills": fills[:40]}})
    assert backfill == [] and again == []
    assert vault.seen.duplicates == 540
    # the fills kept are the recorded ones, each once
    assert sorted((e.coin, e.time_ms, e.px, e.sz, e.side, e.hash) for e in live) == sorted(
        (f["coin"], f["time"], float(f["px"]), float(f["sz"]), BUY if f["side"] == "B" else SELL,
         f["hash"]) for f in fills)


def test_a_fill_without_tid_that_differs_only_in_oid_is_a_different_fill():
    vault, _market, _join, _ = adapters(trades=False)
    a = ws_fill(None, dir="Open Long", liquidated=None)
    del a["tid"]
    b = {**a, "oid": 2}
    out = vault.parse("userFills", user_fills(a, b, a))
    assert len(out) == 2 and vault.seen.duplicates == 1
