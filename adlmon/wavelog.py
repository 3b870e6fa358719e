"""The wavelog sink: one JSON wave report a line, appended (DESIGN §1 "sinks").

A sink that fails loudly and loses nothing (issue 9, "Sinks"):

* every report is encoded once and queued; :meth:`Wavelog.flush` appends what
  is queued with ``os.write`` on an ``O_APPEND`` descriptor, so a short write
  (a disk filling up mid-line) keeps the unwritten tail at the head of the
  queue and the next attempt completes the line: no torn or lost line;
* a write error (``ENOSPC``, ``EFBIG`` past ``RLIMIT_FSIZE``, ``EIO``, a
  vanished directory) is counted (``adlmon_sink_write_errors_total{sink}``),
  logged (throttled), kept in :meth:`problems` for ``/readyz``, and retried
  with exponential backoff (:meth:`retry`, called by the daemon every second);
  the reports wait in a bounded queue (``max_pending``; past it the oldest are
  dropped and counted in ``adlmon_sink_dropped_records_total``);
* once a write succeeds again, everything queued is written in order and
  readiness recovers.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable

import orjson

from adlmon.errorlog import ErrorLog
from adlmon.net.backoff import Backoff

log = logging.getLogger(__name__)

SINK = "wavelog"


def encode(report: dict) -> bytes:
    return orjson.dumps(report, default=str, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"


class Wavelog:
    """Appends wave reports to ``path`` (module docstring). ``write``, ``retry``, ``close``."""

    def __init__(self, path: str | os.PathLike, metrics: Any = None, *, max_pending: int = 10_000,
                 backoff: Backoff | None = None, clock: Callable[[], float] = time.monotonic,
                 os_write: Callable[[int, bytes], int] = os.write):
        self.path = Path(path)
        self.metrics = metrics
        self.max_pending = max_pending
        self.backoff = backoff or Backoff(0.5, 30.0)
        self.clock = clock
        self._os_write = os_write
        self._fd: int | None = None
        self._pending: deque[bytes] = deque()
        self.written = 0  # reports fully written
        self.errors = 0
        self.dropped = 0
        self.last_error = ""
        self._retry_at: float | None = None
        self._log = ErrorLog(log, first=3, every=100)
        if metrics is not None:
            metrics.declare_sink(SINK)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def open(self) -> None:
        """Open (creating the directory); raises OSError when that is impossible at start."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, report: dict) -> bool:
        """Queue one report and write what is queued now, unless a retry is scheduled.
        True when nothing is left waiting."""
        self._pending.append(encode(report))
        if len(self._pending) > self.max_pending:
            self._pending.popleft()
            self.dropped += 1
            if self.metrics is not None:
                self.metrics.sink_dropped(SINK)
            self._log.log("dropped", "wavelog %s: queue full (%d reports); the oldest was "
                          "dropped (%d so far)", self.path, self.max_pending, self.dropped)
        if self._retry_at is not None:  # failing: the retry schedule decides
            self._gauge()
            return False
        return self.flush()

    def retry(self) -> bool:
        """Write what waits if the backoff allows it now. True when nothing waits."""
        if not self._pending:
            return True
        if self._retry_at is not None and self.clock() < self._retry_at:
            return False
        return self.flush()

    def flush(self) -> bool:
        """Write everything queued. On an OSError: count, keep, schedule a retry."""
        try:
            if self._fd is None:
                self.open()
            while self._pending:
                line = self._pending[0]
                n = self._os_write(self._fd, line)
                if n <= 0:  # nothing taken: treat as full, or this loop would spin
                    raise OSError(errno.ENOSPC, "write accepted 0 bytes")
                if n < len(line):
                    self._pending[0] = line[n:]  # the rest of the line goes first next time
                    continue
                self._pending.popleft()
                self.written += 1
        except OSError as exc:
            self.errors += 1
            self.last_error = f"{exc.strerror or exc.__class__.__name__} ({self.path})" \
                if getattr(exc, "strerror", None) else f"{exc.__class__.__name__}: {exc}"
            if self.metrics is not None:
                self.metrics.sink_error(SINK)
            delay = self.backoff.next_delay()
            self._retry_at = self.clock() + delay
            self._log.log(exc.__class__.__name__, "wavelog %s: write failed (%s); %d reports "
                          "kept, retrying in %.1f s", self.path, exc, len(self._pending), delay,
                          level=logging.ERROR)
            if self._fd is not None and not self.path.parent.exists():
                self._close_fd()  # the directory went away: reopen (and recreate) next time
            self._gauge()
            return False
        if self._retry_at is not None:
            log.info("wavelog %s: writable again; every waiting report written", self.path)
        self._retry_at = None
        self.backoff.reset()
        self._gauge()
        return True

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.sink_pending(SINK, len(self._pending))

    def problems(self) -> list[str]:
        """Readiness reasons (empty when healthy)."""
        if self._retry_at is None:
            return []
        return [f"sink {SINK}: {len(self._pending)} reports waiting, last write failed: "
                f"{self.last_error}"]

    def status(self) -> dict:
        return {"path": str(self.path), "written": self.written, "pending": len(self._pending),
                "errors": self.errors, "dropped": self.dropped, "last_error": self.last_error,
                "healthy": self._retry_at is None}

    def close(self) -> bool:
        """Last flush, fsync, close. True when nothing was left unwritten."""
        ok = self.flush()
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                log.error("wavelog %s: fsync failed: %s", self.path, exc)
                ok = False
            self._close_fd()
        if self._pending:
            log.error("wavelog %s: %d reports could not be written at shutdown (%s)", self.path,
                      len(self._pending), self.last_error)
        return ok

    def _close_fd(self) -> None:
        try:
            os.close(self._fd)
        except OSError:
            pass
        self._fd = None
