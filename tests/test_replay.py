"""``adlmon replay`` end to end on hand-made node files (tests/fixtures/hyperliquid/)."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import lz4.frame
import orjson
import pytest

from adlmon import replay
from adlmon.io import archive
from adlmon.engine.engine import Engine
from adlmon.engine.ledger import Ledger
from adlmon.events import ADL, BUY, LIQUIDATION, SELL, Liquidation

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "hyperliquid"
CASCADE = FIXTURES / "cascade"
ADL_LINE = FIXTURES / "adl_block_758800641.jsonl"
L = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"
A, B, C = ("0x" + ch * 40 for ch in "abc")
T0 = 1760130900000
HORIZONS = (0, 1000, 2000, 5000, 10000)


def cascade_paths() -> list[Path]:
    return sorted(CASCADE.glob("*.json")) + [CASCADE / "node_fills_by_block.jsonl",
                                              CASCADE / "misc_events.jsonl"]


def run_cli(tmp_path, *argv) -> tuple[int, dict]:
    parser = argparse.ArgumentParser()
    replay.add_arguments(parser)
    report = tmp_path / "report.json"
    rc = replay.main(parser.parse_args([*map(str, argv), "--report", str(report), "--quiet"]))
    return rc, orjson.loads(report.read_bytes()) if report.exists() else {}


# ----------------------------------------------------------------------------- the real ADL line

def test_real_adl_line_replays_to_one_wave_needing_1_4265_usd():
    res = replay.replay_files([ADL_LINE], 5000, (0,))
    (w,) = res.waves
    assert w.needed_usd == pytest.approx(abs(22.025 - 22.075) * 28.53)
    assert w.needed_usd == pytest.approx(1.4265)
    assert (w.adl_fills, w.accounts, w.losers, w.coins) == (1, 1, 1, ("AVAX",))
    assert w.loser_users == (L,)
    assert w.fills.sz[0] == 28.53 and w.fills.user[0] == "0xe92d2041199b18f611b137457f3acee8bedb22d3"
    assert w.deficit_usd is None and w.deficit_source == "unknown"  # no snapshot: never invented
    assert res.totals["needed_usd"] == pytest.approx(1.4265)
    assert res.ok and res.errors == []


# ----------------------------------------------------------------------------- hand-made cascade

def test_hand_made_cascade_gives_the_hand_computed_wave():
    engine = Engine("hyperliquid", 5000, HORIZONS, Ledger(new_accounts_empty=True))
    res = replay.replay_files(cascade_paths(), 5000, HORIZONS, engine=engine)
    (w,) = res.waves
    assert (w.t_start_ms, w.t_end_ms, w.closed_by) == (T0 + 2000, T0 + 2000, "gap")
    assert (w.adl_fills, w.accounts, w.losers, w.coins) == (2, 2, 1, ("AVAX",))
    assert w.needed_usd == pytest.approx(2.0)            # |21.0 − 21.2|·(8 + 2)
    assert w.notional_usd == pytest.approx(212.0)
    assert w.closed_pnl_usd == pytest.approx(20.0)
    # L before the ADL block: cash 10 + 30 (baseline) − 5 (funding) = 35, 10·(21 − 25): −5
    assert w.deficit_usd == pytest.approx(5.0) and w.deficit_source == "ledger"
    assert w.deficit_increment_usd == pytest.approx(5.0)
    # closed shorts (s = −1): A 8, B 2 at 21.2; marks 21.2 @ 0, 20.5 @ +1 s, 20.0 from +1.5 s
    assert w.production_haircut_usd == pytest.approx({0: 0.0, 1000: 7.0, 2000: 12.0, 5000: 12.0, 10000: 12.0})
    assert w.horizon_status == {0: "reached", 1000: "reached", 2000: "reached", 5000: "reached",
                                10000: "input_ended"}
    assert w.excess_haircut_usd == pytest.approx({0: -2.0, 1000: 5.0, 2000: 10.0, 5000: 10.0, 10000: 10.0})
    assert w.theta_needed == pytest.approx(0.4) and w.theta_prod == 0.0
    # A and B held the short side before the block; their sizes then
    view = w.eligible["AVAX"]
    assert dict(zip(view.users, view.size)) == {A: -8.0, B: -4.0}
    led = engine.ledger
    assert led.equity(A) == pytest.approx(1004.3)  # 988 − 0.1 + 16.4, long 1 @ 20 at mark 20
    assert led.equity(B) == pytest.approx(405.1)   # 396 + 3.6 + 2.5, short 1 @ 23 at 20, ETH flat PnL
    assert led.equity(C) == pytest.approx(398.3)   # 300 + 100 − 0.2 − 0.5 − 1.0
    assert led.equity(L) == pytest.approx(-3.0)
    assert engine.stats["divergences"] == 0 and engine.stats["liquidation_fills"] == 2


def test_cli_writes_report_and_wavelog(tmp_path, capsys):
    wavelog = tmp_path / "waves.jsonl"
    rc, report = run_cli(tmp_path, *cascade_paths(), "--horizons-ms", "0,1000", "--wavelog", wavelog)
    assert rc == 0
    assert set(report) == {"waves", "totals", "inputs"}
    (w,) = report["waves"]
    assert w["production_haircut_usd"] == pytest.approx({"0": 0.0, "1000": 7.0})
    assert w["horizon_status"] == {"0": "reached", "1000": "reached"}
    assert report["totals"]["needed_usd"] == pytest.approx(2.0)
    assert report["totals"]["production_haircut_usd"] == pytest.approx({"0": 0.0, "1000": 7.0})
    assert report["inputs"][str(CASCADE / "node_fills_by_block.jsonl")]["fills"] == 12
    lines = wavelog.read_bytes().splitlines()
    assert [orjson.loads(x) for x in lines] == report["waves"]
    out = capsys.readouterr().out
    assert "replayed 12 fills" in out


def test_cli_finds_snapshots_in_a_directory(tmp_path):
    rc, report = run_cli(tmp_path, CASCADE / "node_fills_by_block.jsonl", CASCADE / "misc_events.jsonl",
                         "--snapshot-dir", CASCADE, "--gap-ms", "5000")
    assert rc == 0 and report["waves"][0]["deficit_usd"] == pytest.approx(5.0)


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    assert run_cli(tmp_path, ADL_LINE, "--horizons-ms", "0,x")[0] == 2
    assert run_cli(tmp_path, ADL_LINE, "--gap-ms", "0")[0] == 2
    assert run_cli(tmp_path, tmp_path / "nope.jsonl")[0] == 2
    assert "no such file" in capsys.readouterr().err


def test_files_are_merged_in_time_order():
    # Without the funding (a separate file, t0+1.5 s) before the ADL block the deficit would be 0.
    res = replay.replay_files(cascade_paths(), 5000, (0,))
    assert res.waves[0].deficit_usd == pytest.approx(5.0)
    without = replay.replay_files([p for p in cascade_paths() if "misc" not in p.name], 5000, (0,))
    assert without.waves[0].deficit_usd == pytest.approx(0.0)


def test_lz4_input_replays_like_plain(tmp_path):
    packed = tmp_path / "node_fills_by_block.jsonl.lz4"
    packed.write_bytes(lz4.frame.compress((CASCADE / "node_fills_by_block.jsonl").read_bytes()))
    paths = [p if p.name != "node_fills_by_block.jsonl" else packed for p in cascade_paths()]
    plain = replay.replay_files(cascade_paths(), 5000, HORIZONS)
    lz = replay.replay_files(paths, 5000, HORIZONS)
    assert [w.to_dict() for w in lz.waves] == [w.to_dict() for w in plain.waves]
    assert lz.ok


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("suffix", ["", ".lz4"])
def test_line_views_are_the_byte_lines_whatever_the_chunking(tmp_path, monkeypatch, suffix):
    rng = random.Random(7)
    for case in range(60):
        lines = [bytes(rng.choice(b"ab{}") for _ in range(rng.choice([0, 1, 2, 5, 40])))
                 for _ in range(rng.randint(0, 12))]
        data = b"\n".join(lines) + rng.choice([b"", b"\n", b"\n\n"])
        path = tmp_path / f"f{case}{suffix}"
        path.write_bytes(lz4.frame.compress(data) if suffix else data)
        monkeypatch.setattr(archive, "CHUNK_BYTES", rng.randint(1, 30))
        assert [bytes(v) for v in archive.read_lines(path, views=True)] == list(archive.read_lines(path))
        assert list(archive.read_lines(path)) == data.split(b"\n")[:-1] + [x for x in data.split(b"\n")[-1:] if x]


def test_garbage_missing_field_and_bad_number_are_reported_by_file_and_line(tmp_path):
    good = (CASCADE / "node_fills_by_block.jsonl").read_bytes().splitlines()
    first = orjson.loads(good[0])
    missing = orjson.loads(good[3])
    del missing["events"][0][1]["px"]                    # line 5: one fill without px
    bad_number = orjson.loads(good[2])
    bad_number["events"][1][1]["sz"] = "1.0.0"          # line 4: one fill with a bad size
    lines = [good[0], b"\x00garbage{", orjson.dumps(bad_number), orjson.dumps(missing),
             good[1], b'{"what": "ever"}', orjson.dumps(first | {"events": "nope"}), b"", good[4]]
    path = tmp_path / "node_fills_by_block.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    res = replay.replay_files(sorted(CASCADE.glob("*.json")) + [path, CASCADE / "misc_events.jsonl"],
                              5000, (0,))
    inp = res.inputs[str(path)]
    assert inp["errors"] == {"bad_json": 1, "bad_number": 1, "missing_field": 1, "unknown_format": 1,
                             "bad_value": 1}
    assert inp["status"] == "ok" and res.ok
    ex = inp["examples"]
    assert ex[0].startswith(f"{path}:2: bad_json")
    assert ex[1].startswith(f"{path}:3: bad_number") and "sz" in ex[1]
    assert ex[2].startswith(f"{path}:4: missing_field") and "px" in ex[2]
    assert ex[3].startswith(f"{path}:6: unknown_format")
    assert ex[4].startswith(f"{path}:7: bad_value")
    # the good fills of the bad lines still count; the wave is still found
    assert inp["fills"] == 2 + 1 + 1 + 4 + 2
    (w,) = res.waves
    assert w.needed_usd == pytest.approx(2.0)
    assert res.totals["parse_errors"] == 5


def truncated_lz4(tmp_path) -> tuple[Path, int]:
    """A file whose first wave is followed by enough filler to span many LZ4 blocks."""
    good = (CASCADE / "node_fills_by_block.jsonl").read_bytes().splitlines()
    filler = []
    for i in range(3000):
        t = T0 + 10_000 + i
        filler.append(orjson.dumps({"block_number": i, "events": [
            [C, {"coin": "ETH", "px": "4000.0", "sz": "0.1", "side": "B", "time": t,
                 "startPosition": "0.0", "dir": "Open Long", "closedPnl": "0.0", "hash": "0x" + "0" * 64,
                 "oid": i, "crossed": True, "fee": "0.0", "tid": i, "feeToken": "USDC"}],
            [B, {"coin": "ETH", "px": "4000.0", "sz": "0.1", "side": "A", "time": t,
                 "startPosition": "-0.0", "dir": "Open Short", "closedPnl": "0.0", "hash": "0x" + "0" * 64,
                 "oid": i, "crossed": False, "fee": "0.0", "tid": i, "feeToken": "USDC"}]]}))
    data = b"\n".join(good[:4] + filler) + b"\n"
    packed = lz4.frame.compress(data, block_size=lz4.frame.BLOCKSIZE_MAX64KB)
    path = tmp_path / "node_fills_by_block.jsonl.lz4"
    path.write_bytes(packed[: len(packed) * 2 // 3])
    return path, len(good[:4] + filler)


def test_truncated_lz4_stops_that_file_with_file_and_line_and_keeps_earlier_waves(tmp_path, capsys):
    path, total_lines = truncated_lz4(tmp_path)
    res = replay.replay_files([path], 5000, (0,))
    inp = res.inputs[str(path)]
    assert inp["status"] == "stopped" and not res.ok
    assert 4 < inp["lines"] < total_lines
    assert f"{path}:{inp['lines'] + 1}: truncated" in inp["message"]
    (w,) = res.waves                                   # the wave before the cut is reported
    assert w.needed_usd == pytest.approx(2.0) and w.closed_by == "gap"
    assert inp["message"] in res.errors
    rc, report = run_cli(tmp_path, path)
    assert rc == 1 and len(report["waves"]) == 1
    assert report["inputs"][str(path)]["status"] == "stopped"
    assert "truncated" in capsys.readouterr().err


def test_a_file_that_is_not_lz4_stops_at_line_1(tmp_path):
    path = tmp_path / "misc_events.jsonl.lz4"
    path.write_bytes(b'{"time": 1, "hash": "0x", "inner": {}}\n')
    other = tmp_path / "fills.jsonl"
    other.write_bytes(ADL_LINE.read_bytes())
    res = replay.replay_files([path, other], 5000, (0,))
    assert res.inputs[str(path)]["status"] == "corrupt" and not res.ok
    assert f"{path}:1: corrupt" in res.inputs[str(path)]["message"]
    assert len(res.waves) == 1  # the other file still replays


# ----------------------------------------------------------------------------- scale and hooks

def test_an_11279_fill_adl_block_against_one_loser_is_one_wave():
    liq = Liquidation(L, 22.025, "backstop")
    rows = []
    for i in range(11279):
        user = f"0x{i:040x}"
        rows.append(("hyperliquid", "AVAX", user, BUY, 22.075, 1.0, T0, -1.0, ADL, 0.0, 0.0, i, "0x", liq,
                     "Auto-Deleveraging"))
        rows.append(("hyperliquid", "AVAX", L, SELL, 22.075, 1.0, T0, 11279.0 - i, LIQUIDATION, 0.0, 0.0, i,
                     "0x", liq, "Liquidated Cross Long"))
    engine = Engine("hyperliquid", 5000, (0,))
    assert engine.apply_fill_rows(rows) == []
    (w,) = engine.finish()
    assert (w.adl_fills, w.accounts, w.losers) == (11279, 11279, 1)
    assert w.needed_usd == pytest.approx(0.05 * 11279)


def test_report_builder_and_on_wave_hooks_see_every_wave():
    seen = []
    res = replay.replay_files(cascade_paths(), 5000, (0,),
                              on_wave=lambda w, r: seen.append((w.wave_id, r["tag"])),
                              report_builder=lambda w: {**w.to_dict(), "tag": "cf"})
    assert seen == [(1, "cf")] and res.reports[0]["tag"] == "cf"


def test_metrics_out_writes_an_exposition(tmp_path):
    pytest.importorskip("adlmon.metrics")
    out = tmp_path / "replay.prom"
    rc, _ = run_cli(tmp_path, *cascade_paths(), "--metrics-out", out)
    assert rc == 0
    text = out.read_text()
    assert "# HELP" in text and "hyperliquid" in text
