"""Replay throughput on one simulated file of >= 1M fills (issue 2, acceptance).

Measures in one run, on the same file, each pass through the same streaming
reader (``adlmon.io.archive.read_lines(views=True)``: 1 MiB chunks, LZ4 frame
decompression, lines as views of the decompressed chunk):

- read: the lines only (what any reader pays);
- ceiling: read + bare ``orjson.loads`` of every line; bare ``orjson.loads`` is
  ceiling − read, the issue's ceiling;
- parse: read + ``orjson.loads`` + ``parse.fill_rows`` (fills -> rows);
- snapshot + misc: ``replay_files`` on the snapshot and misc_events files only;
- replay: ``adlmon.replay.replay_files`` on the whole data set (snapshot, fills,
  misc events: ledger, waves, reports), as ``adlmon replay`` runs it.

Rates are fills per CPU second of the fills file; each pass runs ``--rounds``
times, interleaved, and the best round counts (the machine is shared; the best
round is the least disturbed one). Every pass runs under the replay's garbage
collector setting (``replay.collecting_less``), so the ceiling gets what the
replay gets. Target: replay >= 25% of bare ``orjson.loads``. Also times the
engine on one 11,279-ADL-fill block against one loser (10 Oct 2025, the first
ADL block) with 60,000 snapshot accounts. Writes the "## Replay" section of
BENCHMARKS.md.

The data set comes from ``adlmon.sim`` (``adlmon simulate``, run in a child
process so its memory does not count here) and is cached in the temp
directory; without ``adlmon.sim`` a small built-in generator writes a
node_fills_by_block file instead.
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adlmon.engine.engine import Engine  # noqa: E402
from adlmon.engine.ledger import Ledger  # noqa: E402
from adlmon.events import (  # noqa: E402
    ADL, BUY, LIQUIDATION, SELL, AccountSnapshot, Liquidation, PositionSnapshot,
)
from adlmon.io.archive import read_lines  # noqa: E402
from adlmon.replay import collecting_less, replay_files  # noqa: E402
from adlmon.venues.hyperliquid import parse  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_md import write_section  # noqa: E402

HORIZONS = (0, 500, 1000, 2000, 5000)
TARGET = 0.25


# ----------------------------------------------------------------------------- data

def simulated(fills: int, accounts: int, coins: int, blocks: int, seed: int) -> tuple[Path, str]:
    """A cached ``adlmon simulate`` data set; (directory, how it was made)."""
    d = Path(tempfile.gettempdir()) / f"adlmon-bench-replay-f{fills}-a{accounts}-c{coins}-b{blocks}-s{seed}"
    cmd = [sys.executable, "-m", "adlmon", "simulate", "--out", str(d), "--fills", str(fills),
           "--accounts", str(accounts), "--coins", str(coins), "--blocks", str(blocks),
           "--seed", str(seed), "--lz4"]
    how = "adlmon " + " ".join(cmd[3:]).replace(str(d), "DIR")
    if (d / "truth.json").exists():
        return d, how
    try:
        import adlmon.sim  # noqa: F401
    except ImportError:
        return synthetic(d, fills, accounts, seed), "built-in generator (adlmon.sim missing)"
    print(f"generating {fills:,} fills with adlmon.sim into {d} ...", flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return d, how


def synthetic(d: Path, fills: int, accounts: int, seed: int) -> Path:
    """Fallback: random trades in node_fills_by_block format with consistent positions."""
    d.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    users = [f"0x{rng.getrandbits(160):040x}" for _ in range(accounts)]
    coins = {"BTC": 110000.0, "ETH": 4000.0, "SOL": 190.0, "HYPE": 40.0}
    pos: dict[tuple[str, str], float] = {}
    t = 1760130900000
    n = 0
    with open(d / "node_fills_by_block.jsonl", "wb") as fh:
        while n < fills:
            t += 100
            events = []
            for _ in range(50):
                coin = rng.choice(list(coins))
                coins[coin] *= 1 + rng.gauss(0, 1e-4)
                px = f"{coins[coin]:.2f}"
                sz = f"{rng.uniform(0.01, 2.0):.3f}"
                a, b = rng.sample(users, 2)
                for user, side in ((a, "B"), (b, "A")):
                    start = pos.get((user, coin), 0.0)
                    d_ = float(sz) if side == "B" else -float(sz)
                    pos[(user, coin)] = round(start + d_, 3)
                    events.append([user, {"coin": coin, "px": px, "sz": sz, "side": side, "time": t,
                                          "startPosition": repr(start), "dir": "Open Long" if side == "B" else "Open Short",
                                          "closedPnl": "0.0", "hash": "0x" + "0" * 64, "oid": n, "crossed": side == "B",
                                          "fee": "0.01", "tid": n, "feeToken": "USDC"}])
                    n += 1
            fh.write(orjson.dumps({"local_time": "", "block_time": "", "block_number": t, "events": events}) + b"\n")
    (d / "truth.json").write_bytes(b"{}")
    return d


def data_paths(d: Path) -> tuple[Path, list[Path]]:
    fills = next(p for p in sorted(d.iterdir()) if p.name.startswith("node_fills_by_block"))
    others = [p for p in sorted(d.iterdir()) if p.name.startswith(("account_value_snapshot",
                                                                   "perp_positions_by_market", "misc_events"))]
    return fills, others + [fills]


# ----------------------------------------------------------------------------- passes

def pass_read(path: Path) -> tuple[int, int]:
    n_lines = n_bytes = 0
    for line in read_lines(path, views=True):
        n_lines += 1
        n_bytes += len(line)
    return n_lines, n_bytes


def pass_ceiling(path: Path) -> int:
    loads = orjson.loads
    n = 0
    for line in read_lines(path, views=True):
        n += len(loads(line)["events"])
    return n


def pass_parse(path: Path) -> int:
    loads = orjson.loads
    rows = parse.fill_rows
    n = 0
    for line in read_lines(path, views=True):
        n += len(rows(loads(line)["events"]))
    return n


def timed(fn, *args):
    """CPU seconds of this (single-threaded) process: on a shared machine wall time
    also counts other processes' slices, CPU time does not. Under the replay's
    collector setting (``replay_files`` sets the same itself), after collecting
    what earlier passes left (a replay's ledger is freed by the cyclic collector;
    ``adlmon replay`` starts without such garbage)."""
    gc.collect()
    with collecting_less():
        t = time.process_time()
        out = fn(*args)
        return time.process_time() - t, out


def burst_block(accounts: int = 60_000, adl_fills: int = 11_279) -> tuple[float, int]:
    """Engine time for one block of ``adl_fills`` ADL fills (+ the loser's sides) against one loser."""
    led = Ledger(new_accounts_empty=True)
    eng = Engine("hyperliquid", 5000, HORIZONS, led)
    t0 = 1760130964000
    coins = ("BTC", "ETH", "SOL", "AVAX", "HYPE")
    for i in range(accounts):
        sign = -1.0 if i % 2 else 1.0
        eng.apply(AccountSnapshot("hyperliquid", f"0x{i:040x}", 1000.0, (
            PositionSnapshot(coins[i % 5], sign * 30.0, 20.0, 22.0),
            PositionSnapshot(coins[(i + 1) % 5], 2.0, 21.0, 22.0)), t0))
    loser = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"
    eng.apply(AccountSnapshot("hyperliquid", loser, 10.0, (PositionSnapshot("AVAX", 1e6, 25.0, 22.0),), t0))
    eng.tick(t0 + 1)  # the snapshot block is applied before the clock starts
    winners = [f"0x{i:040x}" for i in range(accounts) if coins[i % 5] == "AVAX" and i % 2]
    liq = Liquidation(loser, 22.025, "backstop")
    tb = t0 + 1000
    rows, left = [], 1e6
    for k in range(adl_fills):
        w = winners[k % len(winners)]
        start = led.position(w, "AVAX")[0] + (k // len(winners))  # 1 coin per ADL fill
        rows.append(("hyperliquid", "AVAX", w, BUY, 22.075, 1.0, tb, start, ADL, 2.075 * -1.0, 0.0, k, "0x",
                     liq, "Auto-Deleveraging"))
        rows.append(("hyperliquid", "AVAX", loser, SELL, 22.075, 1.0, tb, left, LIQUIDATION, -2.925, 0.0, k,
                     "0x", liq, "Liquidated Cross Long"))
        left -= 1.0
    t = time.process_time()
    eng.apply_fill_rows(rows)
    eng.tick(tb + 1)  # processes the block (the next event time would do the same)
    dt = time.process_time() - t
    (w,) = eng.finish()
    return dt, w.adl_fills


# ----------------------------------------------------------------------------- report

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fills", type=int, default=1_000_000)
    ap.add_argument("--accounts", type=int, default=20_000)
    ap.add_argument("--coins", type=int, default=8)
    ap.add_argument("--blocks", type=int, default=10_000, help="blocks (lines): ~fills/blocks fills per line")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    args = ap.parse_args()

    d, how = simulated(args.fills, args.accounts, args.coins, args.blocks, args.seed)
    fills_path, all_paths = data_paths(d)
    other_paths = [p for p in all_paths if p != fills_path]
    n_lines, n_bytes = pass_read(fills_path)
    best: dict[str, float] = {}
    n = replay_fills = 0
    result = None
    for r in range(args.rounds):
        for name, fn, arg in (("read", pass_read, fills_path), ("ceiling", pass_ceiling, fills_path),
                              ("parse", pass_parse, fills_path)):
            dt, out = timed(fn, arg)
            best[name] = min(best.get(name, float("inf")), dt)
            if name == "ceiling":
                n = out
        dt, _ = timed(replay_files, other_paths, 5000, HORIZONS)
        best["other"] = min(best.get("other", float("inf")), dt)
        dt, result = timed(replay_files, all_paths, 5000, HORIZONS)
        best["replay"] = min(best.get("replay", float("inf")), dt)
        replay_fills = result.stats["fills"]
        print(f"round {r + 1}: " + "  ".join(f"{k} {v:.2f} s" for k, v in best.items()), flush=True)
    assert replay_fills == n, (replay_fills, n)
    burst_s, burst_fills = burst_block()
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    rate = {k: n / v for k, v in best.items()}
    us = {k: v / n * 1e6 for k, v in best.items()}
    misc_events = result.stats.get("fundings", 0) + result.stats.get("ledger_updates", 0)
    loads_only = best["ceiling"] - best["read"]
    us_loads = loads_only / n * 1e6
    ratio = loads_only / best["replay"]  # the ratio: replay / bare orjson.loads
    ratio_ceiling = best["ceiling"] / best["replay"]
    verdict = "meets" if ratio >= TARGET else "misses"
    size = sum(p.stat().st_size for p in all_paths)
    us_rows = us["parse"] - us["ceiling"]
    us_engine = us["replay"] - us["parse"] - us["other"]
    print(f"\n{n:,} fills in {n_lines:,} lines ({n_bytes / 2**20:,.0f} MiB decoded, "
          f"{fills_path.stat().st_size / 2**20:,.0f} MiB on disk), {len(result.waves)} waves")
    print(f"{'read lines':<36}{rate['read']:>14,.0f} fills/s")
    print(f"{'bare orjson.loads (ceiling − read)':<36}{n / loads_only:>14,.0f} fills/s")
    print(f"{'read + orjson.loads':<36}{rate['ceiling']:>14,.0f} fills/s")
    print(f"{'parse: + fill rows':<36}{rate['parse']:>14,.0f} fills/s")
    print(f"{'replay (whole data set)':<36}{rate['replay']:>14,.0f} fills/s")
    print(f"replay/bare loads = {ratio:.1%} (target {TARGET:.0%}: {verdict}); "
          f"replay/(read + loads) = {ratio_ceiling:.1%}")
    print(f"per fill (µs): read {us['read']:.2f}, loads {us_loads:.2f}, rows {us_rows:.2f}, "
          f"engine {us_engine:.2f}, snapshot + misc {us['other']:.2f}")
    print(f"11,279-ADL-fill block ({burst_fills:,} ADL fills, 60,000 accounts): {burst_s * 1000:.0f} ms")
    print(f"peak RSS {rss_mib:,.0f} MiB")

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    text = f"""## Replay

`python benchmarks/replay.py` (run by `make bench`; best of {args.rounds} interleaved rounds, CPU time of the single-threaded process, every pass under the replay's garbage-collector setting and after collecting what the previous pass left). {cpu}, {os.cpu_count()} CPUs, CPython {platform.python_version()}. Shared machine: other work ran on the other core, so absolute rates move between runs (by ±10–20%); the ratios are the stable numbers (±1 point over repeated runs).

Data: `{how}` — {n:,} fills in {n_lines:,} node_fills_by_block lines ({fills_path.stat().st_size / 2**20:,.0f} MiB LZ4, {n_bytes / 2**20:,.0f} MiB of JSON), plus the snapshot ({args.accounts:,} accounts) and misc_events; {size / 2**20:,.0f} MiB on disk in all. Every pass uses the replay's own reader (1 MiB chunks, streamed LZ4 frame decompression, lines as views of the decompressed chunk).

| Pass | fills/s | µs/fill |
|---|---:|---:|
| read lines | {rate['read']:,.0f} | {us['read']:.2f} |
| **bare `orjson.loads`** = (read + loads) − read: the ceiling | {n / loads_only:,.0f} | {us_loads:.2f} |
| read + `orjson.loads` | {rate['ceiling']:,.0f} | {us['ceiling']:.2f} |
| parse: + `parse.fill_rows` | {rate['parse']:,.0f} | {us['parse']:.2f} |
| replay: `replay_files` (snapshot + fills + misc, ledger, waves, reports) | {rate['replay']:,.0f} | {us['replay']:.2f} |

Replay / bare `orjson.loads` = **{ratio:.1%}** (target ≥ 25%: {verdict} it); replay / (read + loads) = {ratio_ceiling:.1%}. Peak RSS of the benchmark process: {rss_mib:,.0f} MiB (the replay streams; memory is the ledger of {args.accounts:,} accounts, not the file).

One ADL block as on 10 Oct 2025 21:16:04.831 (11,279 ADL fills and the loser's 11,279 sides, one loser, 60,000 snapshot accounts, eligible-winner capture included): {burst_s * 1000:.0f} ms in the engine.

Where a fill's {us['replay']:.2f} µs go: reading {us['read']:.2f}, `orjson.loads` {us_loads:.2f}, building the rows {us_rows:.2f}, the engine on the fills {us_engine:.2f} (ledger loop, block grouping, waves, freeing the rows; by difference: replay − parse − snapshot and misc alone), and {us['other']:.2f} for the snapshot ({args.accounts:,} accounts) and {misc_events:,} misc events, spread over the fills. Rows cost {us_rows / us_loads:.1f}× and the engine {us_engine / us_loads:.1f}× an `orjson.loads` per fill; what is left in both is CPython work per fill (a dozen dict lookups, one 15-field tuple, hashing the 42-character user string, about ten float operations) and memory reads scattered over a ledger of {args.accounts:,} accounts (in a synthetic test the ledger loop is about 5× faster per fill over 20 accounts than over 20,000).

What made the difference (results unchanged, bit for bit; at fbfd24c this benchmark, measured the same way, gave 22.5%): a node block's five numbers per fill are decoded by one `orjson.loads` of a JSON array built from them (`"x"` → `xe0`, so every element is a float, correctly rounded as `float()` rounds; anything that is not one plain JSON number sends the block through the fill-by-fill path), and fields are looked up with the decoder's own key objects (a dict lookup by the identical key object skips the string comparison); the replay frees each decoded line before the engine runs (its memory is then reused, still in cache, by the next line) and reads lines as views instead of copies; the ledger reaches a fill's position and its account through the coin's book (one lookup in a large dict per fill instead of two) and compares signs in branches CPython specialises; the engine looks for ADL/liquidation rows in C. Earlier: fills are plain tuples in `Fill` field order, the ledger applies rows in one loop, and the replay raises the GC gen-0 threshold while it runs.
"""
    if not args.no_write:
        write_section(text, "## Replay", ROOT / "BENCHMARKS.md")
        print(f"updated {ROOT / 'BENCHMARKS.md'} (## Replay)")
    return 0  # the verdict is printed; a miss must not stop the other benchmarks of `make bench`


if __name__ == "__main__":
    raise SystemExit(main())
