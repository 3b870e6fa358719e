"""adlmon.io.lz4: checksums verified where the frame carries them, corruption and
truncation named, concatenated frames read."""

from __future__ import annotations

import lz4.frame
import pytest

from adlmon.io import CorruptInput, TruncatedInput
from adlmon.io.lz4 import FrameStats, decompress

DATA = b"".join(b'{"n": %d, "pad": "%s"}\n' % (i, b"ab" * (i % 17)) for i in range(60_000))


def pieces(blob: bytes, size: int = 4096) -> list[bytes]:
    return [blob[i:i + size] for i in range(0, len(blob), size)]


def flipped(blob: bytes, at: float) -> bytes:
    b = bytearray(blob)
    b[int(len(b) * at)] ^= 0xFF
    return bytes(b)


def test_concatenated_frames_decode_in_order_with_their_checksum_flags():
    blob = (lz4.frame.compress(DATA[:1000], content_checksum=True)
            + lz4.frame.compress(DATA[1000:], block_checksum=True))
    stats = FrameStats()
    assert b"".join(decompress(pieces(blob, 333), stats)) == DATA
    assert (stats.frames, stats.content_checksums, stats.block_checksums, stats.unchecked) == (2, 1, 1, 0)


@pytest.mark.parametrize("flags, what", [
    ({"content_checksum": True, "store_size": False}, "content checksum mismatch"),
    ({"block_checksum": True, "block_size": lz4.frame.BLOCKSIZE_MAX64KB}, "block checksum mismatch"),
])
def test_a_flipped_byte_is_reported_as_a_checksum_mismatch(flags, what):
    blob = flipped(lz4.frame.compress(DATA, **flags), 0.5)
    out = []
    with pytest.raises(CorruptInput, match=what):
        for piece in decompress(pieces(blob)):
            out.append(piece)
    if "block_checksum" in flags:
        # the blocks before the bad one were delivered
        assert 0 < len(b"".join(out)) < len(DATA) and DATA.startswith(b"".join(out))


def test_a_frame_without_checksums_is_counted_as_unchecked():
    stats = FrameStats()
    assert b"".join(decompress([lz4.frame.compress(DATA)], stats)) == DATA
    assert stats.unchecked == 1


def test_a_truncated_frame_raises_after_what_it_held():
    blob = lz4.frame.compress(DATA, block_size=lz4.frame.BLOCKSIZE_MAX64KB)
    out = []
    with pytest.raises(TruncatedInput, match="ends early"):
        for piece in decompress(pieces(blob[: len(blob) // 2])):
            out.append(piece)
    assert DATA.startswith(b"".join(out)) and len(b"".join(out)) > len(DATA) // 4
