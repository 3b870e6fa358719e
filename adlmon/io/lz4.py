"""LZ4 frame decompression, streamed, with the frame's checksums verified.

The LZ4 frame format (lz4_Frame_format.md) may carry a header checksum (always),
a checksum per block (FLG bit 4) and a checksum of the whole content (FLG bit
2). liblz4 verifies each one present and fails on a mismatch; this module turns
that failure into :class:`CorruptInput` naming the checksum, a frame cut short
into :class:`TruncatedInput`, and records which checksums each frame carried,
so a reader can say when corruption would have gone unseen (no checksum).
Concatenated frames are read one after the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator

import lz4.frame

from adlmon.io import CorruptInput, TruncatedInput

MAGIC = b"\x04\x22\x4d\x18"
_FLG_CONTENT_CHECKSUM = 0x04
_FLG_BLOCK_CHECKSUM = 0x10


def is_lz4(head: bytes) -> bool:
    """Whether ``head`` (the first bytes of a file) starts an LZ4 frame."""
    return head[:4] == MAGIC


@dataclass
class FrameStats:
    """What the frames read so far carried."""

    frames: int = 0
    content_checksums: int = 0
    block_checksums: int = 0
    flags: list[int] = field(default_factory=list)

    @property
    def unchecked(self) -> int:
        """Frames with neither a content nor a block checksum (corruption undetectable)."""
        return sum(1 for f in self.flags if not f & (_FLG_CONTENT_CHECKSUM | _FLG_BLOCK_CHECKSUM))

    def _frame(self, head: bytes) -> None:
        flg = head[4] if len(head) > 4 else 0
        self.frames += 1
        self.flags.append(flg)
        self.content_checksums += bool(flg & _FLG_CONTENT_CHECKSUM)
        self.block_checksums += bool(flg & _FLG_BLOCK_CHECKSUM)


def _reason(exc: Exception) -> str:
    text = str(exc)
    for key, what in (("contentChecksum", "content checksum mismatch"),
                      ("blockChecksum", "block checksum mismatch"),
                      ("headerChecksum", "frame header checksum mismatch"),
                      ("frameType_unknown", "not an LZ4 frame"),
                      ("frameSize_wrong", "decoded size differs from the frame header's content size"),
                      ("maxBlockSize", "bad block size")):
        if key in text:
            return what
    return f"corrupt LZ4 data ({text})"


# Compressed bytes per decompressor call: liblz4 returns nothing from a call that
# fails, so this bounds what a checksum error loses of the data before it.
SLICE_BYTES = 16 << 10


def _slices(chunks: Iterable[bytes]) -> Iterator[bytes]:
    for raw in chunks:
        if len(raw) <= SLICE_BYTES:
            yield raw
            continue
        view = memoryview(raw)
        for i in range(0, len(raw), SLICE_BYTES):
            yield view[i:i + SLICE_BYTES]


def decompress(chunks: Iterable[bytes], stats: FrameStats | None = None) -> Iterator[bytes]:
    """Decompressed pieces of concatenated LZ4 frames.

    Raises CorruptInput (a checksum or structure error) or TruncatedInput (the
    data ends inside a frame) after yielding everything decoded before it.
    """
    stats = stats if stats is not None else FrameStats()
    d = None
    head = b""
    for piece in _slices(chunks):
        raw = piece
        while raw:
            if d is None:
                d = lz4.frame.LZ4FrameDecompressor()
                head = b""
            if len(head) < 5:
                head += raw[:5 - len(head)]
                if len(head) >= 5:
                    stats._frame(head)
            try:
                out = d.decompress(raw)
            except RuntimeError as exc:
                raise CorruptInput(_reason(exc)) from None
            if out:
                yield out
            if d.eof:
                raw = d.unused_data or b""
                d = None
            else:
                raw = b""
    if d is not None:
        raise TruncatedInput("the LZ4 frame ends early (file truncated)")
