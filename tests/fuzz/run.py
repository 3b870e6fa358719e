"""``make fuzz``: every registered entry point, ``--n`` inputs each (default 100,000);
prints the counts and writes the "## Fuzzing" section of BENCHMARKS.md.

    .venv/bin/python -m tests.fuzz.run [--n 100000] [--only PREFIX] [--no-write]
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

from tests.fuzz import entry_points  # noqa: E402,F401 - registers every entry point
from tests.fuzz.harness import REGISTRY, Stats, run  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000, help="inputs per entry point")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default="", help="entry points whose name starts with this")
    ap.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = ap.parse_args()
    t0 = time.time()
    rows: list[Stats] = []
    for name, ep in REGISTRY.items():
        if not name.startswith(args.only):
            continue
        s = run(ep, args.n, args.seed)
        rows.append(s)
        print(f"{name:<48} {s.inputs:>8,} inputs  {s.accepted:>8,} accepted  {sum(s.rejected.values()):>8,} "
              f"rejected  {s.events:>8,} events  {s.waves:>4} waves  {s.seconds:6.1f} s", flush=True)
    wall = time.time() - t0
    total = Stats("all")
    for s in rows:
        total.add(s)
    print(f"{len(rows)} entry points, {total.inputs:,} inputs, no uncaught exception, {wall:.0f} s wall")
    if not args.no_write and not args.only:
        from benchmarks_md import write_section
        write_section(_section(rows, total, args, wall), "## Fuzzing")
    return 0


def _section(rows: list[Stats], total: Stats, args, wall: float) -> str:
    reasons = sorted({r for s in rows for r in s.rejected})
    lines = [
        "## Fuzzing", "",
        f"`make fuzz` (`.venv/bin/python -m tests.fuzz.run --n {args.n} --seed {args.seed}`): "
        f"{args.n:,} inputs per entry point from `tests/fuzz/mutate.py` (10% generated from nothing, the rest "
        "seeds with 1-4 structural mutations; for the byte entry points 30% of them also mutated as bytes), "
        "each through the parser, `adlmon.validate.check_event` on every event it returns, and an `Engine` "
        "(parse → engine; every wave it closes also through `Counterfactual.report`). Pass = no uncaught exception, every refusal a declared error with a "
        f"reason from `adlmon.validate.REASONS`. {platform.processor() or platform.machine()}, CPython "
        f"{platform.python_version()}, shared machine; CPU seconds of the one process, {wall:.0f} s wall in all.",
        "", "| Entry point | inputs | generated | mutated (of which bytes) | accepted | events | waves | "
        + " | ".join(f"`{r}`" for r in reasons) + " | CPU s |",
        "|---|" + "---:|" * (7 + len(reasons)) + "---:|",
    ]
    for s in rows + [total]:
        name = f"**all {len(rows)}**" if s is total else f"`{s.name}`"
        lines.append(f"| {name} | {s.inputs:,} | {s.generated:,} | {s.mutated:,} ({s.byte_mutated:,}) | "
                     f"{s.accepted:,} | {s.events:,} | {s.waves:,} | "
                     + " | ".join(f"{s.rejected.get(r, 0):,}" for r in reasons) + f" | {s.seconds:.1f} |")
    lines += ["", "Uncaught exceptions: 0 (the run stops at the first one and prints the input)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
