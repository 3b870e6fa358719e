"""File formats (DESIGN §2): archive lines, capture lines, LZ4; readers and writers
used by replay, capture, the fakes and the node tailer. No venue is named here.

A format has one home: ``lz4`` (frame decompression with its checksums
verified), ``lines`` (streamed byte lines with a length cap, linear in the
input), ``archive`` (opening a path or standard input, whole-file reads, content
identity, what a directory holds), ``capture`` (one received frame a line).

Reading errors are :class:`InputError` (an ``OSError``): ``TruncatedInput`` when
the data ends inside an LZ4 frame, ``CorruptInput`` when a checksum or the
frame structure is wrong. The data read before the error has been delivered.
"""

from __future__ import annotations


class InputError(OSError):
    """An input that cannot be read to its end (the message says where and why)."""


class TruncatedInput(InputError):
    """The input ends inside an LZ4 frame."""


class CorruptInput(InputError):
    """A checksum or the structure of an LZ4 frame is wrong."""
