"""Risk-based ADL (leverage draining, adlmon/mechanisms/riskbased.py) speed, in one run:
the water-filling at n = 10^5 and 10^6 positions against the capped pro-rata water-fill at
the same n (a ratio), and against HiGHS on the same minimax LP (min t s.t. (E_i − g r_i)/e_i
<= t, Σr = Q, 0 <= r <= q) at n = 10^4, with the optimal maximum leverage checked equal.

    python benchmarks/riskbased.py                          # print the section
    python benchmarks/riskbased.py --update BENCHMARKS.md   # rewrite its section
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import highspy
import numpy as np

from adlmon.mechanisms import allocate_capped_pro_rata, allocate_risk_based

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "mechanisms"))
from benchmarks_md import write_section  # noqa: E402
from test_riskbased import minimax_lp  # noqa: E402  (the reference model, built apart from adlmon)

HEADING = "## Risk-based ADL"


def book(n: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    q = rng.lognormal(1.0, 1.5, n)
    e = rng.lognormal(6.0, 1.5, n)
    mark = 100.0
    u = np.abs(rng.normal(0.0, 1.0, n)) * q * mark * 0.1
    beta = np.where(rng.random(n) < 0.4, 1.0, rng.uniform(0.0, 1.0, n))  # as benchmarks/mechanisms.py
    return q, mark, e, 0.3 * float(q.sum()), (u, beta)


def timed(fn, runs: int = 7) -> tuple[float, float]:
    fn()
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1000)
    return min(ts), statistics.median(ts)


def highs_minimax(q, mark, e, need) -> tuple[float, float]:
    """(solve ms, optimal max leverage) of HiGHS on the test suite's minimax LP."""
    g = np.full(q.size, mark)
    h = highspy.Highs()
    h.silent()
    h.passModel(minimax_lp(q * g, g, e, q, need))
    t0 = time.perf_counter()
    h.run()
    ms = (time.perf_counter() - t0) * 1000
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return ms, float(h.getSolution().col_value[q.size])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--update", default=None, help="rewrite the section of this BENCHMARKS.md")
    args = ap.parse_args(argv)
    lines = [HEADING, "",
             f"`python benchmarks/riskbased.py` (best and median of 7 runs after a warm-up, wall "
             f"clock; one run, shared machine: read the ratios). {platform.processor() or platform.machine()}, "
             f"CPython {platform.python_version()}, numpy {np.__version__}, HiGHS {highspy.Highs().version()}.",
             "",
             "Instance: one coin, lognormal sizes and equities, 30% of the side's contracts to close; the "
             "capped pro-rata reference on capacities of the same size with 60% of the caps below 1.",
             "", "| n | leverage draining best / median ms | capped pro-rata water-fill best / median ms | ratio (best) |",
             "|---:|---:|---:|---:|"]
    for n in (10**5, 10**6):
        q, mark, e, need, u = book(n)
        rb = timed(lambda: allocate_risk_based(q, mark, e, need, 1.0))
        cp = timed(lambda: allocate_capped_pro_rata(u[0], 0.3 * float((u[0] * u[1]).sum()), u[1]))
        lines.append(f"| {n:,} | {rb[0]:.1f} / {rb[1]:.1f} | {cp[0]:.1f} / {cp[1]:.1f} | {rb[0] / cp[0]:.1f}× |")
    n = 10**4
    q, mark, e, need, _ = book(n)
    a = allocate_risk_based(q, mark, e, need)
    ours = float(((q - a.contracts) * mark / e).max())
    mine = timed(lambda: allocate_risk_based(q, mark, e, need))[0]
    ms, t = highs_minimax(q, mark, e, need)
    assert abs(ours - t) <= 1e-7 * max(1.0, t), (ours, t)
    lines += ["", f"Against HiGHS (dual simplex, solve only) on the minimax LP at n = {n:,}: max leverage "
              f"{ours:.9f} (HiGHS {t:.9f}), water-filling {mine:.2f} ms, HiGHS {ms:,.0f} ms: "
              f"**{ms / mine:,.0f}×**."]
    text = "\n".join(lines) + "\n"
    if args.update:
        write_section(text, HEADING, Path(args.update))
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
