"""Snapshot exports (venues.md §6.2) -> AccountSnapshot events, leniently."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from adlmon.events import ParseError, PositionSnapshot
from adlmon.venues.hyperliquid import snapshot

CASCADE = Path(__file__).resolve().parents[2] / "fixtures" / "hyperliquid" / "cascade"
L = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"
B = "0x" + "b" * 40
C = "0x" + "c" * 40


def test_file_names_give_kind_and_time():
    p = "account_value_snapshot_758750000_1760126694218.json"
    assert snapshot.snapshot_kind(p) == "account_value_snapshot"
    assert snapshot.snapshot_time_ms(p) == 1760126694218
    assert snapshot.snapshot_kind("perp_positions_by_market_1_2.json.lz4") == "perp_positions_by_market"
    assert snapshot.snapshot_kind("node_fills_by_block.jsonl") is None


def test_hand_made_snapshot_joins_both_files_per_account():
    events, t = snapshot.load_snapshot(sorted(CASCADE.glob("*.json")))
    assert t == 1760130900000
    by_user = {e.user: e for e in events}
    assert set(by_user) == {L, "0x" + "a" * 40, B, C}
    assert by_user[C].positions == () and by_user[C].account_value == 300.0
    assert by_user[B].account_value == 500.0
    assert set(by_user[B].positions) == {PositionSnapshot("AVAX", -4.0, 23.0, 22.0),
                                         PositionSnapshot("ETH", 1.0, 4000.0, 4100.0)}


def test_lenient_shapes_are_accepted():
    values = snapshot.parse_account_values({"accounts": [{"user": C, "account_value": "12.5"}]})
    assert values == {C: 12.5}
    assert snapshot.parse_account_values({C: 1.0, B: {"account_value": 2.0}}) == {C: 1.0, B: 2.0}
    pos, pv = snapshot.parse_positions_by_market({"hyperliquid:BTC": [
        {"user": C, "szi": "0.5", "entryPx": "100", "side": "short", "notional": "55", "account_value": 9}]})
    assert pos == {C: [PositionSnapshot("BTC", -0.5, 100.0, 110.0)]} and pv == {C: 9.0}


def test_builder_dex_market_names_are_kept():
    pos, _ = snapshot.parse_positions_by_market([{"market_name": "xyz:TSLA", "positions": [
        {"user": C, "size": 1, "entry_price": 2, "notional_size": 3}]}])
    assert pos[C][0].coin == "xyz:TSLA"


def test_account_missing_from_the_value_file_takes_its_positions_value(tmp_path):
    (tmp_path / "perp_positions_by_market_1_5.json").write_bytes(orjson.dumps([
        {"market_name": "hyperliquid:ETH", "positions": [
            {"user": C, "size": 1.0, "entry_price": 10.0, "notional_size": 12.0, "account_value": 50.0}]}]))
    events, t = snapshot.load_snapshot([tmp_path / "perp_positions_by_market_1_5.json"])
    assert t == 5 and events[0].account_value == 50.0


def test_bad_snapshot_names_the_file(tmp_path):
    p = tmp_path / "account_value_snapshot_1_2.json"
    p.write_bytes(orjson.dumps([{"user": C, "account_value": "lots"}]))
    with pytest.raises(ParseError) as exc:
        snapshot.load_snapshot([p])
    assert exc.value.reason == "bad_number" and str(p) in str(exc.value)
    p.write_bytes(b"[{")
    with pytest.raises(ParseError) as exc:
        snapshot.load_snapshot([p])
    assert exc.value.reason == "bad_json"
