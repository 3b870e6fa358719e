"""Capture lines: the format round-trips, rotation compresses, bad lines are ParseErrors."""

import lz4.frame
import pytest

from adlmon.events import ParseError
from adlmon.io.capture import CLOSE, OPEN, WS, CaptureWriter, decode_line


def test_capture_line_round_trips_the_frame_text_exactly(tmp_path):
    clock = iter([1000.0, 1000.5, 1001.0]).__next__
    w = CaptureWriter(tmp_path, "lighter", wall=clock, compress=False)
    frame = '{"type":"update/trade", "x" : 1.50}'  # spacing and digits kept as received
    w.write(OPEN, "wss://x/stream#0", "")
    w.write(WS, "wss://x/stream#0", frame)
    w.write(CLOSE, "wss://x/stream#0", "", reason="close_1000")
    w.close()
    lines = w.path.read_bytes().splitlines()
    recs = [decode_line(line) for line in lines]
    assert [r.kind for r in recs] == [OPEN, WS, CLOSE]
    assert recs[1].frame == frame and recs[1].t_ms == 1000500 and recs[1].venue == "lighter"
    assert recs[2].extra == {"reason": "close_1000"}


def test_rotation_compresses_closed_files_and_names_sort_in_time(tmp_path):
    t = [0.0]
    w = CaptureWriter(tmp_path, "dydx", max_bytes=200, wall=lambda: t[0])
    for i in range(20):
        t[0] = 1_700_000_000 + i
        w.write(WS, "c", '{"i": %d}' % i)
    w.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files and all(f.endswith(".capture.jsonl.lz4") for f in files)
    got = []
    for f in files:
        got += [decode_line(x).frame for x in lz4.frame.decompress((tmp_path / f).read_bytes()).splitlines()]
    assert got == ['{"i": %d}' % i for i in range(20)]


@pytest.mark.parametrize("line, reason", [
    (b"not json", "bad_json"),
    (b'{"node": 1}', "not_capture"),
    (b'{"t": "1", "venue": "x", "src": "", "kind": "ws", "frame": ""}', "bad_time"),
    (b'{"t": 1, "venue": "x", "src": "", "kind": "zz", "frame": ""}', "unknown_kind"),
    (b'{"t": 1, "venue": "x", "src": "", "kind": "ws", "frame": 5}', "bad_field"),
])
def test_malformed_capture_lines_are_parse_errors(line, reason):
    with pytest.raises(ParseError) as exc:
        decode_line(line)
    assert exc.value.reason == reason
