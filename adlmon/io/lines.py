"""Byte lines from a stream of chunks: linear in the input, with a length cap.

A line cut by a chunk boundary is gathered as a list of pieces and joined once
(never re-concatenated per chunk, which is quadratic in the line's length); a
line longer than ``max_line_bytes`` is not kept: its bytes are dropped as they
arrive, up to its newline, and :data:`TOO_LONG` is yielded in its place. The
sentinel is not JSON, so a caller that decodes lines counts it as a bad line
whether or not it looks for it; the replay names it (``line_too_long``).
Memory is bounded by one chunk plus ``max_line_bytes``.
"""

from __future__ import annotations

from typing import Iterable, Iterator

# The largest real line is about 5 MB (an 11,279-fill node_fills_by_block block).
DEFAULT_MAX_LINE_BYTES = 64 << 20
TOO_LONG = b"\x00 line longer than the line-length cap"


def line_views(chunks: Iterable[bytes],
               max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[bytes | memoryview]:
    """Lines without their newline; a line inside a chunk is a ``memoryview`` of it."""
    cap = max_line_bytes
    parts: list[bytes] = []  # the pieces of a line that crosses chunk boundaries
    held = 0
    skipping = False  # inside an over-long line: drop bytes up to its newline
    for chunk in chunks:
        find = chunk.find
        end = find(b"\n")
        if end < 0:
            if not skipping:
                held += len(chunk)
                if held > cap:
                    parts, held, skipping = [], 0, True
                else:
                    parts.append(chunk)
            continue
        if skipping:
            skipping = False
            yield TOO_LONG
        elif parts:
            if held + end > cap:
                yield TOO_LONG
            else:
                parts.append(chunk[:end])
                yield b"".join(parts)
            parts, held = [], 0
        else:
            yield chunk[:end] if end <= cap else TOO_LONG
        view = memoryview(chunk)
        start = end + 1
        end = find(b"\n", start)
        while end >= 0:
            yield view[start:end] if end - start <= cap else TOO_LONG
            start = end + 1
            end = find(b"\n", start)
        rest = len(chunk) - start
        if rest > cap:
            skipping = True
        elif rest:
            parts.append(chunk[start:])
            held = rest
    if skipping:
        yield TOO_LONG
    elif parts:
        yield b"".join(parts)


def lines(chunks: Iterable[bytes], max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[bytes]:
    """Like :func:`line_views`, every line as ``bytes``."""
    for line in line_views(chunks, max_line_bytes):
        yield line if line.__class__ is bytes else bytes(line)
