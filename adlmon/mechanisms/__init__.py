"""ADL mechanisms of paper.md §3 as pure numpy functions (no I/O, no clock).

Conventions (all allocators):
  * Inputs are per-account (or per-position) float arrays: capacity ``u`` = (PnL)+ in USD,
    optional cap fractions ``beta`` in [0, 1] (paper.md §1.3; None = 1), scores, contracts ``q``
    and the transfer-price ``gap_per_contract``; ``budget`` B in USD.
  * The plain functions return the haircut vector x (float64 USD, same order as the input):
      queue(u, budget, score, beta=None)
      pro_rata(u, budget)
      capped_pro_rata(u, budget, beta=None)
      rap(u, budget, weights, beta=None)
      contract_queue(q, gap_per_contract, contracts_needed, score, *, lot=None)
      contract_pro_rata(q, gap_per_contract, budget, *, lot=1.0)
      min_max_integer(q, gap_per_contract, u, budget, time_limit_s=10.0, *, lot=1.0, owner=None,
                      method="mip")
      risk_based(q, mark, equity, contracts_needed, gap_per_contract=0.0, *, exposure=None,
                 factor_beta=1.0)   (leverage draining, riskbased.py: reductions, not haircuts)
  * Feasibility is reported, never raised: each plain function has an ``allocate_*`` twin with
    the same arguments returning a frozen record (allocation.py): ``Allocation`` (x, budget,
    capacity, feasible, level, allocated, shortfall_usd), ``ContractAllocation`` (+ contracts,
    contracts_needed) or, for the min–max program, ``IntegerAllocation`` (+ account_x,
    max_share, bound, gap, optimal, method in {"highs_mip", "parametric", "fallback",
    "trivial"}, status, capacity_exact).
    B above the capacity of the mechanism's feasible set returns the capped maximum (every
    account at beta_i u_i, or every lot closed) with feasible=False; the plain function returns
    that same x, so check ``allocate_*(...).feasible`` when it matters.
  * Wealth-space rules satisfy sum(x) = min(B, capacity) to ~1e-12 relative; integer rules
    cover it, sum(x) >= min(B, capacity), on the lot grid.
  * Zero capacities take nothing; ties are broken by input order; empty inputs give empty x.
  * Bad input (NaN, negative capacity, negative budget, shape mismatch) raises ValueError.
"""

from .allocation import Allocation, ContractAllocation, IntegerAllocation
from .integer import (
    allocate_contract_pro_rata,
    allocate_min_max_integer,
    contract_pro_rata,
    min_max_integer,
)
from .prorata import (
    allocate_capped_pro_rata,
    allocate_pro_rata,
    allocate_rap,
    capped_pro_rata,
    empirical_psi,
    g_cvar,
    g_linear,
    g_power,
    g_star,
    gaussian_psi,
    pro_rata,
    rap,
    rap_weights,
)
from .queue import (
    allocate_contract_queue,
    allocate_queue,
    binance_leverage_pnl,
    binance_leverage_pnl_legacy,
    contract_queue,
    hyperliquid_index,
    pnl_score,
    queue,
)

__all__ = [
    "Allocation",
    "ContractAllocation",
    "IntegerAllocation",
    "allocate_capped_pro_rata",
    "allocate_contract_pro_rata",
    "allocate_contract_queue",
    "allocate_min_max_integer",
    "allocate_pro_rata",
    "allocate_queue",
    "allocate_rap",
    "binance_leverage_pnl",
    "binance_leverage_pnl_legacy",
    "capped_pro_rata",
    "contract_pro_rata",
    "contract_queue",
    "empirical_psi",
    "g_cvar",
    "g_linear",
    "g_power",
    "g_star",
    "gaussian_psi",
    "hyperliquid_index",
    "min_max_integer",
    "pnl_score",
    "pro_rata",
    "queue",
    "rap",
    "rap_weights",
]
# Other mechanism modules (severity, measures, audit) append their exports below.
from .audit import RankAudit, count_inversions, kendall_tau, rank_audit
from .measures import (
    CAPACITY_ATOL_USD,
    CAPACITY_RTOL,
    SHARE_CONVENTIONS,
    accounts_touched,
    allocation_summary,
    capacity_without_dust,
    fairness_loss,
    fairness_share,
    max_share,
    overshoot,
    pmr,
    ptsr,
    rd_nse,
    round_loss,
    surrogate_loss,
    top_survivor_usd,
    tracking_loss,
    undershoot,
)
from .riskbased import allocate_risk_based, post_leverage, risk_based
from .severity import (
    BackoffSeverity,
    FixedSeverity,
    OgdSeverity,
    WaveEnd,
    WaveStart,
    controller_from_config,
    oracle_step,
    path_variation,
    regret_bound_usd,
    severity_regret_usd,
    theta_needed,
)

__all__ += [
    "CAPACITY_ATOL_USD",
    "CAPACITY_RTOL",
    "SHARE_CONVENTIONS",
    "capacity_without_dust",
    "fairness_share",
    "BackoffSeverity",
    "FixedSeverity",
    "OgdSeverity",
    "RankAudit",
    "WaveEnd",
    "WaveStart",
    "accounts_touched",
    "allocation_summary",
    "controller_from_config",
    "count_inversions",
    "fairness_loss",
    "kendall_tau",
    "max_share",
    "oracle_step",
    "overshoot",
    "path_variation",
    "pmr",
    "ptsr",
    "allocate_risk_based",
    "post_leverage",
    "rank_audit",
    "rd_nse",
    "risk_based",
    "regret_bound_usd",
    "round_loss",
    "severity_regret_usd",
    "surrogate_loss",
    "theta_needed",
    "top_survivor_usd",
    "tracking_loss",
    "undershoot",
]
