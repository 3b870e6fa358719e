"""Archive inputs: open a path (plain, LZ4 frame, or standard input), read it whole
or as lines, tell two inputs with the same content apart, list what a directory holds.

``-`` is standard input. LZ4 is recognised by its magic number (a ``.lz4``
name without it is corrupt, not plain text). Reading is streamed in
``CHUNK_BYTES`` pieces; :mod:`adlmon.io.lines` cuts the lines.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from adlmon.io import CorruptInput
from adlmon.io import lz4 as lz4_
from adlmon.io.lines import DEFAULT_MAX_LINE_BYTES, line_views, lines

STDIN = "-"
CHUNK_BYTES = 1 << 20
FINGERPRINT_BYTES = 1 << 20


def _no_progress(_n: int) -> None:
    return None


def _read(fp: BinaryIO, progress: Callable[[int], None], chunk_bytes: int) -> Iterator[bytes]:
    while True:
        raw = fp.read(chunk_bytes)
        if not raw:
            return
        progress(len(raw))
        yield raw


def _raw(path: str | Path, progress: Callable[[int], None], chunk_bytes: int | None) -> Iterator[bytes]:
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    if str(path) == STDIN:
        yield from _read(sys.stdin.buffer, progress, chunk_bytes)
        return
    with open(path, "rb") as fp:
        yield from _read(fp, progress, chunk_bytes)


def chunks(path: str | Path, progress: Callable[[int], None] = _no_progress, *,
           stats: lz4_.FrameStats | None = None,
           chunk_bytes: int | None = None) -> Iterator[bytes]:
    """The decompressed content of ``path`` in pieces (LZ4 frames decoded, checksums verified)."""
    raw = _raw(path, progress, chunk_bytes)
    first = b""
    for piece in raw:  # enough bytes to see the magic number
        first += piece
        if len(first) >= len(lz4_.MAGIC):
            break
    if not first:
        return
    named_lz4 = str(path).endswith(".lz4")
    if lz4_.is_lz4(first):
        def again() -> Iterator[bytes]:
            yield first
            yield from raw
        yield from lz4_.decompress(again(), stats)
        return
    if named_lz4:
        raise CorruptInput("not an LZ4 frame (no LZ4 magic number at the start)")
    yield first
    yield from raw


def read_lines(path: str | Path, progress: Callable[[int], None] = _no_progress, *,
               views: bool = False, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
               stats: lz4_.FrameStats | None = None) -> Iterator[bytes]:
    """Byte lines of a plain or LZ4 file (or ``-``), streamed.

    ``views``: most lines come as ``memoryview`` slices of the decompressed
    chunk instead of ``bytes`` copies (``orjson.loads`` reads either; the
    replay does this to save copying every byte once). A line over
    ``max_line_bytes`` comes as :data:`adlmon.io.lines.TOO_LONG`.
    """
    pieces = chunks(path, progress, stats=stats)
    return line_views(pieces, max_line_bytes) if views else lines(pieces, max_line_bytes)


def read_whole(path: str | Path) -> bytes:
    """The whole decompressed content (for documents such as snapshots)."""
    return b"".join(chunks(path))


def fingerprint(path: str | Path) -> str | None:
    """The identity of an input's content: a hash of its first MiB *decompressed*
    (so ``x.jsonl`` and ``x.jsonl.lz4`` are the same input, and so are a file and
    its copy). None for standard input, an empty or unreadable file."""
    if str(path) == STDIN:
        return None
    h = hashlib.sha256()
    n = 0
    try:
        for piece in chunks(path, chunk_bytes=1 << 16):
            h.update(piece[:FINGERPRINT_BYTES - n])
            n += len(piece)
            if n >= FINGERPRINT_BYTES:
                break
    except OSError:
        return None if n == 0 else h.hexdigest()
    return h.hexdigest() if n else None


def files_under(directory: str | Path) -> list[Path]:
    """Every regular file below ``directory`` (hidden names skipped), in path order."""
    out = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        out.extend(Path(root) / f for f in sorted(files) if not f.startswith("."))
    return out
