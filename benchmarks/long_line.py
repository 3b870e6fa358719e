"""Reading a line without a newline: linear now, quadratic before (issue 9).

Feeds N MiB of bytes without a newline, then one short line, in the replay's
1 MiB chunks, to ``adlmon.io.lines.line_views`` (with the default 64 MiB cap,
so the long line is gathered up to the cap, then dropped as it arrives) and to
the reader replay used before (kept here verbatim as the reference: it grew the
pending line with ``rest += chunk``). CPU seconds, best of 3, in one run.

    .venv/bin/python benchmarks/long_line.py [--mib 16 32 64 256] [--old-max 64]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adlmon.io.lines import line_views  # noqa: E402

CHUNK = b"x" * (1 << 20)


def old_line_views(chunks):
    """replay._line_views before issue 9 (the pending line grown by concatenation)."""
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


def stream(mib: int):
    for _ in range(mib):
        yield CHUNK
    yield b'\n{"ok": 1}\n'


def best(fn, mib: int, rounds: int = 3) -> float:
    out = []
    for _ in range(rounds):
        t0 = time.process_time()
        n = sum(1 for _ in fn(stream(mib)))
        out.append(time.process_time() - t0)
        assert n == 2
    return min(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, nargs="+", default=[16, 32, 64, 256])
    ap.add_argument("--old-max", type=int, default=64, help="largest size given to the old reader")
    args = ap.parse_args()
    print("| line without newline | adlmon.io.lines (s) | reader before issue 9 (s) |")
    print("|---:|---:|---:|")
    for mib in args.mib:
        new = best(line_views, mib)
        old = f"{best(old_line_views, mib, 1):.2f}" if mib <= args.old_max else "not run"
        print(f"| {mib} MiB | {new:.3f} | {old} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
