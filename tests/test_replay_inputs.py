"""``adlmon replay`` on bad files and odd command lines (issue 9 "Replay", issue 8 §3):
no traceback, corruption reported as such, the same input once, out-of-order input
on the terminal, capped line length, standard input, outputs checked first,
directories, non-inputs skipped with a note, empty input an error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import lz4.frame
import orjson
import pytest

from adlmon import replay, sim

ROOT = Path(__file__).resolve().parents[1]
CASCADE = ROOT / "tests" / "fixtures" / "hyperliquid" / "cascade"
FILLS = CASCADE / "node_fills_by_block.jsonl"
C = "0x" + "c" * 40
B = "0x" + "b" * 40
T0 = 1760130900000


def adlmon(*argv, stdin: bytes | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "adlmon", "replay", *map(str, argv)],
                          input=stdin, capture_output=True, timeout=120, cwd=cwd)


def filler(n: int, t0: int = T0 + 10_000) -> list[bytes]:
    """n blocks of one ETH trade each, 1 ms apart (no ADL: they change no wave)."""
    out = []
    for i in range(n):
        t = t0 + i
        out.append(orjson.dumps({"block_number": i, "events": [
            [C, {"coin": "ETH", "px": "4000.0", "sz": "0.1", "side": "B", "time": t, "startPosition": "0.0",
                 "dir": "Open Long", "closedPnl": "0.0", "hash": "0x00", "fee": "0.0", "tid": 2 * i}],
            [B, {"coin": "ETH", "px": "4000.0", "sz": "0.1", "side": "A", "time": t, "startPosition": "0.0",
                 "dir": "Open Short", "closedPnl": "0.0", "hash": "0x00", "fee": "0.0", "tid": 2 * i + 1}]]}))
    return out


def data_with_a_wave(n_filler: int = 3000) -> bytes:
    return b"\n".join(FILLS.read_bytes().splitlines() + filler(n_filler)) + b"\n"


def one_replay(paths, **kw):
    return replay.replay_files([*map(Path, paths)], 5000, (0, 1000), **kw)


# ----------------------------------------------------------------------------- corruption

@pytest.mark.parametrize("flags, what", [
    ({"content_checksum": True, "store_size": False}, "content checksum mismatch"),
    ({"block_checksum": True, "block_size": lz4.frame.BLOCKSIZE_MAX64KB}, "block checksum mismatch"),
])
def test_a_flipped_byte_in_a_checksummed_lz4_is_corruption_exit_1_with_the_waves_read(tmp_path, flags, what):
    blob = bytearray(lz4.frame.compress(data_with_a_wave(20_000), **flags))
    blob[len(blob) * 3 // 4] ^= 0xFF
    path = tmp_path / "node_fills_by_block.jsonl.lz4"
    path.write_bytes(bytes(blob))
    report = tmp_path / "r.json"
    r = adlmon(path, "--report", report, "--quiet")
    err = r.stderr.decode()
    assert r.returncode == 1 and "Traceback" not in err
    assert what in err and "corrupt" in err
    doc = orjson.loads(report.read_bytes())
    assert doc["inputs"][str(path)]["status"] == "corrupt"
    assert len(doc["waves"]) == 1 and doc["waves"][0]["needed_usd"] == pytest.approx(2.0)


def test_a_flipped_byte_in_an_lz4_without_checksums_is_corruption_when_it_breaks_lines(tmp_path):
    blob = bytearray(lz4.frame.compress(data_with_a_wave()))  # the simulator's frames: no checksum
    for at in range(len(blob) // 2, len(blob) // 2 + 64):
        blob[at] ^= 0xFF
    path = tmp_path / "node_fills_by_block.jsonl.lz4"
    path.write_bytes(bytes(blob))
    res = one_replay([path])
    inp = res.inputs[str(path)]
    assert not res.ok and inp["status"] in ("corrupt",)
    assert any("no checksum" in n for n in inp["notes"])
    assert len(res.waves) == 1


def test_bad_lines_and_bad_files_never_give_a_traceback(tmp_path):
    lines = [FILLS.read_bytes().splitlines()[0],
             b'{"time": 5, "hash": "0x", "inner": {"LedgerUpdate": {"users": 5, "delta": {"type": "deposit"}}}}',
             b'{"time": "\xc2\xb2", "hash": "0x", "inner": {"CDeposit": {"user": "u", "amount": "1"}}}',
             b'{"events": [["' + C.encode() + b'", {"coin": "ETH", "px": "1", "sz": "1", "side": "B", '
             b'"time": 99999999999999999999, "startPosition": "0", "dir": "Buy", "closedPnl": "0", '
             b'"fee": "0", "tid": 18446744073709551616, "hash": "0x"}]]}',
             b"[1, 2]", b"\xff\xfe", b"{" * 10_000, b"null", b"5"]
    bad = tmp_path / "node_fills_by_block.jsonl"
    bad.write_bytes(b"\n".join(lines) + b"\n")
    unreadable = tmp_path / "misc_events.jsonl"
    unreadable.mkdir()
    truncated = tmp_path / "account_value_snapshot_1_1000.json.lz4"
    truncated.write_bytes(lz4.frame.compress(orjson.dumps([{"user": C, "account_value": "1"}] * 999))[:200])
    r = adlmon(bad, truncated, "--quiet")
    err = r.stderr.decode()
    assert "Traceback" not in err and r.returncode == 1
    assert "snapshot not used" in err and "ends early" in err
    assert "bad lines/events" in err


# ----------------------------------------------------------------------------- the same input twice

def test_the_same_content_given_twice_is_read_once(tmp_path, capsys):
    copy = tmp_path / "copy_of_fills.jsonl"
    shutil.copy(FILLS, copy)
    packed = tmp_path / "fills.jsonl.lz4"
    packed.write_bytes(lz4.frame.compress(FILLS.read_bytes()))
    misc = CASCADE / "misc_events.jsonl"
    once = one_replay([FILLS, misc])
    twice = one_replay([FILLS, misc, FILLS, copy, packed])
    assert [w.to_dict() for w in twice.waves] == [w.to_dict() for w in once.waves]
    assert twice.stats["fills"] == once.stats["fills"]
    skipped = {p: i["message"] for p, i in twice.inputs.items() if i["status"] == "skipped"}
    assert skipped == {str(FILLS) + " (again)": "given twice",
                       str(copy): f"duplicate: same content as {FILLS}",
                       str(packed): f"duplicate: same content as {FILLS}"}
    assert twice.ok


# ----------------------------------------------------------------------------- order, size, stdin

def test_a_file_in_reverse_time_order_is_reported_on_the_terminal_with_its_count(tmp_path):
    lines = FILLS.read_bytes().splitlines()
    path = tmp_path / "node_fills_by_block.jsonl"
    path.write_bytes(b"\n".join(reversed(lines)) + b"\n")
    times = [orjson.loads(x)["events"][0][1]["time"] for x in reversed(lines)]
    expected = sum(1 for i, t in enumerate(times) if t < max(times[:i], default=-1))
    assert expected > 0
    r = adlmon(path, "--quiet")
    assert f"{expected:,} lines out of time order" in r.stderr.decode()
    assert one_replay([path]).inputs[str(path)]["out_of_order_lines"] == expected


def test_a_line_over_the_cap_is_skipped_and_counted_and_the_rest_is_read(tmp_path):
    lines = FILLS.read_bytes().splitlines()
    path = tmp_path / "node_fills_by_block.jsonl"
    path.write_bytes(b"\n".join([lines[0], b'{"x": "' + b"y" * 3_000_000 + b'"}', *lines[1:]]) + b"\n")
    res = one_replay([path], max_line_bytes=1 << 20)
    inp = res.inputs[str(path)]
    assert inp["errors"] == {"line_too_long": 1} and inp["examples"][0].startswith(f"{path}:2: line_too_long")
    assert res.stats["fills"] == one_replay([FILLS]).stats["fills"]
    r = adlmon(path, "--max-line-bytes", "1000000", "--quiet")
    assert r.returncode == 0 and b"line_too_long 1" in r.stderr


def test_dash_reads_standard_input_plain_or_lz4(tmp_path):
    plain = adlmon("-", "--quiet", "--report", tmp_path / "a.json", stdin=FILLS.read_bytes())
    packed = adlmon("-", "--quiet", "--report", tmp_path / "b.json", stdin=lz4.frame.compress(FILLS.read_bytes()))
    assert plain.returncode == packed.returncode == 0
    a, b = (orjson.loads((tmp_path / n).read_bytes()) for n in ("a.json", "b.json"))
    assert a["waves"] == b["waves"] and len(a["waves"]) == 1
    assert a["inputs"]["-"]["fills"] == 12


# ----------------------------------------------------------------------------- command line

@pytest.mark.parametrize("flag", ["--report", "--wavelog", "--metrics-out"])
def test_an_output_that_cannot_be_written_is_refused_before_any_input_is_read(tmp_path, flag):
    r = adlmon(FILLS, flag, tmp_path / "missing_dir" / "out")
    err = r.stderr.decode()
    assert r.returncode == 2 and "Traceback" not in err
    assert f"{flag} {tmp_path / 'missing_dir' / 'out'}: directory {tmp_path / 'missing_dir'} does not exist" in err
    assert b"replayed" not in r.stdout  # nothing was read
    r = adlmon(FILLS, flag, tmp_path)
    assert r.returncode == 2 and "is a directory" in r.stderr.decode()


def test_a_directory_is_read_for_the_archive_files_it_holds_and_the_rest_named(tmp_path):
    d = tmp_path / "archive"
    (d / "node_fills_by_block" / "hourly" / "20251010").mkdir(parents=True)
    shutil.copy(FILLS, d / "node_fills_by_block" / "hourly" / "20251010" / "21")
    for p in CASCADE.glob("*.json"):
        shutil.copy(p, d / p.name)
    shutil.copy(CASCADE / "misc_events.jsonl", d / "misc_events.jsonl")
    (d / "README.txt").write_text("notes about this archive\n")
    r = adlmon(d, "--report", tmp_path / "r.json", "--quiet")
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert f"skipped {d / 'README.txt'}: not a node file" in err
    doc = orjson.loads((tmp_path / "r.json").read_bytes())
    direct = one_replay(sorted(CASCADE.glob("*.json")) + [FILLS, CASCADE / "misc_events.jsonl"])
    assert doc["totals"]["needed_usd"] == pytest.approx(direct.totals["needed_usd"])
    assert doc["waves"][0]["deficit_usd"] == pytest.approx(5.0)


def test_a_simulation_directory_glob_skips_truth_json_with_a_note(tmp_path):
    out = tmp_path / "sim"
    res = sim.simulate(out, accounts=300, coins=2, seed=5)
    everything = sorted(out.iterdir())
    assert out / "truth.json" in everything
    r = adlmon(*everything, "--report", tmp_path / "r.json", "--quiet")
    err = r.stderr.decode()
    assert r.returncode == 0, err
    assert f"skipped {out / 'truth.json'}: not a node file" in err
    doc = orjson.loads((tmp_path / "r.json").read_bytes())
    assert doc["totals"]["parse_errors"] == 0
    assert len(doc["waves"]) == len(res.truth["waves"])


def test_empty_input_is_a_warning_and_exit_1(tmp_path):
    empty = tmp_path / "node_fills_by_block.jsonl"
    empty.write_bytes(b"")
    r = adlmon(empty, "--quiet")
    assert r.returncode == 1 and "no input data was read" in r.stderr.decode()
    r = adlmon("-", "--quiet", stdin=b"")
    assert r.returncode == 1 and "no input data was read" in r.stderr.decode()


def test_a_failing_report_builder_loses_neither_the_wave_nor_the_replay(tmp_path):
    def broken(wave):
        raise ZeroDivisionError("a mechanism bug")

    res = replay.replay_files([FILLS, CASCADE / "misc_events.jsonl"], 5000, (0,), report_builder=broken)
    (w,) = res.waves
    assert res.reports[0]["report_error"] == "ZeroDivisionError: a mechanism bug"
    assert res.reports[0]["needed_usd"] == pytest.approx(w.needed_usd)
    assert not res.ok and res.totals["report_errors"] == 1
