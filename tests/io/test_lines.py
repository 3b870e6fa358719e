"""adlmon.io.lines: byte lines whatever the chunking, linear, capped."""

from __future__ import annotations

import random
import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st

from adlmon.io.lines import TOO_LONG, line_views, lines


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]


def reference(data: bytes, cap: int) -> list[bytes]:
    """str.split semantics: the last piece is a line only when not empty."""
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    return [p if len(p) <= cap else TOO_LONG for p in parts]


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200).map(lambda b: b.replace(b"\x01", b"\n")),
       st.lists(st.integers(0, 400), max_size=12), st.integers(1, 40))
def test_lines_are_the_split_lines_whatever_the_chunks_and_the_cap(data, cuts, cap):
    pieces = chunked(data, cuts)
    assert [bytes(v) if v is not TOO_LONG else v for v in line_views(pieces, cap)] == reference(data, cap)
    assert list(lines(pieces, cap)) == reference(data, cap)


def test_a_line_far_over_the_cap_without_newline_is_skipped_in_bounded_memory():
    # 256 MiB with no newline in 1 MiB chunks, then one good line: the reader keeps
    # at most the cap, so memory stays near one chunk (the old reader grew the line
    # by concatenation: quadratic time and 256 MiB held).
    chunk = b"x" * (1 << 20)

    def stream():
        for _ in range(256):
            yield chunk
        yield b'\n{"ok": 1}\n'

    tracemalloc.start()
    try:
        got = list(lines(stream(), max_line_bytes=4 << 20))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == [TOO_LONG, b'{"ok": 1}']
    assert peak < 8 << 20


def test_a_long_line_under_the_cap_is_joined_once_from_its_pieces():
    rng = random.Random(3)
    line = bytes(rng.choice(b"abc") for _ in range(300_000))
    pieces = chunked(line + b"\nz", [rng.randrange(300_000) for _ in range(500)])
    tracemalloc.start()
    try:
        got = list(lines(pieces, max_line_bytes=1 << 20))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got == [line, b"z"]
    assert peak < 3 * len(line)  # the pieces and one joined copy, never a copy per piece
