"""/metrics render time at the default label budget and at 10x it (issue 4).

Label budget of one process (ecosystem.md §2.1, §3: one collector process per venue):
  venues 1 x horizons 5 x mechanisms 7 x channels 6 x reasons (15 reconnect + 8 parse),
with every label combination materialised (the worst case of that budget: every
reconnect reason and 8 parse reasons seen on every channel). 10x = the same shape
for 10 venues. Measured two ways: ``generate_latest`` on the registry (what the
/metrics handler runs inside the event loop) and an HTTP GET /metrics through the
real aiohttp server on 127.0.0.1.

    python benchmarks/metrics.py                      # print the table
    python benchmarks/metrics.py --update BENCHMARKS.md  # rewrite its "## Metrics" section
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import aiohttp
from prometheus_client import generate_latest

from adlmon.config import MECHANISMS, ServerConfig
from adlmon.metrics import RECONNECT_REASONS, Metrics
from adlmon.server import ServerState, server_url, start_server, stop

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_md import write_section  # noqa: E402

HORIZONS = (0, 500, 1000, 2000, 5000)
CHANNELS = ("userFills", "userEvents", "userNonFundingLedgerUpdates", "clearinghouseState",
            "activeAssetCtx", "trades")
PARSE_REASONS = ("json", "schema", "missing_field", "bad_number", "unknown_dir",
                 "unknown_channel", "error_frame", "truncated")
TARGET_MS = 20.0


def populated(venues: int) -> Metrics:
    names = [f"venue{i:02d}" if i else "hyperliquid" for i in range(venues)]
    m = Metrics(venues=names, horizons_ms=HORIZONS, mechanisms=MECHANISMS)
    for v in names:
        m.observe_wave({
            "venue": v, "wave_id": 1, "t_end_ms": 1_760_131_004_000, "adl_fills": 100,
            "accounts": 40, "notional_usd": 1e7, "needed_usd": 1e5, "deficit_usd": 2e5,
            "deficit_increment_usd": 1e5, "theta_needed": 0.5, "theta_prod": 0.7,
            "production_haircut_usd": {str(h): 1.4e5 for h in HORIZONS},
            "counterfactual": {
                "mechanisms": {mech: {"ex_post": {"total_usd": 1e5, "max_share": 0.1,
                                                  "accounts_touched": 30},
                                      "ex_ante": {"total_usd": 9e4}}
                               for mech in (*MECHANISMS, "production")},
                "optimal_mechanism": "capped_pro_rata",
                "controller": {"theta": 0.45, "budget_usd": 9e4},
                "regret": {"counted": True, "bound_usd": 5e5,
                           "cumulative_loss_usd": {mech: 1e4 for mech in
                                                   (*MECHANISMS, "production")}},
            },
        }, compute_s=0.01)
        m.observe_engine_stats(v, {"fills": 1000, "divergences": 1, "unknown_dir": 1,
                                   "unknown_ledger": 1})
        m.set_deficit(v, 0.0)
        m.set_adl_armed(v, False)
        for pool in ("main", "backstop"):
            m.set_insurance_fund(v, pool, 1e8)
        for ch in CHANNELS:
            m.connected(v, ch, True)
            m.silence_budget(v, ch, 120.0)
            m.message(v, ch, n=10, exchange_time_ms=time.time() * 1000 - 50)
            m.gap(v, ch)
            for reason in RECONNECT_REASONS:
                m.reconnect(v, ch, reason)
            for reason in PARSE_REASONS:
                m.parse_error(v, ch, reason)
    return m


def series(m: Metrics) -> int:
    return sum(1 for line in m.exposition().splitlines() if line and not line.startswith(b"#"))


def time_render(m: Metrics, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        generate_latest(m.registry)
        out.append((time.perf_counter() - t) * 1000)
    return out


async def time_http(m: Metrics, n: int) -> list[float]:
    state = ServerState(m)
    runner = await start_server(ServerConfig(listen="127.0.0.1:0"), state)
    url = server_url(runner) + "/metrics"
    out = []
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(n):
                t = time.perf_counter()
                async with http.get(url, headers={"Accept-Encoding": "identity"}) as r:
                    await r.read()
                out.append((time.perf_counter() - t) * 1000)
    finally:
        await stop(runner)
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def run(n: int) -> str:
    rows = []
    for label, venues in (("default budget", 1), ("10x budget", 10)):
        m = populated(venues)
        time_render(m, 5)  # warm-up
        render = time_render(m, n)
        http = asyncio.run(time_http(m, n))
        rows.append((label, venues, series(m), len(m.exposition()), render, http))
    lines = [
        "## Metrics",
        "",
        "`/metrics` render time (`python benchmarks/metrics.py`, "
        f"{n} renders each, after 5 warm-up renders). {cpu_model()}, "
        f"{os.cpu_count()} CPUs, CPython {platform.python_version()}.",
        "",
        "Label budget per process: venues × horizons × mechanisms × channels × reasons = "
        f"1 × {len(HORIZONS)} × {len(MECHANISMS)} × {len(CHANNELS)} × "
        f"({len(RECONNECT_REASONS)} reconnect + {len(PARSE_REASONS)} parse), every label "
        "combination materialised (worst case), plus the process collector. "
        "10× = the same shape for 10 venues.",
        "",
        "| Budget | Venues | Series | Bytes | generate_latest median (min) | "
        "HTTP GET /metrics median (min) |",
        "|---|---|---|---|---|---|",
    ]
    for label, venues, n_series, size, render, http in rows:
        lines.append(
            f"| {label} | {venues} | {n_series:,} | {size:,} | "
            f"{statistics.median(render):.2f} ms ({min(render):.2f}) | "
            f"{statistics.median(http):.2f} ms ({min(http):.2f}) |")
    default_ms = statistics.median(rows[0][4])
    verdict = "meets" if default_ms <= TARGET_MS else "MISSES"
    lines += [
        "",
        f"Target ≤ {TARGET_MS:.0f} ms at the default budget: {verdict} it "
        f"({default_ms:.2f} ms median render). The render runs inside the event loop, so "
        "this is also how long a scrape delays feed handling.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50, help="renders per budget")
    parser.add_argument("--update", type=Path, help="rewrite the '## Metrics' section of this file")
    args = parser.parse_args(argv)
    section = run(args.n)
    print(section)
    if args.update:
        write_section(section, "## Metrics", args.update)
    return 0


if __name__ == "__main__":
    sys.exit(main())
