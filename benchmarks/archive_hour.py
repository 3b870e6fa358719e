"""Replay rate of one archive hour of 10 Oct 2025 size, next to its parse ceiling (issue 15).

One simulated hour (``adlmon.sim`` from 21:00:00 UTC, ``--fills`` about 6 million,
one 100 ms block per line for the whole hour) laid out as Hyperliquid's bucket
holds it (``node_fills_by_block/hourly/20251010/21.lz4``, ``misc_events/...``,
by ``adlmon.venues.hyperliquid.archive.write_hourly``), then, on the same
files, one pass each (the hour is large; the replay benchmark's best-of-rounds
is for the 1M-fill file):

- read: the lines of the fills hour (the replay's reader);
- ceiling: read + bare ``orjson.loads`` of every line (bare loads = ceiling − read);
- replay: ``replay_files`` on the hour's fills and misc files and the snapshot.

Also states the hour's LZ4 size: the basis of the README's download estimate.
Writes the "## Archive hour" section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from adlmon.replay import read_lines, replay_files  # noqa: E402
from adlmon.venues.hyperliquid import archive  # noqa: E402
from benchmarks_md import write_section  # noqa: E402
from replay import HORIZONS, pass_ceiling, pass_read, timed  # noqa: E402

HOUR_START_MS = 1760130000000  # 2025-10-10T21:00:00Z


def simulated_hour(fills: int, accounts: int, coins: int, seed: int) -> tuple[Path, str]:
    """A cached simulated hour laid out like the bucket; (root, how it was made)."""
    base = Path(tempfile.gettempdir()) / f"adlmon-bench-hour-f{fills}-a{accounts}-c{coins}-s{seed}"
    sim_dir, root = base / "sim", base / "bucket"
    params = dict(fills=fills, accounts=accounts, coins=coins, seed=seed, blocks=36_000,
                  start_ms=HOUR_START_MS, lz4=True)
    how = f"adlmon.sim.simulate({', '.join(f'{k}={v}' for k, v in params.items())})"
    if not (root / "done").exists():
        print(f"simulating one hour ({fills:,} fills) into {sim_dir} ...", flush=True)
        code = (f"from adlmon.sim import simulate; simulate({str(sim_dir)!r}, "
                + ", ".join(f"{k}={v!r}" for k, v in params.items()) + ")")
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
        fills_file = next(sim_dir.glob("node_fills_by_block*"))
        misc_file = next(sim_dir.glob("misc_events*"))
        archive.write_hourly(read_lines(fills_file), root, "node_fills_by_block")
        archive.write_hourly(read_lines(misc_file), root, "misc_events")
        (root / "done").write_text("")
    return base, how


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fills", type=int, default=6_000_000)
    ap.add_argument("--accounts", type=int, default=20_000)
    ap.add_argument("--coins", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = ap.parse_args()

    base, how = simulated_hour(args.fills, args.accounts, args.coins, args.seed)
    root = base / "bucket"
    files = archive.local_files(root)
    hour = [p for p in files if p.name == "21.lz4"]
    fills_hour = root / "node_fills_by_block/hourly/20251010/21.lz4"
    snaps = sorted((base / "sim").glob("*_snapshot_*.json")) + sorted((base / "sim").glob("perp_positions_*.json"))

    t_read, (n_lines, n_bytes) = timed(pass_read, fills_hour)
    t_ceiling, n = timed(pass_ceiling, fills_hour)
    t_replay, result = timed(replay_files, snaps + hour, 5000, HORIZONS)
    replayed = result.stats["fills"]
    assert replayed == n, (replayed, n)
    loads = t_ceiling - t_read
    ratio = loads / t_replay
    lz4_mib = fills_hour.stat().st_size / 2**20
    misc_mib = sum(p.stat().st_size for p in hour if p != fills_hour) / 2**20
    print(f"{n:,} fills in {n_lines:,} lines ({n_bytes / 2**20:,.0f} MiB JSON, {lz4_mib:,.0f} MiB LZ4), "
          f"{len(result.waves)} waves")
    print(f"bare orjson.loads {n / loads:,.0f} fills/s; replay {n / t_replay:,.0f} fills/s "
          f"({t_replay:,.1f} s); replay/bare loads {ratio:.1%}")

    waves_note = (f"The hour held {len(result.waves)} ADL waves." if result.waves else
                  "The simulator produced no ADL at this size (a known limit of `adlmon simulate` with many "
                  "fills, issue 8 §3), so this is the rate of the fills and ledger work; the counterfactual "
                  "of each wave comes on top (`## Mechanisms`: 58 ms for an 11,279-fill wave without the ILP).")
    cpu = platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    text = f"""## Archive hour

`python benchmarks/archive_hour.py` (run by `make bench`; one pass each, CPU time of the single-threaded process, under the replay's garbage-collector setting). {cpu}, {os.cpu_count()} CPUs, CPython {platform.python_version()}; shared machine (absolute rates move by ±10–20% between runs, the ratio less).

Data: one simulated archive hour of 10 Oct 2025 size, `{how}`, laid out as the bucket holds it (`node_fills_by_block/hourly/20251010/21.lz4`: {n:,} fills in {n_lines:,} block lines, {lz4_mib:,.0f} MiB LZ4, {n_bytes / 2**20:,.0f} MiB of JSON; misc events {misc_mib:,.1f} MiB), replayed with the snapshot ({args.accounts:,} accounts) as `adlmon replay` reads a fetched cache.

| Pass | fills/s | s |
|---|---:|---:|
| read lines | {n / t_read:,.0f} | {t_read:,.1f} |
| **bare `orjson.loads`** (ceiling − read) | {n / loads:,.0f} | {loads:,.1f} |
| replay: `replay_files` (snapshot + the hour's fills and misc events) | {n / t_replay:,.0f} | {t_replay:,.1f} |

Replay / bare `orjson.loads` = **{ratio:.1%}**: an hour of the 10 Oct cascade's size replays in {t_replay:,.0f} CPU seconds. {waves_note} The simulated hour compresses to {fills_hour.stat().st_size / n:,.0f} bytes per fill in LZ4 (real fills carry longer hashes and more fields, so the real hour is likely larger; the README's download estimate says so).
"""
    if not args.no_write:
        write_section(text, "## Archive hour", ROOT / "BENCHMARKS.md")
        print(f"updated {ROOT / 'BENCHMARKS.md'} (## Archive hour)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
