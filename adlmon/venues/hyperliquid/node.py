"""Tail a local non-validating node's hourly output files (venues.md §1.8, §1.9 item 1).

The node (``hl-node --write-fills --write-misc-events --batch-by-block``) writes
one JSON line per block under ``<data_dir>/<stream>/hourly/<YYYYMMDD>/<H>``:
``node_fills_by_block`` (every fill, both sides of every trade) and
``misc_events`` (or ``misc_events_by_block``: funding, ledger updates with the
liquidation account value). This is the complete source: every ADL fill with
its winner and ``startPosition``, every liquidation, every loser.

Tailing rules:

* only complete lines are parsed; a partial last line waits for its newline
  (the node may be mid-write). When a newer hourly file exists and the current
  one has not grown for ``rotate_after_s``, the tail moves to the next file; a
  partial line left behind is counted as a parse error (``truncated_line``) and
  quarantined, never silently dropped;
* the two streams are merged in time order (the engine wants it, DESIGN §1):
  a line is published once the other stream has reached its time or has
  nothing more to read (a caught-up stream holds nothing back);
* the position (file and byte offset after the last *published* line) is saved
  to ``<state_dir>/hyperliquid_node.json`` at most every ``save_every_s`` and
  on stop, written atomically (temp file + rename). On start it is resumed
  (unless the daemon passes ``resume_from``: the position of its state
  snapshot, where the ledger it restored stands, which wins);
  when it is missing, unreadable or corrupt (counted as a parse error
  ``corrupt_state`` on channel ``node_state``, logged) or names a file that no
  longer exists, the tail starts **at the beginning of the newest hourly file**
  of each stream: at most one hour of history, which also warms the ledger up.
  A saved offset past the end of its file (the file was replaced) restarts that
  file from 0.
* a bad line is counted per stream (``adlmon_feed_parse_errors_total``) and
  quarantined; one bad fill in a block drops only that fill. A line the parser
  raises on unexpectedly (not a ``ParseError``) is counted as ``exception``,
  quarantined and skipped the same way (issue 9): the tail goes on.
* the saved offset never passes a line whose events were not published: a
  stream's committed position moves only after the bus took the batch, and
  a run restarted by the supervisor (or a new process) resumes there, so a
  line is re-read rather than skipped (at-least-once across a crash).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import time
from pathlib import Path
from typing import Awaitable, Callable

import orjson

from adlmon.events import Event, ParseError, event_time_ms
from adlmon.net.quarantine import Quarantine
from adlmon.net.session import NullMetrics
from adlmon.venues.hyperliquid.parse import VENUE, parse_node_line

log = logging.getLogger(__name__)

FILLS = "node_fills_by_block"
MISC = "misc_events"
# The misc stream's directory name differs with --batch-by-block; first existing wins.
MISC_DIRS = ("misc_events_by_block", "misc_events")
STATE_FILE = "hyperliquid_node.json"
STATE_CHANNEL = "node_state"
MAX_READ = 8 << 20  # bytes read per stream per poll: bounds memory and loop stalls


def hourly_files(root: Path) -> list[tuple[tuple[str, int], Path]]:
    """The ``<root>/<YYYYMMDD>/<H>`` files in time order, keyed (date, hour)."""
    out = []
    try:
        days = [d for d in root.iterdir() if d.is_dir() and d.name.isdigit()]
    except OSError:
        return []
    for day in days:
        try:
            for f in day.iterdir():
                if f.is_file() and f.name.isdigit():
                    out.append(((day.name, int(f.name)), f))
        except OSError:
            continue
    out.sort(key=lambda item: item[0])
    return out


class HourlyTail:
    """One stream's position: the current hourly file and the offset after the last line."""

    def __init__(self, channel: str, root: Path, rotate_after_s: float,
                 clock: Callable[[], float] = time.monotonic):
        self.channel = channel
        self.root = root
        self.rotate_after_s = rotate_after_s
        self.clock = clock
        self.key: tuple[str, int] | None = None
        self.path: Path | None = None
        self.offset = 0
        self._buf = b""  # a partial line read but not yet terminated
        self._idle_since: float | None = None
        self.lines = 0
        self.rotations = 0
        self.committed: tuple[tuple, int] | None = None  # after the last published line
        self.pending = 0  # lines read, parsed, not yet published

    def state(self) -> dict | None:
        """The position to resume from: after the last line published (never past a
        line read but not yet published)."""
        key, offset = (self.key, self.offset) if not self.pending else self.committed
        if key is None:
            return None
        return {"file": f"{key[0]}/{key[1]}", "offset": offset}

    def _at(self, key: tuple | None, path: Path | None, offset: int) -> None:
        """Position the tail; with nothing pending this is also the committed position."""
        self.key, self.path, self.offset = key, path, offset
        self._buf = b""
        self._idle_since = None
        if not self.pending:
            self.committed = (key, offset)

    def rewind(self) -> None:
        """Back to the committed position (lines read but not published are dropped,
        to be read again): what a restarted run does."""
        self.pending = 0
        if self.committed is not None and self.committed[0] is not None:
            key, offset = self.committed
            self._at(key, self.root / key[0] / str(key[1]), offset)

    def resume(self, saved: dict | None) -> str:
        """Position from a saved state, else the start of the newest file. Returns how."""
        files = hourly_files(self.root)
        if saved is not None:
            try:
                day, hour = str(saved["file"]).split("/")
                key, offset = (day, int(hour)), int(saved["offset"])
                if offset < 0:
                    raise ValueError("negative offset")
            except (KeyError, ValueError, TypeError) as exc:
                raise ParseError("corrupt_state", f"{self.channel}: bad saved position {saved!r:.100}: {exc}")
            path = self.root / key[0] / str(key[1])
            if path.is_file():
                size = path.stat().st_size
                if offset > size:
                    self._at(key, path, 0)
                    return f"saved offset {offset} is past the end of {path} ({size} bytes): from its start"
                self._at(key, path, offset)
                return f"resumed {path} at byte {offset}"
            later = [(k, p) for k, p in files if k > key]
            if later:
                self._at(*later[0], 0)
                return f"saved file {path} is gone: from the start of {self.path}"
        if files:
            self._at(*files[-1], 0)
            return f"from the start of the newest file {self.path}"
        return f"no file yet under {self.root}: waiting"

    def read(self) -> tuple[list[tuple[bytes, tuple, int]], bytes | None, bool]:
        """New complete lines as (line, file key, offset after it); a partial line
        abandoned by a rotation (or None); whether the stream is caught up (nothing
        new and no newer file: it cannot hold back the other stream)."""
        if self.path is None:
            files = hourly_files(self.root)
            if not files:
                return [], None, True
            self._at(*files[0], 0)
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset + len(self._buf))
                chunk = fh.read(MAX_READ)
        except FileNotFoundError:
            chunk = b""
        if chunk:
            self._idle_since = None
            data = self._buf + chunk
            cut = data.rfind(b"\n") + 1
            out = []
            pos = 0
            while pos < cut:
                nl = data.index(b"\n", pos) + 1
                line = data[pos:nl]
                pos = nl
                if line.strip():
                    out.append((line, self.key, self.offset + nl))
            self._buf = data[cut:]
            self.offset += cut
            self.lines += len(out)
            return out, None, False
        # Nothing new: move on once a newer file exists and this one stayed idle.
        later = [(k, p) for k, p in hourly_files(self.root) if k > self.key]
        if not later:
            self._idle_since = None
            return [], None, True
        now = self.clock()
        if self._idle_since is None:
            self._idle_since = now
        if now - self._idle_since < self.rotate_after_s:
            return [], None, False
        abandoned = None
        if self._buf:
            abandoned, self._buf = self._buf, b""
        self._at(*later[0], 0)
        self.rotations += 1
        log.info("node tail %s: rotated to %s", self.channel, self.path)
        return [], abandoned, False


def _line_time(events: list[Event]) -> int:
    return event_time_ms(events[0]) if events else 0


class NodeTailer:
    """Tails both streams of ``data_dir`` and publishes their events until cancelled."""

    def __init__(self, data_dir: str | os.PathLike, publish: Callable[[list[Event]], Awaitable[None]],
                 *, state_dir: str | os.PathLike | None = None, metrics=None,
                 quarantine: Quarantine | None = None, poll_s: float = 0.2,
                 rotate_after_s: float = 2.0, save_every_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, resume_from: dict | None = None):
        self.data_dir = Path(data_dir)
        self.publish = publish
        self.metrics = metrics or NullMetrics()
        self.quarantine = quarantine or Quarantine(None, 0)
        self.poll_s = poll_s
        self.save_every_s = save_every_s
        self.clock = clock
        self.state_path = Path(state_dir) / STATE_FILE if state_dir else None
        misc_dir = next((d for d in MISC_DIRS if (self.data_dir / d).is_dir()), MISC_DIRS[-1])
        self.tails = {
            FILLS: HourlyTail(FILLS, self.data_dir / FILLS / "hourly", rotate_after_s, clock),
            MISC: HourlyTail(MISC, self.data_dir / misc_dir / "hourly", rotate_after_s, clock),
        }
        self.parse_errors: dict[str, int] = {}
        self._pending: list = []  # heap of parsed lines waiting for the other stream
        self._high: dict[str, int] = {}  # time of the last line read per stream
        self._seq = 0
        self.events_published = 0
        self.last_message_wall: float | None = None
        self.started = False
        self._saved_at = 0.0
        self.resume_notes: dict[str, str] = {}
        # The daemon's state snapshot (engine/persist.py) names the position its ledger
        # was saved at; it wins over this tailer's own file, which may be further on.
        self.resume_from = resume_from

    # ---------------------------------------------------------------- state
    def _load_state(self) -> dict:
        if self.state_path is None or not self.state_path.exists():
            return {}
        try:
            state = orjson.loads(self.state_path.read_bytes())
            if not isinstance(state, dict) or not isinstance(state.get("streams"), dict):
                raise ValueError("no 'streams' object")
            return state["streams"]
        except (OSError, ValueError) as exc:  # orjson.JSONDecodeError is a ValueError
            self._count_error(STATE_CHANNEL, "corrupt_state",
                              f"{self.state_path}: {exc}", self._read_raw_state())
            log.error("node tail: state file %s is unreadable (%s); starting from the newest "
                      "hourly files", self.state_path, exc)
            return {}

    def _read_raw_state(self) -> bytes:
        try:
            return self.state_path.read_bytes()[:4096]
        except OSError:
            return b""

    def save_state(self) -> None:
        if self.state_path is None:
            return
        streams = self.position()
        data = orjson.dumps({"version": 1, "data_dir": str(self.data_dir), "streams": streams,
                             "saved_at_ms": int(time.time() * 1000)})
        tmp = self.state_path.with_name(self.state_path.name + ".tmp")
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(data)
            os.replace(tmp, self.state_path)
        except OSError as exc:
            log.warning("node tail: cannot save state to %s: %s", self.state_path, exc)
        self._saved_at = self.clock()

    def position(self) -> dict:
        """Each stream's position after the last published line (``streams`` of the
        state file; what ``resume_from`` takes)."""
        return {name: t.state() for name, t in self.tails.items() if t.state() is not None}

    def start(self) -> None:
        saved = self.resume_from if self.resume_from is not None else self._load_state()
        for name, tail in self.tails.items():
            try:
                note = tail.resume(saved.get(name))
            except ParseError as exc:
                self._count_error(STATE_CHANNEL, exc.reason, str(exc), orjson.dumps(saved.get(name)))
                log.error("node tail: %s; starting from the newest hourly file", exc)
                note = tail.resume(None)
            self.resume_notes[name] = note
            log.info("node tail %s: %s", name, note)
        for name in self.tails:
            self.metrics.connected(VENUE, name, True)
        self.started = True

    # ----------------------------------------------------------------- loop
    async def run(self) -> None:
        if not self.started:
            self.start()
        else:  # restarted after a failure: what was read but not published is read again
            self._pending = []
            self._high = {}
            for tail in self.tails.values():
                tail.rewind()
        try:
            while True:
                n = await self.poll()
                if self.clock() - self._saved_at >= self.save_every_s:
                    self.save_state()
                if n == 0:
                    await asyncio.sleep(self.poll_s)
                else:
                    await asyncio.sleep(0)  # let the engine run between big reads
        finally:
            self.save_state()
            for name in self.tails:
                self.metrics.connected(VENUE, name, False)

    async def poll(self) -> int:
        """Read what is new in both streams; publish, in time order, every line up to
        the time both streams have reached (a caught-up stream holds nothing back).
        Returns the number of lines read."""
        n_lines = 0
        bound: int | None = None
        unbounded = True
        for order, (name, tail) in enumerate(self.tails.items()):
            lines, abandoned, caught_up = tail.read()
            if abandoned is not None:
                self._count_error(name, "truncated_line",
                                  f"{len(abandoned)} bytes without a newline at the end of a "
                                  "rotated file", abandoned)
            if lines:
                n_lines += len(lines)
                self.metrics.message(VENUE, name, n=len(lines))
            for line, key, end in lines:
                errors: list = []
                try:
                    events = parse_node_line(line, errors=errors)
                    t = _line_time(events) if events else self._high.get(name, 0)
                    if t.__class__ is not int:
                        raise ParseError("bad_time", f"line time {t!r:.40} is not an integer")
                except ParseError as exc:
                    self._count_error(name, exc.reason, str(exc), line)
                    events, errors = [], []
                except Exception as exc:  # noqa: BLE001 - a parser bug: skip the line, go on
                    self._count_error(name, "exception", f"{exc.__class__.__name__}: {exc}", line)
                    events, errors = [], []
                for _i, exc in errors:
                    self._count_error(name, exc.reason, str(exc), line)
                t = _line_time(events) if events else self._high.get(name, 0)
                self._high[name] = max(self._high.get(name, t), t)
                self._seq += 1
                heapq.heappush(self._pending, (t, order, self._seq, name, key, end, events))
                tail.pending += 1
            if not caught_up and name in self._high:
                unbounded = False
                bound = self._high[name] if bound is None else min(bound, self._high[name])
        batch: list[Event] = []
        commits: dict[str, tuple] = {}
        popped: dict[str, int] = {}
        while self._pending and (unbounded or self._pending[0][0] <= bound):
            _t, _o, _s, name, key, end, events = heapq.heappop(self._pending)
            commits[name] = (key, end)
            popped[name] = popped.get(name, 0) + 1
            batch.extend(events)
        if batch:
            self.last_message_wall = time.time()
            self.events_published += len(batch)
            await self.publish(batch)
        # Only now: a publish that raised leaves the offsets before these lines.
        for name, position in commits.items():
            tail = self.tails[name]
            tail.pending -= popped[name]
            tail.committed = position
        return n_lines

    def _count_error(self, channel: str, reason: str, error: str, raw: bytes) -> None:
        self.parse_errors[channel] = self.parse_errors.get(channel, 0) + 1
        self.metrics.parse_error(VENUE, channel, reason)
        self.quarantine.add(VENUE, channel, reason, error, raw)
        n = self.parse_errors[channel]
        if n <= 10 or n % 1000 == 0:
            log.warning("node tail %s: %s (%s); %d so far", channel, error[:200], reason, n)

    def status(self) -> dict:
        return {
            "kind": "node",
            "data_dir": str(self.data_dir),
            "connected": self.started,
            "streams": {name: {**(t.state() or {}), "lines": t.lines, "rotations": t.rotations,
                               "parse_errors": self.parse_errors.get(name, 0),
                               "resume": self.resume_notes.get(name, "")}
                        for name, t in self.tails.items()},
            "state_errors": self.parse_errors.get(STATE_CHANNEL, 0),
            "events": self.events_published,
        }
