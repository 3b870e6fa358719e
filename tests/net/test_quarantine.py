import orjson

from adlmon.net.quarantine import Quarantine


def test_bad_frames_are_kept_as_json_lines_with_their_channel(tmp_path):
    q = Quarantine(tmp_path / "q.jsonl", 10_000)
    q.add("hyperliquid", "trades", "bad_json", "unexpected end", b'{"channel":"trades","data":[',
          time_ms=5)
    [line] = (tmp_path / "q.jsonl").read_bytes().splitlines()
    rec = orjson.loads(line)
    assert rec == {"time_ms": 5, "venue": "hyperliquid", "channel": "trades", "reason": "bad_json",
                   "error": "unexpected end", "raw_len": 28, "raw": '{"channel":"trades","data":['}


def test_file_never_exceeds_its_bound_and_rotates_once(tmp_path):
    path = tmp_path / "q.jsonl"
    q = Quarantine(path, 2_000)
    for i in range(200):
        q.add("v", "c", "bad_json", "e", "x" * 300)
    assert path.stat().st_size <= 2_000
    assert (tmp_path / "q.jsonl.1").stat().st_size <= 2_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.jsonl", "q.jsonl.1"]
    assert q.written == 200


def test_huge_frame_is_truncated_but_its_length_recorded(tmp_path):
    q = Quarantine(tmp_path / "q.jsonl", 4_000)
    q.add("v", "c", "bad_json", "e", "y" * 100_000)
    rec = orjson.loads((tmp_path / "q.jsonl").read_bytes())
    assert rec["raw_len"] == 100_000 and len(rec["raw"]) == 1_000


def test_unwritable_path_counts_instead_of_raising(tmp_path):
    q = Quarantine(tmp_path / "missing-dir" / "q.jsonl", 1_000)
    q.add("v", "c", "bad_json", "e", "z")
    assert q.dropped == 1 and q.written == 0


def test_disabled_quarantine_writes_nothing(tmp_path):
    q = Quarantine(tmp_path / "q.jsonl", 0)
    q.add("v", "c", "bad_json", "e", "z")
    assert not (tmp_path / "q.jsonl").exists()
