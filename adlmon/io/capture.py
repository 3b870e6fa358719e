"""Capture files: the archive of websocket venues (DESIGN §2; issue 10).

A capture is JSON lines, one received frame (or REST answer, or connection
mark) a line::

    {"t": 1760131000123, "venue": "lighter", "src": "wss://…/stream#0",
     "kind": "ws", "frame": "<the frame's text exactly as received>"}

``t`` is the local receive time (ms), ``src`` the URL or connection name,
``kind`` one of :data:`KINDS`: ``ws`` (a data frame), ``rest`` (a REST answer:
``frame`` is the body text, ``req`` the request path and query), ``open`` /
``close`` (connection marks; ``frame`` empty, ``close`` may carry ``reason``).
More keys are allowed and kept in :attr:`CaptureRecord.extra`.

Writing (:class:`CaptureWriter`): the file being written is plain JSON lines
(each line written whole and flushed, so a ``kill -9`` leaves at most one
partial last line, which readers detect); when it reaches ``max_bytes`` or
``max_age_s`` it is closed, compressed to ``.lz4`` (when ``compress``) and a
new one opened. Names sort in time: ``<venue>-<UTC yyyymmddTHHMMSS>-<seq>.capture.jsonl[.lz4]``.

Reading (:func:`decode_line`) is pure: one line -> :class:`CaptureRecord` or
``ParseError``; :func:`is_capture_line` tells a capture from an archive line.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson

from adlmon.events import ParseError

WS, REST, OPEN, CLOSE = "ws", "rest", "open", "close"
KINDS = (WS, REST, OPEN, CLOSE)
SUFFIX = ".capture.jsonl"
_CORE = ("t", "venue", "src", "kind", "frame")


@dataclass(frozen=True, slots=True)
class CaptureRecord:
    t_ms: int  # local receive time
    venue: str
    src: str
    kind: str  # one of KINDS
    frame: str  # the frame's text exactly as received ("" for open/close marks)
    extra: dict = field(default_factory=dict)  # any further keys (req, reason, ...)


def encode(rec: CaptureRecord) -> bytes:
    """One capture line (with its newline)."""
    obj = {"t": rec.t_ms, "venue": rec.venue, "src": rec.src, "kind": rec.kind, "frame": rec.frame}
    if rec.extra:
        obj.update(rec.extra)
    return orjson.dumps(obj) + b"\n"


def is_capture_line(obj: Any) -> bool:
    """Whether a decoded JSON line is a capture record (vs. a node archive line)."""
    return isinstance(obj, dict) and "frame" in obj and "kind" in obj and "venue" in obj


def decode_line(line: bytes | str) -> CaptureRecord:
    """Pure: one capture line -> record. Raises ``ParseError`` on anything malformed."""
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ParseError("bad_json", f"capture line: {exc}") from None
    return decode_obj(obj)


def decode_obj(obj: Any) -> CaptureRecord:
    if not is_capture_line(obj):
        raise ParseError("not_capture", "capture line: not an object with venue, kind and frame")
    t, venue, src, kind, frame = (obj.get(k) for k in _CORE)
    if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < 1 << 53:
        raise ParseError("bad_time", f"capture line: t = {t!r:.40} is not a time in ms")
    if not isinstance(venue, str) or not venue or len(venue) > 40:
        raise ParseError("bad_field", f"capture line: venue = {venue!r:.40}")
    if kind not in KINDS:
        raise ParseError("unknown_kind", f"capture line: kind = {kind!r:.40}")
    if not isinstance(frame, str):
        raise ParseError("bad_field", "capture line: frame is not a string")
    if src is None:
        src = ""
    elif not isinstance(src, str):
        raise ParseError("bad_field", f"capture line: src = {src!r:.40}")
    extra = {k: v for k, v in obj.items() if k not in _CORE}
    return CaptureRecord(t, venue, src, kind, frame, extra)


def capture_name(venue: str, t_s: float, seq: int) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(t_s))
    return f"{venue}-{stamp}-{seq:06d}{SUFFIX}"


class CaptureWriter:
    """Appends capture lines to rotating files in ``directory`` (module docstring).

    One writer per venue (``venue`` names the files); ``write`` never raises on
    a full disk: the error is counted in ``errors`` and ``last_error`` and the
    line dropped (a capture must never stop the monitor it records).
    """

    def __init__(self, directory: str | Path, venue: str, *, max_bytes: int = 256 << 20,
                 max_age_s: float = 3600.0, compress: bool = True,
                 wall: Callable[[], float] = time.time):
        self.dir = Path(directory)
        self.venue = venue
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.compress = compress
        self.wall = wall
        self.errors = 0
        self.last_error = ""
        self.lines = 0
        self._fh = None
        self._path: Path | None = None
        self._opened_at = 0.0
        self._bytes = 0
        self._seq = 0

    @property
    def path(self) -> Path | None:
        return self._path

    def write(self, kind: str, src: str, frame: str | bytes, t_ms: int | None = None,
              **extra: Any) -> None:
        if isinstance(frame, (bytes, bytearray, memoryview)):
            frame = bytes(frame).decode("utf-8", "replace")
        now = self.wall()
        rec = CaptureRecord(int(now * 1000) if t_ms is None else t_ms, self.venue, src, kind,
                            frame, extra)
        line = encode(rec)
        try:
            if self._fh is None or self._bytes >= self.max_bytes or now - self._opened_at >= self.max_age_s:
                self._rotate(now)
            self._fh.write(line)
            self._fh.flush()
            self._bytes += len(line)
            self.lines += 1
        except OSError as exc:
            self.errors += 1
            self.last_error = f"{self._path}: {exc}"

    def _rotate(self, now: float) -> None:
        self._close_current()
        self.dir.mkdir(parents=True, exist_ok=True)
        while True:
            self._seq += 1
            path = self.dir / capture_name(self.venue, now, self._seq)
            if not path.exists() and not path.with_name(path.name + ".lz4").exists():
                break
        self._fh = open(path, "ab")
        self._path, self._opened_at, self._bytes = path, now, 0

    def _close_current(self) -> None:
        fh, path = self._fh, self._path
        self._fh = None
        if fh is None:
            return
        fh.flush()
        os.fsync(fh.fileno())
        fh.close()
        if self.compress and path is not None and path.stat().st_size > 0:
            compress_file(path)

    def close(self) -> None:
        try:
            self._close_current()
        except OSError as exc:
            self.errors += 1
            self.last_error = f"{self._path}: {exc}"


def compress_file(path: Path) -> Path:
    """``path`` -> ``path.lz4`` (LZ4 frame with content checksum), atomically; removes ``path``."""
    import lz4.frame

    out = path.with_name(path.name + ".lz4")
    tmp = out.with_name(out.name + ".tmp")
    with open(path, "rb") as src, lz4.frame.open(tmp, "wb", content_checksum=True) as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, out)
    path.unlink()
    return out
