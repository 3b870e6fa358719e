"""Allocator speed (issue 3, acceptance): capped water-fill at n = 10^6, and against HiGHS on
the same LP at n = 10^5 with the objectives checked equal.

Measured in one run:
- capped pro-rata water-fill (paper.md §3.3) at n = 10^6, Pareto(1.1) capacities with ties and
  zeros, 60% of the accounts capped below 1 (target <= 100 ms); pro-rata, RAP and the queue at
  the same size for reference;
- the water-fill against HiGHS (highspy) on the same LP min z s.t. sum_i u_i h_i = B, h_i <= z,
  0 <= h_i <= beta_i: interior point at n = 10^5 (several minutes), simplex and interior point at
  n = 10^4; the level eta must equal HiGHS's z (relative 1e-8) and every haircut fraction agree to
  1e-6, else the run fails. Target: the water-fill >= 20x faster than HiGHS's solve alone at 10^5
  (model build excluded, in HiGHS's favour);
- the min–max integer program (§3.5): 10^4 single-position accounts (parametric vs HiGHS MIP) and
  3,000 positions of 1,000 multi-coin accounts under a 10 s limit (gap reported);
- the WaveReport of a simulated 11,279-fill wave (target <= 250 ms without the ILP), then
  with it.

    python benchmarks/mechanisms.py                      # print the section
    python benchmarks/mechanisms.py --lp-n 20000         # quicker: HiGHS at 2*10^4, not 10^5
    python benchmarks/mechanisms.py --update BENCHMARKS.md  # rewrite its "## Mechanisms" section
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import highspy
import numpy as np

from adlmon.mechanisms import (
    allocate_capped_pro_rata,
    allocate_min_max_integer,
    allocate_pro_rata,
    allocate_queue,
    allocate_rap,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmarks_md import write_section  # noqa: E402

WATER_FILL_TARGET_MS = 100.0
HIGHS_RATIO_TARGET = 20.0
HIGHS_TIME_LIMIT_S = 1200.0


def instance(n: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    u = (rng.pareto(1.1, n) + 1e-3) * 100.0
    u[rng.random(n) < 0.1] = 0.0
    u[rng.random(n) < 0.05] = 250.0  # ties
    beta = np.where(rng.random(n) < 0.4, 1.0, rng.uniform(0.0, 1.0, n))
    weights = rng.pareto(1.5, n) + 0.1
    score = rng.random(n)
    budget = 0.4 * float((u * beta).sum())
    return u, beta, weights, score, budget


def timed(fn, rounds: int):
    fn()  # warm-up
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, min(times) * 1e3, statistics.median(times) * 1e3


def highs_min_max(u, beta, budget, solver: str):
    """The capped pro-rata LP in h-space, built as CSC arrays; returns (h, z, build_ms, solve_ms)."""
    t0 = time.perf_counter()
    idx = np.flatnonzero((u > 0) & (beta > 0))
    m = idx.size
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = m + 1, m + 1
    lp.col_cost_ = np.r_[np.zeros(m), 1.0]
    lp.col_lower_ = np.zeros(m + 1)
    lp.col_upper_ = np.r_[beta[idx], inf]
    lp.row_lower_ = np.r_[1.0, np.full(m, -inf)]
    lp.row_upper_ = np.r_[1.0, np.zeros(m)]
    # Column j < m: budget row (u_j / B) and its own row (+1); column m (z): -1 in rows 1..m.
    start = np.r_[2 * np.arange(m + 1), 3 * m].astype(np.int32)
    index = np.empty(3 * m, dtype=np.int32)
    value = np.empty(3 * m)
    index[0 : 2 * m : 2], value[0 : 2 * m : 2] = 0, u[idx] / budget
    index[1 : 2 * m : 2], value[1 : 2 * m : 2] = 1 + np.arange(m), 1.0
    index[2 * m :], value[2 * m :] = 1 + np.arange(m), -1.0
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = start, index, value
    h = highspy.Highs()
    h.silent()
    h.setOptionValue("solver", solver)
    h.setOptionValue("time_limit", HIGHS_TIME_LIMIT_S)
    h.setOptionValue("primal_feasibility_tolerance", 1e-10)
    h.setOptionValue("dual_feasibility_tolerance", 1e-10)
    h.passModel(lp)
    build_ms = (time.perf_counter() - t0) * 1e3
    t1 = time.perf_counter()
    h.run()
    solve_ms = (time.perf_counter() - t1) * 1e3
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        raise SystemExit(f"HiGHS {solver}: {h.modelStatusToString(h.getModelStatus())}")
    sol = np.asarray(h.getSolution().col_value)
    hx = np.zeros(u.size)
    hx[idx] = sol[:m]
    return hx, float(sol[m]), build_ms, solve_ms


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def wave_report(rounds: int = 5) -> str:
    """A whole WaveReport (adlmon.counterfactual) for a simulated wave of 11,279 ADL fills, the
    size of the first block of 10 Oct 2025 (benchmarks/burst.py builds it in the archive format;
    replayed through the engine), with every mechanism but the ILP, then with it."""
    import tempfile

    from burst import generate

    from adlmon.config import MECHANISMS, CounterfactualConfig
    from adlmon.counterfactual import Counterfactual
    from adlmon.replay import replay_files

    with tempfile.TemporaryDirectory() as d:
        generate(Path(d), 11_279)
        (wave,) = replay_files(sorted(Path(d).iterdir()), 5000, (0, 500, 1000, 2000, 5000)).waves
    no_ilp = CounterfactualConfig(mechanisms=tuple(m for m in MECHANISMS if m != "min_max_integer"))
    times = []
    for _ in range(rounds):
        cf = Counterfactual(no_ilp)
        t = time.perf_counter()
        cf.report(wave)
        times.append((time.perf_counter() - t) * 1e3)
    ms = min(times)
    t = time.perf_counter()
    rep = Counterfactual(CounterfactualConfig()).report(wave)
    ilp_ms = (time.perf_counter() - t) * 1e3
    ilp = rep["counterfactual"]["mechanisms"]["min_max_integer"]["ex_post"]
    verdict = "meets" if ms <= 250.0 else "misses"
    return (f"WaveReport of a simulated 11,279-fill wave ({wave.adl_fills:,} ADL fills, "
            f"{rep['counterfactual']['winners']:,} eligible winners, 5 horizons, ex post and ex ante, "
            f"rank audit): {ms:.1f} ms without the ILP, best of {rounds} (median "
            f"{sorted(times)[len(times) // 2]:.1f} ms; target ≤ 250 ms: {verdict} it). With the "
            f"min–max ILP: {ilp_ms:.0f} ms (method `{ilp['method']}`, optimal={ilp['optimal']}).")


def run(rounds: int, n_lp: int = 100_000) -> str:
    n_big = 1_000_000
    u, beta, w, score, budget = instance(n_big)
    wf, wf_min, wf_med = timed(lambda: allocate_capped_pro_rata(u, budget, beta), rounds)
    assert wf.feasible and abs(wf.x.sum() / budget - 1) < 1e-12
    _, pr_min, pr_med = timed(lambda: allocate_pro_rata(u, budget), rounds)
    _, rap_min, rap_med = timed(lambda: allocate_rap(u, budget, w, beta), rounds)
    _, q_min, q_med = timed(lambda: allocate_queue(u, budget, score, beta), rounds)

    highs_rows = []
    ratios = {}
    lp_lines = {}
    for n, solvers in ((10_000, ("simplex", "ipm")), (n_lp, ("ipm",))):
        u5, beta5, _, _, budget5 = instance(n, seed=2)
        wf5, wf5_min, wf5_med = timed(lambda: allocate_capped_pro_rata(u5, budget5, beta5), rounds)
        live = (u5 > 0) & (beta5 > 0)
        mine = np.divide(wf5.x, u5, out=np.zeros(n), where=u5 > 0)
        lp_lines[n] = (int(live.sum()), wf5_min, wf5_med, wf5.level)
        for solver in solvers:
            hx, z, build_ms, solve_ms = highs_min_max(u5, beta5, budget5, solver)
            rel = abs(wf5.level - z) / z
            dh = float(np.abs(mine[live] - hx[live]).max())
            if rel > 1e-8 or dh > 1e-6:
                raise SystemExit(f"n={n}: objective mismatch vs HiGHS {solver}: eta={wf5.level!r} z={z!r} "
                                 f"max|dh|={dh:.2e}")
            ratios[(n, solver)] = solve_ms / wf5_min
            highs_rows.append(f"| {n:,} | HiGHS {solver} | {build_ms:,.0f} | {solve_ms:,.0f} | {z:.12f} | {rel:.1e} | "
                              f"{dh:.1e} | {wf5_min:.2f} | {solve_ms / wf5_min:,.0f}× |")

    rng = np.random.default_rng(4)
    n_ilp = 10_000
    q = rng.integers(0, 50, n_ilp).astype(float)
    u_ilp = rng.pareto(1.2, n_ilp) * 100.0
    b_ilp = 0.2 * min(u_ilp.sum(), (q * 2.5).sum())
    t0 = time.perf_counter()
    par = allocate_min_max_integer(q, 2.5, u_ilp, b_ilp, 10.0, method="auto")
    par_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    mip = allocate_min_max_integer(q, 2.5, u_ilp, b_ilp, 10.0, method="mip")
    mip_ms = (time.perf_counter() - t0) * 1e3
    assert abs(par.max_share - mip.max_share) <= 1e-12 and par.optimal and mip.optimal

    # Multi-coin accounts: several positions per account, five lot gaps.
    m_pos, n_acc = 3_000, 1_000
    owner = rng.integers(0, n_acc, m_pos)
    q_multi = rng.integers(1, 40, m_pos).astype(float)
    gaps = rng.choice([0.7, 1.3, 2.9, 5.1, 11.0], m_pos)
    u_multi = rng.pareto(1.3, n_acc) * 100 + 1
    b_multi = 0.3 * min(u_multi.sum(), (q_multi * gaps).sum())
    t0 = time.perf_counter()
    multi = allocate_min_max_integer(q_multi, gaps, u_multi, b_multi, 10.0, owner=owner)
    multi_ms = (time.perf_counter() - t0) * 1e3
    fallback = allocate_min_max_integer(q_multi, gaps, u_multi, b_multi, 10.0, owner=owner, method="fallback")

    wf_verdict = "meets" if wf_min <= WATER_FILL_TARGET_MS else "misses"
    worst_ratio = min(v for (n, _), v in ratios.items() if n == n_lp)
    ratio_verdict = "meets" if worst_ratio >= HIGHS_RATIO_TARGET else "misses"
    cpu = cpu_model()
    lines = [
        "## Mechanisms",
        "",
        f"`python benchmarks/mechanisms.py` (run by `make bench`; best and median of {rounds} runs after a "
        f"warm-up, wall clock). {cpu}, {os.cpu_count()} CPUs, CPython {platform.python_version()}, "
        f"numpy {np.__version__}, HiGHS {highspy.HIGHS_VERSION_MAJOR}.{highspy.HIGHS_VERSION_MINOR}."
        f"{highspy.HIGHS_VERSION_PATCH}.",
        "",
        "Instance: Pareto(1.1) capacities (10% zeros, 5% tied at 250), 40% uncapped and 60% with "
        "beta ~ U(0, 1), budget 40% of C(beta).",
        "",
        "| Allocator, n = 10^6 | best ms | median ms |",
        "|---|---:|---:|",
        f"| capped pro-rata water-fill (§3.3) | {wf_min:.1f} | {wf_med:.1f} |",
        f"| RAP weighted water-fill (§3.4) | {rap_min:.1f} | {rap_med:.1f} |",
        f"| queue, greedy prefix (§3.1) | {q_min:.1f} | {q_med:.1f} |",
        f"| pro-rata (§3.2) | {pr_min:.1f} | {pr_med:.1f} |",
        "",
        f"Capped water-fill at 10^6: **{wf_min:.1f} ms** (target ≤ {WATER_FILL_TARGET_MS:.0f} ms: {wf_verdict} it). "
        "An argsort of the breakpoints beta_i / w_i is the largest single step.",
        "",
        "The same LP, min max_i h_i s.t. sum_i u_i h_i = B, 0 <= h_i <= beta_i, given to HiGHS as CSC "
        "arrays (build = arrays + passModel; solve = run()). Water-fill ms is the best of the runs above.",
        "",
        "| n | Solver | build ms | solve ms | z | rel. diff to eta | max abs diff in h | water-fill ms | solve / water-fill |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
        *highs_rows,
        "",
        f"At n = {n_lp:,} ({lp_lines[n_lp][0]:,} live columns) the water-fill takes {lp_lines[n_lp][1]:.2f} ms "
        f"(median {lp_lines[n_lp][2]:.2f}) and is **{worst_ratio:,.0f}× faster** than HiGHS's solve alone "
        f"(target ≥ {HIGHS_RATIO_TARGET:.0f}× at 10^5: {ratio_verdict} it), at equal objective (checked in the run, "
        "which fails otherwise: eta vs z within 1e-8 relative, every h within 1e-6). HiGHS is slow here because "
        "the z column and the budget row are dense; simplex needs about one iteration per account and is "
        "not run at 10^5 (42 s at 3·10^4 in a trial run).",
        "",
        f"Min–max integer program (§3.5), 10^4 accounts with one position each, lot gap $2.50: "
        f"exact parametric search {par_ms:.0f} ms, HiGHS MIP (warm-started, proven optimal) {mip_ms:.0f} ms, "
        f"same z = {par.max_share:.6f}.",
        "",
        f"Accounts holding several coins make the MIP much harder: {m_pos:,} positions of {n_acc:,} accounts "
        f"(five lot gaps), 10 s limit: {multi_ms / 1e3:.1f} s, method `{multi.method}`, status "
        f"\"{multi.status}\", z = {multi.max_share:.6f}, proven bound {multi.bound:.6f} (gap {multi.gap:.2%}, "
        f"optimal={multi.optimal}); the parametric fallback alone gives z = {fallback.max_share:.6f} "
        f"(LP bound {fallback.bound:.6f}, gap {fallback.gap:.2%}).",
        "",
    ]
    lines += [wave_report(), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=11, help="timed runs per allocator")
    parser.add_argument("--lp-n", type=int, default=100_000, help="size of the HiGHS comparison (default 10^5)")
    parser.add_argument("--update", type=Path, help="rewrite the '## Mechanisms' section of this file")
    args = parser.parse_args(argv)
    section = run(args.rounds, args.lp_n)
    print(section)
    if args.update:
        write_section(section, "## Mechanisms", args.update)
    return 0


if __name__ == "__main__":
    sys.exit(main())
