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

Once and whole (issue 12, crash-only):

* every complete line is fsynced as it is written, so a wave in the file
  survives a host crash;
* on open the file is read once: a last line without its newline (or one that
  is not JSON) is a write cut short by ``kill -9`` or a crash, and is cut off
  (``adlmon_wavelog_repairs_total{kind="truncated_tail"}``, logged); its wave is
  reported again, whole, by the restarted daemon;
* the ``(venue, wave_id)`` pairs in the file (and queued) are remembered: a
  report of a wave already there is not written again (``duplicate_wave``), so a
  restart that re-reports the waves after its last state snapshot leaves one
  line per wave; :meth:`last_wave_id` is where ids stood;
* :meth:`pending_lines` / :meth:`requeue`: the whole lines still waiting for a
  failing disk, carried in the state snapshot across a restart.
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
TRUNCATED_TAIL = "truncated_tail"
DUPLICATE_WAVE = "duplicate_wave"


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
        self._whole: deque[bytes] = deque()  # the same lines, whole (the head may be cut short)
        self.ids: dict[str, set[int]] = {}  # venue -> wave ids in the file or queued
        self.duplicates = 0
        self.cut_bytes = 0
        self._scanned = False
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
        """Open (creating the directory); raises OSError when that is impossible at start.
        The first open repairs a cut last line and learns the wave ids in the file."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self._scanned:
            self._scan_and_repair()
            self._scanned = True
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _scan_and_repair(self) -> None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        good = pos = 0  # good: the end of the last complete line
        while pos < len(data):
            nl = data.find(b"\n", pos)
            end = len(data) if nl < 0 else nl + 1
            try:
                obj = orjson.loads(data[pos:end]) if data[pos:end].strip() else None
            except orjson.JSONDecodeError:
                obj = False
            if nl < 0 or obj is False:
                if end == len(data):  # the last line: a write cut short
                    break
                log.warning("wavelog %s: the line at byte %d is not JSON; left as it is",
                            self.path, pos)
            elif isinstance(obj, dict):
                self._remember(obj)
            pos = good = end
        if good < len(data):
            self.cut_bytes = len(data) - good
            with open(self.path, "r+b") as fh:
                fh.truncate(good)
                os.fsync(fh.fileno())
            log.warning("wavelog %s: cut a partial last line of %d bytes (a write cut short by "
                        "a crash); its wave is written again, whole, when reported", self.path,
                        self.cut_bytes)
            self._repair(TRUNCATED_TAIL)

    def _repair(self, kind: str) -> None:
        if self.metrics is not None:
            self.metrics.wavelog_repair(kind)

    def _remember(self, report: dict) -> None:
        wid = report.get("wave_id")
        if isinstance(wid, int):
            self.ids.setdefault(str(report.get("venue", "")), set()).add(wid)

    def has(self, venue: str, wave_id: int) -> bool:
        return wave_id in self.ids.get(venue, ())

    def last_wave_id(self, venue: str) -> int:
        """The largest wave id of ``venue`` in the file or queued (0 when none)."""
        return max(self.ids.get(venue, ()), default=0)

    def pending_lines(self) -> list[bytes]:
        """The reports still waiting for the disk, as whole lines (a state snapshot keeps them)."""
        return list(self._whole)

    def requeue(self, lines) -> int:
        """Queue lines of :meth:`pending_lines` from before a restart (each whole, once)."""
        n = 0
        for line in lines:
            try:
                report = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if isinstance(report, dict) and self.write(report):
                n += 1
        return n

    def write(self, report: dict) -> bool:
        """Queue one report and write what is queued now, unless a retry is scheduled.
        True when nothing is left waiting. A wave already in the file (or queued) is not
        written again."""
        venue, wid = str(report.get("venue", "")), report.get("wave_id")
        if isinstance(wid, int) and self.has(venue, wid):
            self.duplicates += 1
            self._repair(DUPLICATE_WAVE)
            log.info("wavelog: wave %s of %s is already in %s; not written again", wid, venue,
                     self.path)
            return not self._pending
        line = encode(report)
        self._pending.append(line)
        self._whole.append(line)
        self._remember(report)
        if len(self._pending) > self.max_pending:
            self._pending.popleft()
            self._whole.popleft()
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
                self._whole.popleft()
                os.fsync(self._fd)  # the wave is on disk before the next one is taken
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
                "healthy": self._retry_at is None, "duplicates_skipped": self.duplicates,
                "cut_bytes_on_open": self.cut_bytes,
                "waves_in_file": {v: len(ids) for v, ids in self.ids.items()}}

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
