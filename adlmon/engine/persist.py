"""Snapshots of one venue's state, so a restart carries on where the process stopped (issue 12).

Crash-only (style.md "One core for live and replay"): restart is the recovery
path, so everything the figures depend on is written down, periodically and on
shutdown, and read back on start:

- the engine: the ledger (accounts, cash, positions with entry prices, marks,
  liquidation account values), the wave tracker (the open wave with its fills,
  eligible winners and loser equities, closed waves waiting for a horizon, the
  per-loser maximum deficit behind ``deficit_increment_usd``, the next wave id),
  the pending block and the engine's counters;
- the counterfactual: the severity controller (θ, step, epoch) and the running
  regret accounting (ΣD², the θ^needed path, each policy's cumulative loss,
  OL Prop. 1 / eq. 23);
- waves the engine emitted but whose report is not written yet (they are
  reported after the restart; the once-only wavelog drops a repeat);
- the recent wave reports of ``/api/waves``, the totals behind the counters,
  each source's position (an opaque dict per source: file offsets, capture
  offsets, last trade ids) and the wavelog lines a failing disk has not taken yet.

The state objects themselves are pickled: every float, NaN and array comes back
bit for bit, so a restored run reports exactly what the uninterrupted one does
(tests/engine/test_persist.py proves it at random split points). Loading only
admits adlmon's and numpy's classes and plain containers (:class:`_Unpickler`).

File format (one file per snapshot, ``<venue>.state.<seq>`` in ``state_dir``)::

    ADLMON-STATE\\n
    {"format": 1, "adlmon": "0.1.0", "venue": ..., "seq": ..., "saved_at_ms": ...,
     "payload_bytes": N, ...summary}\\n
    <sha256 hex of the header line and the payload>\\n
    <N bytes of payload>

Writing is atomic: a temp file is written and fsynced, renamed into place and
the directory fsynced; then all but the newest :data:`KEEP` snapshots are
removed. Loading tries the newest first; a snapshot that is truncated, fails its
checksum, has another format or adlmon version, or does not unpickle is
reported (``problems``, the log, ``adlmon_state_snapshot_errors_total``) and
the previous one is tried. With none left the start is from nothing: a figure
is never invented from a damaged file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson

from adlmon import __version__

log = logging.getLogger(__name__)

MAGIC = b"ADLMON-STATE\n"
FORMAT_VERSION = 1
KEEP = 2  # snapshots kept: the newest and the previous good one
MAX_HEADER = 64 << 10

# Why a snapshot was not used, or not written: the ``reason`` label (fixed set).
CORRUPT, TRUNCATED, VERSION, UNREADABLE, CONFIG_CHANGED, WRITE_FAILED = (
    "corrupt", "truncated", "version", "unreadable", "config_changed", "write_failed")
REASONS = (CORRUPT, TRUNCATED, VERSION, UNREADABLE, CONFIG_CHANGED, WRITE_FAILED)


class SnapshotError(Exception):
    """A snapshot file that cannot be used; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


@dataclass
class VenueState:
    """What one venue's pipeline needs to carry on (module docstring).

    ``engine`` is an :class:`adlmon.engine.engine.Engine`, ``counterfactual`` an
    :class:`adlmon.counterfactual.Counterfactual` (or None when reports are plain
    ``Wave.to_dict``), ``pending_waves`` closed :class:`Wave` objects not yet
    reported, in order.
    """

    venue: str
    engine: Any
    counterfactual: Any = None
    pending_waves: list = field(default_factory=list)
    recent_waves: list = field(default_factory=list)
    totals: dict = field(default_factory=dict)
    sources: dict = field(default_factory=dict)
    unwritten_lines: list = field(default_factory=list)  # wavelog lines a failing disk holds
    saved_at_ms: int = 0

    @property
    def next_wave_id(self) -> int:
        return self.engine.waves.next_wave_id

    def summary(self) -> dict[str, Any]:
        """A few figures for the header and ``/api/status`` (readable without unpickling)."""
        e = self.engine
        return {"next_wave_id": self.next_wave_id, "waves": e.waves.emitted,
                "accounts": len(e.ledger), "last_event_ms": e.last_time_ms,
                "open_wave_start_ms": e.waves.open_wave_start_ms,
                "pending_waves": len(self.pending_waves), "sources": sorted(self.sources)}


# Plain containers and scalars pickle by opcode; only these globals may be named.
_BUILTINS = frozenset({"set", "frozenset", "dict", "list", "tuple", "int", "float", "str",
                       "bytes", "bytearray", "bool", "complex", "slice", "range", "object"})
_COLLECTIONS = frozenset({"Counter", "OrderedDict", "defaultdict", "deque"})


class _Unpickler(pickle.Unpickler):
    """Admits adlmon's and numpy's classes and plain containers, nothing else: a
    file in ``state_dir`` that passed its checksum still cannot run other code."""

    def find_class(self, module: str, name: str):
        top = module.split(".", 1)[0]
        if (top in ("adlmon", "numpy")
                or (module == "builtins" and name in _BUILTINS)
                or (module == "collections" and name in _COLLECTIONS)
                or (module == "copyreg" and name == "_reconstructor")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a state snapshot")


def encode(state: VenueState, seq: int) -> bytes:
    """The snapshot file's bytes (module docstring)."""
    payload = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    header = orjson.dumps({"format": FORMAT_VERSION, "adlmon": __version__, "venue": state.venue,
                           "seq": seq, "saved_at_ms": state.saved_at_ms,
                           "payload_bytes": len(payload), **state.summary()})
    digest = hashlib.sha256(header + b"\n" + payload).hexdigest().encode()
    return MAGIC + header + b"\n" + digest + b"\n" + payload


def _header(raw: bytes) -> dict:
    try:
        header = orjson.loads(raw)
    except ValueError as exc:
        raise SnapshotError(CORRUPT, f"bad header: {exc}") from None
    if not isinstance(header, dict):
        raise SnapshotError(CORRUPT, "the header is not an object")
    return header


def decode(data: bytes, venue: str | None = None) -> tuple[dict, VenueState]:
    """(header, state) of a snapshot file's bytes; :class:`SnapshotError` when it
    cannot be used. Never anything else: damage of any kind is one of its reasons.
    The checksum covers the header and the payload, so it is checked first."""
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            raise SnapshotError(TRUNCATED, f"{len(data)} bytes: the file ends inside its magic")
        raise SnapshotError(CORRUPT, "not an adlmon state snapshot (bad magic)")
    nl = data.find(b"\n", len(MAGIC), len(MAGIC) + MAX_HEADER)
    if nl < 0 or len(data) < nl + 66:
        short = len(data) < len(MAGIC) + MAX_HEADER if nl < 0 else True
        raise SnapshotError(TRUNCATED if short else CORRUPT, "the file ends inside its header")
    raw_header = data[len(MAGIC):nl]
    digest, payload = data[nl + 1:nl + 65], data[nl + 66:]
    if data[nl + 65:nl + 66] != b"\n" or \
            hashlib.sha256(raw_header + b"\n" + payload).hexdigest().encode() != digest:
        size = None
        try:
            size = _header(raw_header).get("payload_bytes")
        except SnapshotError:
            pass
        if isinstance(size, int) and len(payload) < size:
            raise SnapshotError(TRUNCATED, f"payload {len(payload)} of {size} bytes")
        raise SnapshotError(CORRUPT, "checksum mismatch")
    header = _header(raw_header)
    fmt = header.get("format")
    if fmt != FORMAT_VERSION or header.get("adlmon") != __version__:
        raise SnapshotError(VERSION, f"format {fmt!r} of adlmon {header.get('adlmon')!r}; this is "
                                     f"format {FORMAT_VERSION} of adlmon {__version__}")
    if venue is not None and header.get("venue") != venue:
        raise SnapshotError(CORRUPT, f"a snapshot of venue {header.get('venue')!r}, not {venue!r}")
    try:
        state = _Unpickler(io.BytesIO(payload)).load()
    except Exception as exc:  # noqa: BLE001 - any failure of a checked payload is a bad file
        raise SnapshotError(CORRUPT, f"payload does not load: {type(exc).__name__}: {exc}") from None
    if not isinstance(state, VenueState):
        raise SnapshotError(CORRUPT, f"payload is a {type(state).__name__}, not a VenueState")
    return header, state


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class StateStore:
    """The snapshots of one venue in ``state_dir`` (module docstring).

    ``save(state)`` writes one (never raises: a failure is logged, counted and
    reported); ``load()`` -> the newest usable :class:`VenueState` or None;
    ``status()`` for ``/api/status``. ``metrics``: an :class:`adlmon.metrics.Metrics`
    (``state_saved`` / ``state_error``), optional.
    """

    def __init__(self, state_dir: str | os.PathLike, venue: str, *, keep: int = KEEP,
                 metrics: Any = None):
        if keep < 1:
            raise ValueError("keep must be at least 1")
        self.dir = Path(state_dir)
        self.venue = venue
        self.keep = keep
        self.metrics = metrics
        self.seq = 0
        self.saves = 0
        self.last_saved_ms: int | None = None
        self.last_save_bytes = 0
        self.last_save_s = 0.0
        self.problems: list[dict] = []  # every snapshot not used or not written, newest last
        self.loaded: dict | None = None  # header of the snapshot the start resumed from
        self.fell_back = False  # a newer snapshot was unusable

    def _files(self) -> list[tuple[int, Path]]:
        prefix = f"{self.venue}.state."
        out = []
        try:
            for p in self.dir.iterdir():
                if p.name.startswith(prefix) and p.name[len(prefix):].isdigit():
                    out.append((int(p.name[len(prefix):]), p))
        except OSError:
            return []
        return sorted(out)

    def _problem(self, reason: str, path: Path | None, message: str) -> None:
        self.problems.append({"reason": reason, "file": str(path) if path else "",
                              "message": message})
        del self.problems[:-20]
        if self.metrics is not None:
            self.metrics.state_error(self.venue, reason)

    # ------------------------------------------------------------------ write
    def save(self, state: VenueState) -> Path | None:
        t0 = time.perf_counter()
        state.saved_at_ms = int(time.time() * 1000)
        files = self._files()
        seq = max(self.seq, files[-1][0] if files else 0) + 1
        path = self.dir / f"{self.venue}.state.{seq}"
        tmp = self.dir / f".{path.name}.tmp"
        try:
            data = encode(state, seq)
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            _fsync_dir(self.dir)
        except (OSError, pickle.PicklingError, TypeError, AttributeError) as exc:
            self._problem(WRITE_FAILED, path, f"{type(exc).__name__}: {exc}")
            log.error("state: cannot write %s: %s", path, exc)
            try:
                tmp.unlink()
            except OSError:
                pass
            return None
        self.seq = seq
        for _s, old in [*files, (seq, path)][:-self.keep]:
            try:
                old.unlink()
            except OSError:
                pass
        self.saves += 1
        self.last_saved_ms = state.saved_at_ms
        self.last_save_bytes = len(data)
        self.last_save_s = time.perf_counter() - t0
        if self.metrics is not None:
            self.metrics.state_saved(self.venue, len(data), state.saved_at_ms / 1000.0)
        return path

    # ------------------------------------------------------------------- read
    def load(self, check: Callable[[VenueState], str | None] | None = None) -> VenueState | None:
        """The newest usable snapshot; every unusable newer one is a problem
        (reported, counted, logged) and is left on disk for inspection. ``check``:
        a state it returns a message for is not used (``config_changed``: e.g. the
        engine's gap or horizons differ from the configuration now)."""
        files = self._files()
        for i, (seq, path) in enumerate(reversed(files)):
            try:
                header, state = decode(path.read_bytes(), self.venue)
                why = check(state) if check is not None else None
                if why:
                    raise SnapshotError(CONFIG_CHANGED, why)
            except OSError as exc:
                self._problem(UNREADABLE, path, str(exc))
                log.error("state: %s unreadable (%s); trying the previous snapshot", path, exc)
                continue
            except SnapshotError as exc:
                self._problem(exc.reason, path, str(exc))
                log.error("state: %s not used (%s: %s); trying the previous snapshot",
                          path, exc.reason, exc)
                continue
            self.seq = max(self.seq, files[-1][0])
            self.loaded = {**header, "file": str(path)}
            self.fell_back = i > 0
            log.info("state: resumed from %s (saved at %s ms, next wave id %s)%s", path,
                     header.get("saved_at_ms"), header.get("next_wave_id"),
                     " after falling back past a damaged newer snapshot" if i else "")
            return state
        if files:
            self.seq = files[-1][0]
            log.error("state: no usable snapshot in %s; starting from nothing", self.dir)
        return None

    def status(self) -> dict[str, Any]:
        return {
            "dir": str(self.dir),
            "resumed_from": self.loaded,
            "fell_back": self.fell_back,
            "problems": list(self.problems),
            "saves": self.saves,
            "last_saved_ms": self.last_saved_ms,
            "last_save_bytes": self.last_save_bytes,
            "last_save_s": round(self.last_save_s, 4),
        }
