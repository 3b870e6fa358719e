"""A burst of 11,279 ADL fills in one frame through the live path (issue 5 acceptance).

The size of the first ADL block of 10 Oct 2025 (21:16:04.831): one frame of the
liquidator vault's ``userFills`` with 11,279 fills and one ``trades`` frame with
the 11,279 trades, played by the fake venue in a separate process (so its JSON
encoding does not load the daemon's event loop), into a real ``Daemon``:
websocket -> parse -> vault/trade join -> bus -> engine -> wave closed (gap
after the burst) -> counterfactual in a worker thread -> winner-state polls ->
wavelog, metrics, /api/waves.

Measured, per variant:
* report latency: from the engine emitting the closed wave to its report being
  written (target ≤ 0.5 s);
* counterfactual compute time (the thread);
* event-loop lag: a probe sleeping 2 ms records how late it wakes; max and p99
  while the burst is parsed and applied, and while the report is computed.

Variants: ``public`` = what a public-websocket deployment has (the ledger knows
only the vault: winners come from trades, their capacities from the fills and
from clearinghouseState polls); ``warm`` = the ledger knows every account (as
after a node snapshot), so the counterfactual runs every mechanism over the
11,279 eligible winners.

    python benchmarks/burst.py            # prints and updates BENCHMARKS.md "## Live burst"
    python benchmarks/burst.py --no-write
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from adlmon.app import Daemon, VenueClock  # noqa: E402
from adlmon.config import HLP_LIQUIDATORS, parse_config  # noqa: E402
from adlmon.sim import num  # noqa: E402
from adlmon.venues.hyperliquid.snapshot import find_snapshot_files, load_snapshot  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_md import write_section  # noqa: E402

VAULT = HLP_LIQUIDATORS[0]
T0 = 1760130960000  # snapshot time
T_ADL = 1760130964831  # the block of 10 Oct 2025 21:16:04.831
COIN = "AVAX"
SECTION = "## Live burst"


def generate(out: Path, n: int, seed: int = 1) -> dict:
    """Snapshot + node_fills_by_block in the simulator's formats: ``n`` short winners,
    the vault long their total, background trades every 100 ms around one ADL block of
    ``n`` trades at T_ADL (accounting as CONTRACT "Engine accounting")."""
    rng = np.random.default_rng(seed)
    winners = [f"0x{(i + 1):040x}" for i in range(n)]
    sizes = np.round(1.0 + rng.pareto(1.5, n) * 20.0, 2)
    entries = np.round(rng.uniform(24.0, 30.0, n), 3)
    q = float(sizes.sum())
    mark0, vault_entry, px = 28.47, 28.0, 22.075
    a, b = "0x" + "aa" * 20, "0x" + "bb" * 20
    accounts = [{"user": w, "account_value": 1000.0} for w in winners]
    accounts += [{"user": VAULT, "account_value": 50_000.0},
                 {"user": a, "account_value": 1e6}, {"user": b, "account_value": 1e6}]
    positions = [{"user": w, "size": -float(s), "notional_size": float(s) * mark0,
                  "entry_price": float(e), "account_value": 1000.0}
                 for w, s, e in zip(winners, sizes, entries)]
    positions.append({"user": VAULT, "size": q, "notional_size": q * mark0,
                      "entry_price": vault_entry, "account_value": 50_000.0})
    (out / f"account_value_snapshot_758800000_{T0}.json").write_bytes(orjson.dumps(accounts))
    (out / f"perp_positions_by_market_758800000_{T0}.json").write_bytes(orjson.dumps(
        [{"market_name": f"hyperliquid:{COIN}", "position_count": len(positions),
          "positions": positions}]))
    tid = 771334000000000
    lines = []
    pos_a = 0.0

    def block(t: int, events: list) -> None:
        lines.append(orjson.dumps({"local_time": "", "block_time": "", "block_number": t // 100,
                                   "events": events}))

    def fill(user, side, sz, p, t, start, d, pnl, liq=None):
        f = {"coin": COIN, "px": num(p), "sz": num(sz), "side": side, "time": t,
             "startPosition": num(start), "dir": d, "closedPnl": num(pnl), "hash": "0x" + "11" * 32,
             "oid": tid, "crossed": True, "fee": "0.0", "tid": tid}
        if liq:
            f["liquidation"] = liq
        f["feeToken"] = "USDC"
        return f

    def background(t: int, p: float) -> None:
        nonlocal tid, pos_a
        tid += 1
        block(t, [[a, fill(a, "B", 1.0, p, t, pos_a, "Open Long", 0.0)],
                  [b, fill(b, "A", 1.0, p, t, -pos_a, "Open Short", 0.0)]])
        pos_a += 1.0

    for k in range(40):  # the price falls to 22.025 before the ADL
        background(T_ADL - 4000 + 100 * k, round(mark0 - (mark0 - 22.025) * (k + 1) / 40, 3))
    liq = {"liquidatedUser": VAULT, "markPx": "22.025", "method": "backstop"}
    events = []
    left = q
    for w, s, e in zip(winners, sizes, entries):
        tid += 1
        s = float(s)
        events.append([w, fill(w, "B", s, px, T_ADL, -s, "Auto-Deleveraging", s * (float(e) - px), liq)])
        events.append([VAULT, fill(VAULT, "A", s, px, T_ADL, left, "Liquidated Cross Long",
                                   s * (px - vault_entry), liq)])
        left = round(left - s, 8)
    block(T_ADL, events)
    for k in range(1, 80):  # 8 s of trades after: the gap closes the wave, horizons are reached
        background(T_ADL + 100 * k, 22.1)
    (out / "node_fills_by_block.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    return {"winners": n, "vault_size": q}


def serve(sim_dir: str, speed: float) -> None:
    """The fake venue in this (child) process; prints its port, runs until killed."""
    from adlmon.venues.hyperliquid.fake import FakeHyperliquid

    async def main():
        fake = await FakeHyperliquid(sim_dir, speed=speed, paused=False, lead_ms=4000).start()
        print(fake.port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


class LagProbe:
    def __init__(self, interval: float = 0.002):
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._task = None

    async def _run(self):
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(self.interval)
            self.samples.append((time.perf_counter(), loop.time() - t - self.interval))

    def start(self):
        self._task = asyncio.create_task(self._run())

    async def stop(self):
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    def window(self, t0: float, t1: float) -> tuple[float, float]:
        lags = np.array([lag for t, lag in self.samples if t0 <= t <= t1] or [0.0])
        return float(lags.max()), float(np.percentile(lags, 99))


async def run_variant(sim_dir: Path, port: int, warm: bool, tmp: Path) -> dict:
    url = f"127.0.0.1:{port}"
    cfg = parse_config({
        "wavelog": {"path": str(tmp / f"wavelog-{'warm' if warm else 'public'}.jsonl")},
        "venues": {"hyperliquid": {
            "ws_url": f"ws://{url}/ws", "info_url": f"http://{url}/info",
            "sources": ["vault_fills", "vault_events", "vault_state", "trades"], "coins": [COIN],
            "vaults": [VAULT], "quarantine_path": "", "backoff_initial_s": 0.05,
            "backoff_max_s": 0.2}},
    }, "burst")
    cfg = dataclasses.replace(cfg, server=dataclasses.replace(cfg.server, listen="127.0.0.1:0"))
    daemon = Daemon(cfg, clock=VenueClock())
    if warm:
        snaps, _t = load_snapshot(find_snapshot_files(sim_dir))
        for s in snaps:
            daemon.engine.apply(s)
    burst_at = []
    inner = daemon.feeds.publish

    async def tap(events):
        if len(events) > 1000:
            burst_at.append(time.perf_counter())
        await inner(events)

    daemon.feeds.publish = tap
    probe = LagProbe()
    probe.start()
    await daemon.start()
    async with asyncio.timeout(120):
        while not daemon.reports:
            await asyncio.sleep(0.01)
    t_report = time.perf_counter()
    await daemon.stop()
    await probe.stop()
    report = daemon.reports[0]
    latency = daemon.report_latency_s[0]
    t_burst = burst_at[0]
    burst_lag = probe.window(t_burst - 0.05, t_burst + 1.0)
    report_lag = probe.window(t_report - latency - 0.01, t_report)
    cf = report.get("counterfactual") or {}
    return {
        "variant": "warm ledger" if warm else "public websocket",
        "adl_fills": report["adl_fills"], "accounts": report["accounts"],
        "winners": cf.get("winners"), "capacity_source": cf.get("capacity_source"),
        "latency_s": latency, "compute_s": daemon.metrics.registry.get_sample_value(
            "adlmon_adl_compute_duration_seconds_sum", {"venue": "hyperliquid"}),
        "polled": (report.get("winner_state") or {}).get("polled", 0),
        "burst_lag_max_s": burst_lag[0], "burst_lag_p99_s": burst_lag[1],
        "report_lag_max_s": report_lag[0], "report_lag_p99_s": report_lag[1],
        "needed_usd": report["needed_usd"],
    }


def markdown(results: list[dict], n: int, speed: float) -> str:
    cpu = platform.processor() or platform.machine()
    rows = "\n".join(
        f"| {r['variant']} | {r['adl_fills']:,} | {r['winners']:,} | {r['latency_s'] * 1000:.0f} ms | "
        f"{r['compute_s'] * 1000:.0f} ms | {r['polled']} | {r['burst_lag_max_s'] * 1000:.0f} ms "
        f"(p99 {r['burst_lag_p99_s'] * 1000:.0f}) | {r['report_lag_max_s'] * 1000:.0f} ms "
        f"(p99 {r['report_lag_p99_s'] * 1000:.0f}) |"
        for r in results)
    ok = all(r["latency_s"] <= 0.5 for r in results)
    return f"""{SECTION}

`python benchmarks/burst.py` (run by `make bench`). {cpu}, {os.cpu_count()} CPUs, CPython {platform.python_version()}; one run, shared machine.

One frame of the liquidator vault's `userFills` with {n:,} fills and one `trades` frame with the {n:,} trades (the size of the first ADL block of 10 Oct 2025), played by the fake venue in a separate process at {speed:g}× into a real daemon: websocket → parse → vault/trade join (winner inference) → bus → engine → wave closed by the gap → counterfactual in a worker thread → clearinghouseState polls of winners the ledger lacks (≤ 50, ≤ 0.3 s) → wavelog, metrics, `/api/waves`. Event-loop lag: a probe sleeping 2 ms, max (p99) of how late it woke.

| Ledger | ADL fills | eligible winners | wave closed → report written | counterfactual (thread) | winners polled | loop lag, burst parsed and applied | loop lag, report computed |
|---|---:|---:|---:|---:|---:|---:|---:|
{rows}

Target ≤ 0.5 s from wave close to report: {'meets it' if ok else 'MISSES it'}. "public websocket" is what a deployment without a node has (the ledger knows the vault, not the winners: capacities from the fills, plus the polled winners); "warm ledger" knows every account (as after a node snapshot), so every mechanism runs over all eligible winners. The counterfactual runs in a thread, so the loop keeps answering pings and scrapes while it computes. The lag during the burst is one stall: the 5 MB `userFills` frame decoded and turned into 11,279 fills on the loop (about 30 ms of `orjson.loads` and 60–100 ms of fill building on this shared machine); the engine then applies the batch in slices of 1,000 events, yielding between them.
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fills", type=int, default=11_279)
    ap.add_argument("--speed", type=float, default=2.0, help="venue playback speed")
    ap.add_argument("--no-write", action="store_true", help="do not update BENCHMARKS.md")
    ap.add_argument("--serve", nargs=2, metavar=("DIR", "SPEED"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve[0], float(args.serve[1]))
        return 0
    results = []
    with tempfile.TemporaryDirectory(prefix="adlmon-burst-") as d:
        tmp = Path(d)
        sim = tmp / "sim"
        sim.mkdir()
        generate(sim, args.fills)
        for warm in (False, True):
            proc = subprocess.Popen([sys.executable, __file__, "--serve", str(sim), str(args.speed)],
                                    stdout=subprocess.PIPE, text=True)
            try:
                port = int(proc.stdout.readline())
                results.append(asyncio.run(run_variant(sim, port, warm, tmp)))
            finally:
                proc.terminate()
                proc.wait(timeout=10)
    for r in results:
        print(f"{r['variant']}: {r['adl_fills']} ADL fills, {r['winners']} eligible winners, "
              f"report {r['latency_s'] * 1000:.0f} ms after close (counterfactual "
              f"{r['compute_s'] * 1000:.0f} ms, {r['polled']} winners polled); loop lag max "
              f"{r['burst_lag_max_s'] * 1000:.0f} ms during the burst, "
              f"{r['report_lag_max_s'] * 1000:.0f} ms during the report")
    text = markdown(results, args.fills, args.speed)
    if not args.no_write:
        write_section(text, SECTION, REPO / "BENCHMARKS.md")
        print(f"updated {REPO / 'BENCHMARKS.md'} ({SECTION})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
