"""Capture replay rate of each venue next to its bare ``orjson.loads`` ceiling (issue 10).

For every venue face with a simulator (``adlmon.venues.faces()``), one run:
simulate a cascade into a temp directory (its capture files), then, on the same
lines held in memory, per round (best of ``--rounds``, interleaved; the machine
is shared):

- ceiling: bare ``orjson.loads`` of each capture line and of the frame text it
  carries (what any reader of a capture pays at least);
- replay: ``adlmon.io.capture.decode_line`` + the face's capture parser
  (frames -> events, dedupe, time merge) + ``Engine.apply`` of every event,
  then ``finish()`` (waves out).

Rates are capture lines per CPU second. Writes the "## Capture replay" section
of BENCHMARKS.md (``python benchmarks/capture_replay.py``).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adlmon.engine.engine import Engine  # noqa: E402
from adlmon.events import ParseError, PartialParseError  # noqa: E402
from adlmon.io.capture import SUFFIX, decode_line  # noqa: E402
from adlmon.sim import open_lines  # noqa: E402
from adlmon.venues import faces  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_md import write_section  # noqa: E402


def ceiling(lines: list[bytes]) -> None:
    loads = orjson.loads
    for line in lines:
        loads(loads(line)["frame"] or "0")


def replay(face, lines: list[bytes], gap_ms: int, horizons) -> int:
    parser = face.capture_parser(face.config())
    engine = Engine(face.name, gap_ms=gap_ms, horizons_ms=horizons)
    waves = 0
    for line in lines:
        try:
            events = parser.parse(decode_line(line))
        except PartialParseError as exc:
            events = exc.events
        except ParseError:
            continue
        for e in events:
            waves += len(engine.apply(e))
    for e in getattr(parser, "finish", lambda: [])():
        waves += len(engine.apply(e))
    return waves + len(engine.finish())


def cpu(fn, *args) -> tuple[float, object]:
    t = time.process_time()
    out = fn(*args)
    return time.process_time() - t, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=4000)
    ap.add_argument("--coins", type=int, default=6)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-update", action="store_true", help="print, do not write BENCHMARKS.md")
    args = ap.parse_args()
    rows = []
    for name, face in faces().items():
        if face.simulate is None:
            continue
        with tempfile.TemporaryDirectory(prefix=f"adlmon-bench-{name}-") as tmp:
            truth = face.simulate(tmp, seed=1, accounts=args.accounts, coins=args.coins)
            lines = [bytes(x) for f in sorted(Path(tmp).glob(f"*{SUFFIX}*")) for x in open_lines(f)]
        best_c = best_r = float("inf")
        waves = 0
        for _ in range(args.rounds):
            c, _o = cpu(ceiling, lines)
            r, waves = cpu(replay, face, lines, truth["gap_ms"], truth["horizons_ms"])
            best_c, best_r = min(best_c, c), min(best_r, r)
        rows.append((name, len(lines), waves, len(lines) / best_c, len(lines) / best_r))
    text = ["## Capture replay", "",
            f"`python benchmarks/capture_replay.py --accounts {args.accounts} --coins {args.coins}` "
            f"(best of {args.rounds} rounds, CPU seconds; Python {platform.python_version()}, "
            f"{platform.machine()}). A simulated cascade per venue, as capture lines; ceiling = bare "
            "`orjson.loads` of each line and of its frame; replay = capture decode + the venue's "
            "capture parser + the engine.", "",
            "| venue | capture lines | waves | ceiling lines/s | replay lines/s | replay / ceiling |",
            "|---|---:|---:|---:|---:|---:|"]
    for name, n, waves, c, r in rows:
        text.append(f"| {name} | {n:,} | {waves} | {c:,.0f} | {r:,.0f} | {r / c:.1%} |")
    out = "\n".join(text) + "\n"
    print(out)
    if not args.no_update:
        write_section(out, "## Capture replay")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
