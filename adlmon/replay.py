"""``adlmon replay``: Hyperliquid node files -> ADL waves -> one report per wave.

Inputs: ``node_fills_by_block``, the older per-fill ``node_fills`` and
``misc_events`` files (plain or LZ4 frame, streamed through ``adlmon.io``,
never loaded whole; the format is detected per line), plus optional snapshot
files (``account_value_snapshot_*.json``, ``perp_positions_by_market_*.json``,
recognised by name or found with ``--snapshot-dir``), directories holding them,
and ``-`` (standard input). Files are merged in time order (each file is
assumed in time order, as the node writes it; a line earlier than one before
it is counted and reported). :func:`plan_inputs` decides what is read: files
that are not node files and content already given are skipped with a note.

Bad input never stops a replay silently and never gives a traceback: a garbage
line, a missing field, a bad number, a line over the length cap is counted per
file and reason, with the first few examples as ``file:line``; the rest of the
file is read. A truncated or corrupt ``.lz4`` (a checksum mismatch, or lines
broken inside frames without checksums) stops or marks *that* file with a
message naming the file and the line, after everything read before it has gone
through the engine; waves are still reported and the exit code is 1.

Function API: :func:`replay_files` (the daemon, tests and benchmarks use it).
Two hooks: ``report_builder`` (wave -> report dict; default ``Wave.to_dict``,
the counterfactual plugs in there) and ``adlmon.metrics.write_replay_exposition``
for ``--metrics-out``.
"""

from __future__ import annotations

import argparse
import gc
import heapq
import os
import re
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from operator import itemgetter
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import orjson

from adlmon.config import ConfigError, load_config
from adlmon.engine.engine import Engine
from adlmon.engine.ledger import Ledger
from adlmon.engine.waves import Wave, paper_counted_totals
from adlmon.events import ParseError
from adlmon.io import CorruptInput, TruncatedInput
from adlmon.io import archive
from adlmon.io.lines import DEFAULT_MAX_LINE_BYTES, TOO_LONG
from adlmon.io.lz4 import FrameStats
from adlmon.venues.hyperliquid import parse
from adlmon.venues.hyperliquid.snapshot import (
    ACCOUNT_VALUES_PREFIX, find_snapshot_files, load_snapshot, snapshot_kind,
)

VENUE = parse.VENUE
EXAMPLES_PER_INPUT = 5
SNIFF_LINES = 8  # a file is an input when one of its first non-blank lines is a node line
ReportBuilder = Callable[[Wave], dict]


def default_report_builder(wave: Wave) -> dict:
    """The report of one wave without the counterfactual (the lead's hook point)."""
    return wave.to_dict()


# ----------------------------------------------------------------------------- results

@dataclass
class InputReport:
    """What one input file gave: lines, fills, events, errors by reason and line."""

    path: str
    kind: str = ""
    lines: int = 0
    fills: int = 0
    events: int = 0
    kinds: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    status: str = "ok"  # ok | stopped | corrupt | skipped
    message: str = ""
    out_of_order: int = 0  # lines earlier than a line before them
    notes: list[str] = field(default_factory=list)

    def error(self, line: int, reason: str, message: str) -> None:
        self.errors[reason] += 1
        if len(self.examples) < EXAMPLES_PER_INPUT:
            self.examples.append(f"{self.path}:{line}: {reason}: {message}")

    def stop(self, message: str, status: str = "stopped") -> None:
        self.status = status
        self.message = message

    def to_dict(self) -> dict:
        return {
            "kind": self.kind or (self.kinds.most_common(1)[0][0] if self.kinds else "empty"),
            "lines": self.lines, "fills": self.fills, "events": self.events,
            "errors": dict(self.errors), "error_count": sum(self.errors.values()),
            "examples": list(self.examples), "status": self.status, "message": self.message,
            "out_of_order_lines": self.out_of_order, "notes": list(self.notes),
        }


@dataclass
class ReplayResult:
    waves: list[Wave]
    totals: dict
    inputs: dict[str, dict]
    errors: list[str]  # file:line examples and stop messages
    reports: list[dict] = field(default_factory=list)
    stats: dict = field(default_factory=dict)  # engine counters
    time_range_ms: tuple[int | None, int | None] = (None, None)  # first, last event time
    paper_comparison: dict | None = None  # set by paper_comparison_hook

    @property
    def ok(self) -> bool:
        """False when an input had to be stopped (truncated, corrupt, unreadable) or
        there was nothing to replay; a skipped input (not an input, a duplicate) is fine."""
        return (self.lines > 0 and not self.totals.get("report_errors")
                and all(i["status"] in ("ok", "skipped") for i in self.inputs.values()))

    @property
    def lines(self) -> int:
        """Lines read and snapshot records loaded, over every input."""
        return sum(i["lines"] + (i["events"] if i["kind"] == "snapshot" else 0)
                   for i in self.inputs.values())

    def report(self) -> dict:
        """The ``--report`` document: {"waves", "totals", "inputs"} (+ "paper_comparison")."""
        doc = {"waves": self.reports, "totals": self.totals, "inputs": self.inputs}
        if self.paper_comparison is not None:
            doc["paper_comparison"] = self.paper_comparison
        return doc


# ----------------------------------------------------------------------------- reading

class _Progress:
    """A one-line progress bar on stderr, only when stderr is a terminal."""

    def __init__(self, total_bytes: int, enabled: bool):
        self.total = max(total_bytes, 1)
        self.done = 0
        self.enabled = enabled
        self.t0 = time.monotonic()
        self.last = 0.0

    def __call__(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        frac = min(self.done / self.total, 1.0)
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\rreplay [{bar:<30}] {frac:6.1%} {now - self.t0:7.1f} s")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r" + " " * 60 + "\r")
            sys.stderr.flush()


_ROWS, _EVENTS = True, False
_GARBAGE = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def _file_items(inp: InputReport, venue: str, progress: Callable[[int], None],
                max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[tuple]:
    """(time_ms, is_rows, payload) per useful line of one file; errors go to ``inp``.

    Times must not go back within a file (the merge relies on it): a line
    earlier than the latest before it is still applied, and counted in
    ``inp.out_of_order``."""
    frames = FrameStats()
    high = -1
    try:
        for item in _file_lines(inp, venue, progress, max_line_bytes, frames):
            t = item[0]
            if t < high:
                inp.out_of_order += 1
            else:
                high = t
            yield item
    finally:
        if frames.frames and frames.unchecked:
            inp.notes.append(f"{frames.unchecked} of {frames.frames} LZ4 frames carry no checksum: "
                             "corruption inside them shows only as bad lines")
            if inp.errors.get("bad_json") and inp.status == "ok":
                inp.stop(f"{inp.path}: {inp.errors['bad_json']} lines are not JSON inside LZ4 frames "
                         "without checksums: the file is corrupt", "corrupt")


def _file_lines(inp: InputReport, venue: str, progress: Callable[[int], None],
                max_line_bytes: int, frames: FrameStats) -> Iterator[tuple]:
    loads = orjson.loads
    JSONDecodeError = orjson.JSONDecodeError
    fill_rows = parse.fill_rows
    errs: list = []
    lineno = 0
    lines = archive.read_lines(inp.path, progress, views=True, max_line_bytes=max_line_bytes,
                               stats=frames)
    while True:
        try:
            line = next(lines)
        except StopIteration:
            return
        except OSError as exc:
            if isinstance(exc, TruncatedInput):
                what, status = "truncated", "stopped"
            elif isinstance(exc, CorruptInput):
                what, status = "corrupt", "corrupt"
            else:
                what, status = "unreadable", "stopped"
            inp.stop(f"{inp.path}:{lineno + 1}: {what}: {exc.strerror or exc}; stopped reading "
                     f"this file after {lineno} lines", status)
            return
        lineno += 1
        inp.lines = lineno
        try:
            obj = loads(line)
        except JSONDecodeError as exc:
            if line is TOO_LONG:
                inp.error(lineno, "line_too_long", f"a line longer than {max_line_bytes:,} bytes "
                                                   "(--max-line-bytes) was skipped")
                continue
            line = bytes(line)
            if line.strip():
                inp.error(lineno, "bad_json", f"not JSON ({exc}): {line[:60]!r}")
            continue
        try:
            events = obj.get("events") if obj.__class__ is dict else None
            if events.__class__ is list and (not events or events[0].__class__ is list):
                rows = fill_rows(events, venue, errs)
                if errs:
                    for i, exc in errs:
                        inp.error(lineno, exc.reason, f"event {i}: {exc}")
                    errs.clear()
                inp.kinds[parse.NODE_FILLS_BY_BLOCK] += 1
                if rows:
                    inp.fills += len(rows)
                    # Free the decoded line before the engine runs: its memory is
                    # then reused, still in cache, by the next line's decoding.
                    line = obj = events = None
                    yield rows[0][6], _ROWS, rows
                continue
            kind = parse.line_kind(obj)
            if kind is None:
                raise ParseError("unknown_format",
                                 f"not a node fills or misc_events line: {bytes(line[:60])!r}")
            inp.kinds[kind] += 1
            if kind == parse.NODE_FILLS:
                row = parse.node_fill_row(obj, venue)
                inp.fills += 1
                line = obj = None
                yield row[6], _ROWS, [row]
                continue
            if kind == parse.NODE_FILLS_BY_BLOCK:  # "events" that is not a list
                parse.block_fill_rows(obj, venue)
                continue
            if kind == parse.MISC_EVENTS_BY_BLOCK:
                evs = parse.misc_block_events(obj, venue, errs)
                if errs:
                    for i, exc in errs:
                        inp.error(lineno, exc.reason, f"event {i}: {exc}")
                    errs.clear()
            else:
                evs = parse.misc_events(obj, venue)
            if evs:
                inp.events += len(evs)
                line = obj = None
                yield evs[0].time_ms, _EVENTS, evs
        except ParseError as exc:
            inp.error(lineno, exc.reason, str(exc))
        except _GARBAGE as exc:
            inp.error(lineno, "bad_value", f"{type(exc).__name__}: {exc}")


# ----------------------------------------------------------------------------- what to read

_NODE_NAME = re.compile(r"node_fills|misc_events|^\d+(?:\.lz4)?$")


def _not_an_input(path: Path) -> str | None:
    """Why ``path`` is not a node file (None: it is one, or cannot be told apart).

    A node file is recognised by its name (the node's stream and hourly names,
    ``node_fills*``, ``misc_events*``) or by one of its first ``SNIFF_LINES``
    non-blank lines decoding to a node line; a file that cannot be read is kept,
    so its error is reported."""
    if _NODE_NAME.search(path.name) or any(_NODE_NAME.search(part) for part in path.parts[-4:-1]):
        return None
    seen = 0
    try:
        for line in archive.read_lines(path):
            if not line.strip():
                continue
            seen += 1
            try:
                obj = orjson.loads(line)
            except orjson.JSONDecodeError:
                obj = None
            if parse.line_kind(obj) is not None:
                return None
            if seen >= SNIFF_LINES:
                break
    except OSError:
        return None
    if not seen:
        return "empty file"
    return (f"not a node file (none of its first {seen} non-blank lines is a node_fills or "
            "misc_events line)")


def plan_inputs(paths: Iterable[str | Path], snapshot_paths: Iterable[str | Path] = ()
                ) -> tuple[list[Path], list[Path], dict[str, str]]:
    """(data files, snapshot files, {skipped path: why}) from the command line.

    A directory stands for the files below it; ``-`` is standard input. Skipped:
    files that are not inputs (``truth.json`` of a simulation, a README), and an
    input whose content was already given (the same file twice, a copy, its
    ``.lz4``: :func:`adlmon.io.archive.fingerprint`), which would count every
    fill twice."""
    data: list[Path] = []
    snaps: list[Path] = [Path(p) for p in snapshot_paths]
    skipped: dict[str, str] = {}
    seen: dict[str, str] = {}
    named = set()
    for given in paths:
        given = Path(given)
        from_dir = given.is_dir()
        for p in archive.files_under(given) if from_dir else [given]:
            key = str(p)
            if key in named:
                skipped.setdefault(key + " (again)", "given twice")
                continue
            named.add(key)
            if snapshot_kind(p):
                snaps.append(p)
                continue
            if key != archive.STDIN:
                why = _not_an_input(p)
                if why is not None:
                    skipped[key] = why
                    continue
                fp = archive.fingerprint(p)
                if fp is not None:
                    if fp in seen:
                        skipped[key] = f"duplicate: same content as {seen[fp]}"
                        continue
                    seen[fp] = key
            data.append(p)
    return data, snaps, skipped


# ----------------------------------------------------------------------------- replay

GC_GEN0_THRESHOLD = 50_000


@contextmanager
def collecting_less() -> Iterator[None]:
    """The replay's garbage-collector setting, restored on exit.

    Every fill row is a short-lived tuple; with the default gen-0 threshold (700)
    the collector runs every few hundred fills and costs ~20% of the replay.
    Nothing here builds reference cycles per line, so collect less often.
    (``benchmarks/replay.py`` runs its ceiling passes under the same setting.)
    """
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], GC_GEN0_THRESHOLD), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


def replay_files(paths: Iterable[str | Path], gap_ms: int = 5000,
                 horizons_ms: Iterable[int] = (0, 500, 1000, 2000, 5000),
                 on_wave: Callable[[Wave, dict], Any] | None = None, *,
                 snapshot_paths: Iterable[str | Path] = (),
                 report_builder: ReportBuilder | None = None,
                 venue: str = VENUE, progress: bool = False,
                 engine: Engine | None = None,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
                 finish: bool = True) -> ReplayResult:
    """Replay node files (and snapshot files) through one Engine.

    Snapshot files may be among ``paths`` (recognised by name) or in
    ``snapshot_paths``. ``on_wave(wave, report)`` is called as each wave is
    emitted, ``report`` = ``report_builder(wave)`` (default ``Wave.to_dict``).
    ``engine``: replay into this Engine (to inspect its ledger afterwards);
    by default a new one, whose ledger treats accounts absent from a loaded
    account-value snapshot as new (known from zero). ``finish=False``: the
    input does not end here (a caller continues the same Engine with later
    data, e.g. a restart replaying what arrived after its state snapshot), so
    open waves stay open and pending horizons pending.

    What is read is decided by :func:`plan_inputs` (directories, files that are
    not inputs, the same content twice); a skipped path is in the result's
    ``inputs`` with status ``skipped`` and the reason.
    """
    build = report_builder or default_report_builder
    horizons = tuple(int(h) for h in horizons_ms)
    data_paths, snap_paths, skipped = plan_inputs(paths, snapshot_paths)
    inputs = {str(p): InputReport(str(p)) for p in snap_paths + data_paths}
    for path, note in skipped.items():
        inputs[path] = InputReport(path, kind="skipped", status="skipped", message=note)
    sources = []
    engine_ = engine
    if snap_paths:
        rep = inputs[str(snap_paths[0])]
        for p in snap_paths[1:]:
            inputs[str(p)].kind = "snapshot"
        rep.kind = "snapshot"
        try:
            events, t = load_snapshot(snap_paths, venue)
            rep.events = len(events)
            sources.append(iter([(t, _EVENTS, events)]))
            full = any(snapshot_kind(p) == ACCOUNT_VALUES_PREFIX for p in snap_paths)
        except (ParseError, OSError) as exc:
            rep.stop(f"snapshot not used: {exc}")
            full = False
    else:
        full = False
    if engine_ is None:
        engine_ = Engine(venue, gap_ms, horizons, Ledger(new_accounts_empty=full))
    total_bytes = sum(p.stat().st_size for p in data_paths if p.is_file())
    bar = _Progress(total_bytes, progress)
    for p in data_paths:
        sources.append(_file_items(inputs[str(p)], venue, bar, max_line_bytes))
    stream = (iter(()) if not sources else sources[0] if len(sources) == 1
              else heapq.merge(*sources, key=itemgetter(0)))

    waves: list[Wave] = []
    reports: list[dict] = []

    report_errors: list[str] = []

    def emit(done: list[Wave]) -> None:
        for w in done:
            try:
                report = build(w)
            except Exception as exc:  # noqa: BLE001 - a report bug must not lose the wave or the replay
                report = w.to_dict()
                report["report_error"] = f"{type(exc).__name__}: {exc}"[:300]
                report_errors.append(f"wave {w.wave_id}: the report builder failed "
                                     f"({report['report_error']}); the wave is reported without it")
            waves.append(w)
            reports.append(report)
            if on_wave is not None:
                on_wave(w, report)

    apply_rows = engine_.apply_fill_rows
    apply = engine_.apply
    try:
        with collecting_less():
            for _t, is_rows, payload in stream:
                if is_rows:
                    done = apply_rows(payload)
                else:
                    done = []
                    for ev in payload:
                        d = apply(ev)
                        if d:
                            done += d
                if done:
                    emit(done)
    finally:
        bar.close()
    if finish:
        emit(engine_.finish())
    stats = engine_.stats
    inputs_out = {k: v.to_dict() for k, v in inputs.items()}
    errors = [e for v in inputs.values() for e in v.examples]
    errors += [v.message for v in inputs.values() if v.status != "ok"]
    errors += report_errors
    totals = _totals(waves, horizons, stats, inputs_out, gap_ms)
    totals["paper_counted"] = paper_counted_totals(waves, horizons)
    totals["report_errors"] = len(report_errors)
    return ReplayResult(waves, totals, inputs_out, errors, reports, stats,
                        (engine_.first_time_ms, engine_.last_time_ms))


def _totals(waves: list[Wave], horizons: tuple[int, ...], stats: dict, inputs: dict,
            gap_ms: int) -> dict:
    """Run totals that mean something when summed. The deficit D_t is a stock (the holes
    still open at wave t), so one hole re-counts in every wave it spans (paper §4.7.1):
    the totals give the sum of the increments (each hole once) and the largest stock."""
    known = [w for w in waves if w.deficit_usd is not None]
    largest = max(known, key=lambda w: w.deficit_usd, default=None)

    def per_h(attr: str) -> dict[str, float]:
        return {str(h): sum(getattr(w, attr)[h] for w in waves) for h in horizons}

    return {
        "waves": len(waves),
        "gap_ms": gap_ms,
        "horizons_ms": list(horizons),
        "adl_fills": sum(w.adl_fills for w in waves),
        "notional_usd": sum(w.notional_usd for w in waves),
        "closed_pnl_usd": sum(w.closed_pnl_usd for w in waves),
        "needed_usd": sum(w.needed_usd for w in waves),
        "needed_missing_mark_fills": sum(w.needed_missing_mark_fills for w in waves),
        "deficit_increment_usd": sum(w.deficit_increment_usd for w in known),
        "deficit_stock_max_usd": largest.deficit_usd if largest is not None else None,
        "deficit_stock_max_wave": largest.wave_id if largest is not None else None,
        "waves_deficit_unknown": len(waves) - len(known),
        "production_haircut_usd": per_h("production_haircut_usd"),
        "excess_haircut_usd": per_h("excess_haircut_usd"),
        "excess_haircut_positive_usd": per_h("excess_haircut_positive_usd"),
        "parse_errors": sum(i["error_count"] for i in inputs.values()),
        "inputs_stopped": sum(1 for i in inputs.values() if i["status"] != "ok"),
        "engine": stats,
    }


# ----------------------------------------------------------------------------- output

def _usd(x: float | None) -> str:
    return "unknown" if x is None else f"{x:,.2f}"


def format_table(waves: list[Wave], totals: dict) -> str:
    """The per-wave table and the totals, as printed by ``adlmon replay``."""
    h0 = totals["horizons_ms"][0] if totals["horizons_ms"] else 0
    head = (f"{'wave':>4} {'start (UTC)':<23} {'dur s':>7} {'fills':>7} {'accts':>6} {'losers':>6} "
            f"{'coins':>5} {'notional $':>16} {'needed $':>14} {'deficit $':>14} "
            f"{f'H({h0}ms) $':>14} {f'excess({h0}ms) $':>16}  horizons")
    lines = [head, "-" * len(head)]
    for w in waves:
        start = datetime.fromtimestamp(w.t_start_ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:23]
        status = ",".join(sorted(set(w.horizon_status.values())))
        lines.append(
            f"{w.wave_id:>4} {start:<23} {(w.t_end_ms - w.t_start_ms) / 1000:>7.1f} {w.adl_fills:>7,} "
            f"{w.accounts:>6,} {w.losers:>6,} {len(w.coins):>5} {w.notional_usd:>16,.2f} "
            f"{w.needed_usd:>14,.2f} {_usd(w.deficit_usd):>14} {w.production_haircut_usd[h0]:>14,.2f} "
            f"{w.excess_haircut_usd[h0]:>16,.2f}  {status}")
    t = totals
    e = t["engine"]
    lines += [
        "",
        f"waves {t['waves']}  ADL fills {t['adl_fills']:,}  notional ${t['notional_usd']:,.2f}  "
        f"closed PnL ${t['closed_pnl_usd']:,.2f}",
        f"needed ${t['needed_usd']:,.2f}"
        + (f" (lower bound: {t['needed_missing_mark_fills']:,} ADL fills without markPx)"
           if t["needed_missing_mark_fills"] else ""),
        f"deficit: new holes (Σ increments) ${t['deficit_increment_usd']:,.2f}  "
        f"largest stock ${_usd(t['deficit_stock_max_usd'])}"
        + (f" (wave {t['deficit_stock_max_wave']})" if t["deficit_stock_max_wave"] is not None else "")
        + (f"  ({t['waves_deficit_unknown']} waves with unknown deficit)" if t["waves_deficit_unknown"] else ""),
        "production haircut " + "  ".join(f"H({h}ms) ${v:,.2f}" for h, v in t["production_haircut_usd"].items()),
        "excess (net) " + "  ".join(f"({h}ms) ${v:,.2f}" for h, v in t["excess_haircut_usd"].items()),
        f"fills {e['fills']:,}  liquidation fills {e['liquidation_fills']:,}  unknown dir {e['unknown_dir']:,}  "
        f"divergences {e['divergences']:,}  learned positions {e['positions_learned']:,}  "
        f"accounts {e['accounts']:,}  parse errors {t['parse_errors']:,}",
    ]
    return "\n".join(lines)


def _dump(obj: Any) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


# ----------------------------------------------------------------------------- CLI

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="node_fills_by_block / node_fills / misc_events files (plain or .lz4), "
                             "snapshot files (account_value_snapshot_*.json, perp_positions_by_market_*.json), "
                             "directories holding them, or - for standard input")
    parser.add_argument("--gap-ms", type=int, default=None,
                        help="a new wave after this much silence between ADL fills (default: config, 5000)")
    parser.add_argument("--horizons-ms", default=None,
                        help="production haircut horizons, comma separated (default: config, 0,500,1000,2000,5000)")
    parser.add_argument("--config", default=None, help="config file (engine section; default: built-in defaults)")
    parser.add_argument("--snapshot-dir", default=None,
                        help="directory holding account_value_snapshot_*.json / perp_positions_by_market_*.json")
    parser.add_argument("--report", default=None, help="write {waves, totals, inputs} as JSON here")
    parser.add_argument("--wavelog", default=None, help="write one wave report per line (JSON) here")
    parser.add_argument("--metrics-out", default=None, help="write the Prometheus exposition of the replay here")
    parser.add_argument("--quiet", action="store_true", help="no per-wave table")
    parser.add_argument("--max-line-bytes", type=int, default=DEFAULT_MAX_LINE_BYTES,
                        help="a longer line is skipped and counted as line_too_long "
                             f"(default {DEFAULT_MAX_LINE_BYTES:,}; the largest real block is ~5 MB)")


def _output_problem(path: str) -> str | None:
    """Why ``path`` cannot be written (None: it can), checked before any input is read."""
    p = Path(path)
    if p.is_dir():
        return "is a directory"
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        return f"directory {parent} does not exist"
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        return "not writable"
    return None


def _horizons(text: str) -> tuple[int, ...]:
    try:
        hs = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"--horizons-ms {text!r}: must be comma-separated integers (ms)") from None
    if not hs or any(h < 0 for h in hs) or len(set(hs)) != len(hs):
        raise ValueError(f"--horizons-ms {text!r}: must be distinct non-negative integers (ms)")
    return hs


def report_builder_for(cfg) -> ReportBuilder:
    """The wave -> report function of ``adlmon replay``: the counterfactual of
    ``[counterfactual]`` (stateful across waves, so one per replay)."""
    from adlmon.counterfactual import Counterfactual

    return Counterfactual(cfg.counterfactual).report


def paper_comparison_hook(result: ReplayResult) -> str | None:
    """When the input covers the paper's published window (10 Oct 2025) and has a
    wave in it, attach adlmon's waves beside the published ones to ``result`` and
    return the table."""
    from adlmon.venues.hyperliquid import paper_oct10

    if not paper_oct10.applies(*result.time_range_ms, result.reports):
        return None
    horizons = result.totals["horizons_ms"]
    result.paper_comparison = paper_oct10.compare(result.reports, 0 if 0 in horizons else horizons[0])
    return paper_oct10.format_comparison(result.paper_comparison)


def main(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        return exc.report()
    gap_ms = args.gap_ms if args.gap_ms is not None else cfg.engine.gap_ms
    if gap_ms <= 0:
        print(f"adlmon replay: --gap-ms {gap_ms}: must be a positive integer", file=sys.stderr)
        return 2
    try:
        horizons = _horizons(args.horizons_ms) if args.horizons_ms is not None else cfg.engine.horizons_ms
    except ValueError as exc:
        print(f"adlmon replay: {exc}", file=sys.stderr)
        return 2
    if args.max_line_bytes <= 0:
        print(f"adlmon replay: --max-line-bytes {args.max_line_bytes}: must be a positive integer",
              file=sys.stderr)
        return 2
    for flag, path in (("--report", args.report), ("--wavelog", args.wavelog),
                       ("--metrics-out", args.metrics_out)):
        problem = _output_problem(path) if path else None
        if problem:
            print(f"adlmon replay: {flag} {path}: {problem}", file=sys.stderr)
            return 2
    missing = [p for p in args.paths if p != archive.STDIN and not Path(p).exists()]
    if missing:
        print(f"adlmon replay: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    snaps: list[Path] = []
    if args.snapshot_dir:
        d = Path(args.snapshot_dir)
        if not d.is_dir():
            print(f"adlmon replay: --snapshot-dir {d}: not a directory", file=sys.stderr)
            return 2
        snaps = find_snapshot_files(d)
        if not snaps:
            print(f"adlmon replay: --snapshot-dir {d}: no account_value_snapshot_* or "
                  f"perp_positions_by_market_* file", file=sys.stderr)
            return 2

    try:
        wavelog = open(args.wavelog, "wb") if args.wavelog else None
    except OSError as exc:
        print(f"adlmon replay: --wavelog {args.wavelog}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    write_errors: list[str] = []

    def on_wave(_wave: Wave, report: dict) -> None:
        if wavelog is not None and not write_errors:
            try:
                wavelog.write(_dump(report) + b"\n")
                wavelog.flush()
            except OSError as exc:  # a full disk: say so once, keep replaying
                write_errors.append(f"--wavelog {args.wavelog}: {exc.strerror or exc}; "
                                    f"waves from {report.get('wave_id', '?')} on are not in it")

    t0 = time.perf_counter()
    try:
        result = replay_files(args.paths, gap_ms, horizons, on_wave, snapshot_paths=snaps,
                              report_builder=report_builder_for(cfg), progress=sys.stderr.isatty(),
                              max_line_bytes=args.max_line_bytes)
    finally:
        if wavelog is not None:
            try:
                wavelog.close()
            except OSError as exc:
                write_errors.append(f"--wavelog {args.wavelog}: {exc.strerror or exc}")
    elapsed = time.perf_counter() - t0

    if not args.quiet:
        print(format_table(result.waves, result.totals))
    pc = result.totals["paper_counted"]
    print(f"paper-comparable (D > 0, paper_counted): {pc['waves']} waves, {pc['waves_dropped']} with D <= 0, "
          f"{pc['waves_unknown']} unknown D; needed ${pc['needed_usd']:,.2f}  "
          f"deficit (sum of stocks, as the paper) ${pc['deficit_stock_sum_usd']:,.2f}")
    comparison = paper_comparison_hook(result)
    if comparison and not args.quiet:
        print(comparison)
    fills = result.stats.get("fills", 0)
    print(f"replayed {fills:,} fills in {elapsed:.1f} s ({fills / max(elapsed, 1e-9):,.0f} fills/s)")
    for path, inp in result.inputs.items():
        if inp["status"] == "skipped":
            print(f"adlmon replay: skipped {path}: {inp['message']}", file=sys.stderr)
            continue
        if inp["out_of_order_lines"]:
            print(f"adlmon replay: {path}: {inp['out_of_order_lines']:,} lines out of time order "
                  "(earlier than a line before them; waves of this file may be merged or split)",
                  file=sys.stderr)
        for note in inp["notes"]:
            print(f"adlmon replay: {path}: {note}", file=sys.stderr)
        if inp["error_count"]:
            print(f"{path}: {inp['error_count']} bad lines/events "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(inp['errors'].items()))})", file=sys.stderr)
            for ex in inp["examples"]:
                print(f"  {ex}", file=sys.stderr)
        if inp["status"] != "ok":
            print(f"adlmon replay: {inp['message']}", file=sys.stderr)
    for e in result.errors:
        if e.startswith("wave "):
            print(f"adlmon replay: {e}", file=sys.stderr)
    if not result.lines:
        print("adlmon replay: warning: no input data was read (every input empty or skipped)",
              file=sys.stderr)
    if args.report:
        try:
            Path(args.report).write_bytes(orjson.dumps(
                result.report(), option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS))
        except OSError as exc:
            write_errors.append(f"--report {args.report}: {exc.strerror or exc}")
    for problem in write_errors:
        print(f"adlmon replay: {problem}", file=sys.stderr)
    rc = 0 if result.ok and not write_errors else 1
    if args.metrics_out:
        try:
            from adlmon.metrics import write_replay_exposition
        except ImportError as exc:
            print(f"adlmon replay: --metrics-out needs adlmon.metrics.write_replay_exposition ({exc})",
                  file=sys.stderr)
            return 2
        try:
            write_replay_exposition(args.metrics_out, result.reports, result)
        except OSError as exc:
            print(f"adlmon replay: --metrics-out {args.metrics_out}: {exc.strerror or exc}", file=sys.stderr)
            rc = 1
    return rc
