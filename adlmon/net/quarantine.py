"""Bounded quarantine of raw frames that failed to parse (ecosystem.md §5.3).

One JSON object per line: ``{"time_ms", "venue", "channel", "reason", "error",
"raw_len", "raw"}``. The file never grows past ``max_bytes``: when the next
line would not fit, it is rotated to ``<path>.1`` (the previous ``.1`` is
dropped), so at most 2 × ``max_bytes`` are on disk. A raw frame is truncated to
a quarter of ``max_bytes`` (``raw_len`` keeps its real length). ``max_bytes = 0``
or an empty path disables the file; the errors are still counted by the caller.
Writing never raises: a full disk must not take a feed down.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import orjson

log = logging.getLogger(__name__)


class Quarantine:
    def __init__(self, path: str | os.PathLike | None, max_bytes: int):
        self.path = Path(path) if path else None
        self.max_bytes = max_bytes if self.path else 0
        self.written = 0  # lines written since start
        self.dropped = 0  # lines that could not be written (I/O error)
        self._size: int | None = None

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0

    def add(self, venue: str, channel: str, reason: str, error: str, raw: bytes | str,
            time_ms: int | None = None) -> None:
        if not self.enabled:
            return
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "replace")
        keep = max(256, self.max_bytes // 4)
        line = orjson.dumps({
            "time_ms": int(time.time() * 1000) if time_ms is None else time_ms,
            "venue": venue, "channel": channel, "reason": reason, "error": error[:500],
            "raw_len": len(raw), "raw": raw[:keep],
        }) + b"\n"
        try:
            if self._size is None:
                self._size = self.path.stat().st_size if self.path.exists() else 0
            if self._size + len(line) > self.max_bytes and self._size > 0:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
                self._size = 0
            with open(self.path, "ab") as fh:
                fh.write(line)
            self._size += len(line)
            self.written += 1
        except OSError as exc:
            self.dropped += 1
            self._size = None
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("quarantine %s not writable (%s); %d frames not kept",
                            self.path, exc, self.dropped)
