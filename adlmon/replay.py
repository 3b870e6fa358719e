"""``adlmon replay``: Hyperliquid node files -> ADL waves -> one report per wave.

Inputs: ``node_fills_by_block``, the older per-fill ``node_fills`` and
``misc_events`` files (plain or LZ4 frame ``.lz4``, streamed in 1 MiB chunks,
never loaded whole; the format is detected per line), plus optional snapshot
files (``account_value_snapshot_*.json``, ``perp_positions_by_market_*.json``,
recognised by name or found with ``--snapshot-dir``). Files are merged in time
order (each file is assumed in time order, as the node writes it).

Bad input never stops a replay silently: a garbage line, a missing field or a
bad number is counted per file and reason, with the first few examples as
``file:line``; the rest of the file is read. A truncated or corrupt ``.lz4``
stops reading *that* file with a message naming the file and the line, after
everything read before it has gone through the engine; waves are still
reported and the exit code is 1.

Function API: :func:`replay_files` (the daemon, tests and benchmarks use it).
Two hooks: ``report_builder`` (wave -> report dict; default ``Wave.to_dict``,
the counterfactual plugs in there) and ``adlmon.metrics.write_replay_exposition``
for ``--metrics-out``.
"""

from __future__ import annotations

import argparse
import gc
import heapq
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
from adlmon.venues.hyperliquid import parse
from adlmon.venues.hyperliquid.snapshot import (
    ACCOUNT_VALUES_PREFIX, find_snapshot_files, load_snapshot, snapshot_kind,
)

VENUE = parse.VENUE
CHUNK_BYTES = 1 << 20
EXAMPLES_PER_INPUT = 5
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
    status: str = "ok"  # ok | stopped
    message: str = ""

    def error(self, line: int, reason: str, message: str) -> None:
        self.errors[reason] += 1
        if len(self.examples) < EXAMPLES_PER_INPUT:
            self.examples.append(f"{self.path}:{line}: {reason}: {message}")

    def stop(self, message: str) -> None:
        self.status = "stopped"
        self.message = message

    def to_dict(self) -> dict:
        return {
            "kind": self.kind or (self.kinds.most_common(1)[0][0] if self.kinds else "empty"),
            "lines": self.lines, "fills": self.fills, "events": self.events,
            "errors": dict(self.errors), "error_count": sum(self.errors.values()),
            "examples": list(self.examples), "status": self.status, "message": self.message,
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
        """False when an input had to be stopped (truncated, corrupt, unreadable)."""
        return all(i["status"] == "ok" for i in self.inputs.values())

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


def _raw_chunks(path: Path, progress: Callable[[int], None]) -> Iterator[bytes]:
    with open(path, "rb") as fp:
        while True:
            raw = fp.read(CHUNK_BYTES)
            if not raw:
                return
            progress(len(raw))
            yield raw


def _lz4_chunks(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Decompress concatenated LZ4 frames; a frame cut short raises EOFError."""
    import lz4.frame

    d = lz4.frame.LZ4FrameDecompressor()
    started = False
    for raw in chunks:
        while raw:
            out = d.decompress(raw)  # RuntimeError on corrupt data
            started = True
            if out:
                yield out
            if d.eof:
                raw = d.unused_data or b""
                d = lz4.frame.LZ4FrameDecompressor()
                started = False
            else:
                raw = b""
    if started:
        raise EOFError("the LZ4 frame ends early (file truncated)")


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    rest = b""
    for chunk in chunks:
        parts = chunk.split(b"\n")
        if rest:  # only the line cut by the chunk boundary is copied twice
            parts[0] = rest + parts[0]
        rest = parts.pop()
        yield from parts
    if rest:
        yield rest


def _line_views(chunks: Iterable[bytes]) -> Iterator[bytes | memoryview]:
    """Like :func:`_lines`, but a line inside a chunk is a view of it, not a copy."""
    rest = b""
    for chunk in chunks:
        find = chunk.find
        end = find(b"\n")
        if end < 0:
            rest += chunk
            continue
        yield rest + chunk[:end] if rest else chunk[:end]
        view = memoryview(chunk)
        start = end + 1
        end = find(b"\n", start)
        while end >= 0:
            yield view[start:end]
            start = end + 1
            end = find(b"\n", start)
        rest = chunk[start:]
    if rest:
        yield rest


def read_lines(path: str | Path, progress: Callable[[int], None] = lambda n: None, *,
               views: bool = False) -> Iterator[bytes]:
    """Byte lines of a plain or ``.lz4`` file, streamed.

    ``views``: most lines come as ``memoryview`` slices of the decompressed
    chunk instead of ``bytes`` copies (``orjson.loads`` reads either; the
    replay does this to save copying every byte once).
    """
    p = Path(path)
    chunks = _raw_chunks(p, progress)
    if p.suffix == ".lz4":
        chunks = _lz4_chunks(chunks)
    return _line_views(chunks) if views else _lines(chunks)


_ROWS, _EVENTS = True, False
_GARBAGE = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def _file_items(inp: InputReport, venue: str, progress: Callable[[int], None]) -> Iterator[tuple]:
    """(time_ms, is_rows, payload) per useful line of one file; errors go to ``inp``."""
    loads = orjson.loads
    JSONDecodeError = orjson.JSONDecodeError
    fill_rows = parse.fill_rows
    errs: list = []
    lineno = 0
    lines = read_lines(inp.path, progress, views=True)
    while True:
        try:
            line = next(lines)
        except StopIteration:
            return
        except (EOFError, RuntimeError, OSError) as exc:
            what = "truncated" if isinstance(exc, EOFError) else "corrupt or unreadable"
            inp.stop(f"{inp.path}:{lineno + 1}: {what}: {exc}; stopped reading this file "
                     f"after {lineno} lines")
            return
        lineno += 1
        inp.lines = lineno
        try:
            obj = loads(line)
        except JSONDecodeError as exc:
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
                 engine: Engine | None = None) -> ReplayResult:
    """Replay node files (and snapshot files) through one Engine.

    Snapshot files may be among ``paths`` (recognised by name) or in
    ``snapshot_paths``. ``on_wave(wave, report)`` is called as each wave is
    emitted, ``report`` = ``report_builder(wave)`` (default ``Wave.to_dict``).
    ``engine``: replay into this Engine (to inspect its ledger afterwards);
    by default a new one, whose ledger treats accounts absent from a loaded
    account-value snapshot as new (known from zero).
    """
    build = report_builder or default_report_builder
    horizons = tuple(int(h) for h in horizons_ms)
    data_paths, snap_paths = [], [Path(p) for p in snapshot_paths]
    for p in map(Path, paths):
        (snap_paths if snapshot_kind(p) else data_paths).append(p)
    inputs = {str(p): InputReport(str(p)) for p in snap_paths + data_paths}
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
    total_bytes = sum(p.stat().st_size for p in data_paths if p.exists())
    bar = _Progress(total_bytes, progress)
    for p in data_paths:
        sources.append(_file_items(inputs[str(p)], venue, bar))
    stream = sources[0] if len(sources) == 1 else heapq.merge(*sources, key=itemgetter(0))

    waves: list[Wave] = []
    reports: list[dict] = []

    def emit(done: list[Wave]) -> None:
        for w in done:
            report = build(w)
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
    emit(engine_.finish())
    stats = engine_.stats
    inputs_out = {k: v.to_dict() for k, v in inputs.items()}
    errors = [e for v in inputs.values() for e in v.examples]
    errors += [v.message for v in inputs.values() if v.status != "ok"]
    totals = _totals(waves, horizons, stats, inputs_out, gap_ms)
    totals["paper_counted"] = paper_counted_totals(waves, horizons)
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
                        help="node_fills_by_block / node_fills / misc_events files (plain or .lz4) "
                             "and snapshot files (account_value_snapshot_*.json, perp_positions_by_market_*.json)")
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
    missing = [p for p in args.paths if not Path(p).is_file()]
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

    wavelog = open(args.wavelog, "wb") if args.wavelog else None

    def on_wave(_wave: Wave, report: dict) -> None:
        if wavelog is not None:
            wavelog.write(_dump(report) + b"\n")
            wavelog.flush()

    t0 = time.perf_counter()
    try:
        result = replay_files(args.paths, gap_ms, horizons, on_wave, snapshot_paths=snaps,
                              report_builder=report_builder_for(cfg), progress=sys.stderr.isatty())
    finally:
        if wavelog is not None:
            wavelog.close()
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
        if inp["error_count"]:
            print(f"{path}: {inp['error_count']} bad lines/events "
                  f"({', '.join(f'{k} {v}' for k, v in sorted(inp['errors'].items()))})", file=sys.stderr)
            for ex in inp["examples"]:
                print(f"  {ex}", file=sys.stderr)
        if inp["status"] != "ok":
            print(f"adlmon replay: {inp['message']}", file=sys.stderr)
    if args.report:
        Path(args.report).write_bytes(orjson.dumps(
            result.report(), option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS))
    rc = 0 if result.ok else 1
    if args.metrics_out:
        try:
            from adlmon.metrics import write_replay_exposition
        except ImportError as exc:
            print(f"adlmon replay: --metrics-out needs adlmon.metrics.write_replay_exposition ({exc})",
                  file=sys.stderr)
            return 2
        write_replay_exposition(args.metrics_out, result.reports, result)
    return rc
