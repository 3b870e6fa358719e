"""The coverage-guided pass of ``make fuzz``: atheris (libFuzzer) on every entry point.

libFuzzer mutates a byte string and keeps the ones that reach new code of the
instrumented parsers (``adlmon.validate``, ``adlmon.venues``, ``adlmon.config``).
For a ``bytes`` entry point the bytes are the line itself half the time; otherwise
they seed the harness' mutator (tests/fuzz/mutate.py), so coverage steers which
structural mutation of which seed is tried. The oracle is the harness' (no
uncaught exception, events that meet the boundary, through an Engine).

    .venv/bin/python -m tests.fuzz.atheris_run [--runs 20000] [--only PREFIX]

One child process per entry point (libFuzzer ends its process). Exit 0 when every
entry point passed, 1 on the first failure (its input is printed), 0 with a note
when atheris is not installed.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import time


def _child(name: str, runs: int) -> int:
    import atheris

    with atheris.instrument_imports(include=["adlmon"]):
        from tests.fuzz import entry_points  # noqa: F401
        from tests.fuzz.harness import REGISTRY, Stats, _finish, check_one, make_input
        from adlmon.engine.engine import Engine

    ep = REGISTRY[name]
    stats = Stats(name)
    engine = [Engine(ep.venue, 5000, (0, 1000)) if ep.events else None]

    def one(data: bytes) -> None:
        if ep.form == "bytes" and data[:1] == b"\x00":
            stats.mutated += 1
            check_one(ep, data[1:], engine[0], stats)
        else:
            check_one(ep, make_input(ep, random.Random(data), stats), engine[0], stats)
        if stats.inputs % 5000 == 0 and engine[0] is not None:
            _finish(ep, engine[0], stats)
            engine[0] = Engine(ep.venue, 5000, (0, 1000))
        # libFuzzer ends the process without running atexit: report as it goes
        if stats.inputs % 1000 == 0 or stats.inputs >= runs:
            print(f"ATHERIS {name} inputs={stats.inputs} accepted={stats.accepted} "
                  f"rejected={sum(stats.rejected.values())} reasons={dict(stats.rejected)} "
                  f"cpu_s={time.process_time() - t0:.1f}", flush=True)

    t0 = time.process_time()
    atheris.Setup([sys.argv[0], f"-runs={runs}", "-max_len=4096", "-print_final_stats=0"], one)
    atheris.Fuzz()
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20_000, help="libFuzzer runs per entry point")
    ap.add_argument("--only", default="")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    try:
        import atheris  # noqa: F401
    except ImportError:
        print("atheris is not installed (pip install -e '.[fuzz]'): coverage-guided pass skipped")
        return 0
    if args.one:
        return _child(args.one, args.runs)
    from tests.fuzz import entry_points  # noqa: F401
    from tests.fuzz.harness import REGISTRY

    for name in REGISTRY:
        if not name.startswith(args.only):
            continue
        r = subprocess.run([sys.executable, "-m", "tests.fuzz.atheris_run", "--one", name,
                            "--runs", str(args.runs)], capture_output=True, text=True,
                           env={**os.environ, "PYTHONWARNINGS": "ignore"})
        summary = [ln for ln in r.stdout.splitlines() if ln.startswith("ATHERIS ")]
        print(summary[-1] if summary else f"ATHERIS {name}: no summary", flush=True)
        if r.returncode != 0:
            print(r.stdout[-3000:], r.stderr[-6000:], sep="\n")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
