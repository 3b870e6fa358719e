"""What an allocator returns besides the haircut vector, and the input checks they share.

Every mechanism of paper.md §3 maps per-account arrays and a budget B to a haircut vector x
(USD). The plain functions (``queue``, ``pro_rata``, ...) return only x; their ``allocate_*``
twins return one of the frozen records below, which also say whether B was within the
capacity of the mechanism's feasible set (paper.md §1.3: feasibility ``B <= C(beta)``) and,
for the min–max integer program (§3.5), whether the answer is proven optimal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Budgets within this relative distance above the capacity count as feasible: the capacity
# is itself a float sum, so an exact comparison would flag B == C computed two ways.
FEASIBILITY_RTOL = 1e-12


@dataclass(frozen=True, eq=False)
class Allocation:
    """A wealth-space allocation (paper.md §3 notation).

    x         USD haircut per account, 0 <= x_i <= beta_i * u_i.
    budget    requested budget B (USD).
    capacity  largest sum(x) the mechanism's feasible set allows (C(beta) = sum beta_i u_i for
              the pro-rata family and the queue; RAP excludes zero-weight accounts).
    feasible  B <= capacity. When False, x is the capped maximum (every account at its cap)
              and ``shortfall_usd`` = B - capacity.
    level     water level of the rule: h_i = min(beta_i, level * weight_i); B/U for pro-rata,
              eta for capped pro-rata (§3.3), tau for RAP (§3.4); nan for queues.
    """

    x: np.ndarray
    budget: float
    capacity: float
    feasible: bool
    level: float = float("nan")

    @property
    def allocated(self) -> float:
        """sum(x), the haircut actually taken (USD)."""
        return float(np.sum(self.x))

    @property
    def shortfall_usd(self) -> float:
        """Budget left uncovered, max(B - sum(x), 0)."""
        return max(self.budget - self.allocated, 0.0)


@dataclass(frozen=True, eq=False)
class ContractAllocation(Allocation):
    """A contract-space allocation (paper.md §3.1 contract queue, §3.2 contract pro-rata).

    contracts        contracts closed per position (multiples of ``lot`` where a lot grid
                     applies); x = contracts * gap_per_contract.
    contracts_needed contracts the rule set out to close (the loser's size for the queue,
                     ceil(B / (gap * lot)) lots for pro-rata, expressed in contracts).
    For the contract queue with per-position gaps ``budget`` is nan (the rule is driven by
    contracts, not dollars) and ``feasible`` compares contracts.
    """

    contracts: np.ndarray = None  # type: ignore[assignment]
    contracts_needed: float = 0.0


@dataclass(frozen=True, eq=False)
class IntegerAllocation(ContractAllocation):
    """Result of the min–max integer program (paper.md §3.5, OL eq. 8).

    x, contracts   per position (USD, contracts on the lot grid).
    account_x      USD haircut per account (x summed over each account's positions).
    max_share      z = max_i account_x_i / u_i achieved by this allocation.
    bound          proven lower bound on the optimal z (HiGHS's dual bound, the LP relaxation,
                   or z itself when the parametric search is exact).
    gap            (max_share - bound) / max_share, 0 when proven optimal.
    optimal        True iff max_share is proven optimal (gap within 1e-9).
    method         "highs_mip" | "parametric" | "fallback" | "trivial".
    status         HiGHS model status of the min-z solve, or the reason no solve was needed.
    capacity_exact False when the integer capacity is only a lower bound (accounts with several
                   positions whose capacity knapsack was not solved to optimality, or not solved
                   because B was within what the parametric search reaches).
    level          = max_share.
    contracts_needed is nan: the program covers a USD budget, not a contract count.
    """

    account_x: np.ndarray = None  # type: ignore[assignment]
    max_share: float = 0.0
    bound: float = 0.0
    gap: float = 0.0
    optimal: bool = True
    method: str = "trivial"
    status: str = ""
    capacity_exact: bool = True


def as_capacity(u, name: str = "u") -> np.ndarray:
    """Capacities as a 1-D float array; finite and >= 0 (u = (PnL)+ by construction, §1.3)."""
    a = np.asarray(u, dtype=np.float64)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {a.shape}")
    if a.size and not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite")
    if a.size and a.min() < 0.0:
        raise ValueError(f"{name} must be >= 0 (capacities are (PnL)+), min is {a.min()!r}")
    return a


def as_budget(budget) -> float:
    """Budget B as a finite float >= 0."""
    b = float(budget)
    if not np.isfinite(b) or b < 0.0:
        raise ValueError(f"budget must be finite and >= 0, got {budget!r}")
    return b


def as_beta(beta, n: int) -> np.ndarray:
    """Cap fractions beta_i (paper.md §1.3), broadcast to n and clipped to [0, 1].

    None means no per-account guarantee (beta_i = 1). Clipping is deliberate: the paper's
    beta_i = min(hbar_i, 1 - (e_i - c_i)/w_i) falls outside [0, 1] whenever a guarantee is slack
    or already breached.
    """
    if beta is None:
        return np.ones(n)
    b = np.asarray(beta, dtype=np.float64)
    if b.ndim == 0:
        b = np.full(n, float(b))
    if b.shape != (n,):
        raise ValueError(f"beta must be a scalar or have shape ({n},), got {b.shape}")
    if np.isnan(b).any():
        raise ValueError("beta must not contain NaN")
    return np.clip(b, 0.0, 1.0)


def as_weights(weights, n: int, name: str = "weights") -> np.ndarray:
    """Non-negative finite weights of shape (n,)."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 0:
        w = np.full(n, float(w))
    if w.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {w.shape}")
    if n and (not np.all(np.isfinite(w)) or w.min() < 0.0):
        raise ValueError(f"{name} must be finite and >= 0")
    return w


def as_scores(score, n: int, name: str = "score") -> np.ndarray:
    """Queue scores (or any per-entry value, named ``name``) of shape (n,), a scalar
    broadcast; NaN is allowed (a NaN score ranks last, see ``queue``)."""
    s = np.asarray(score, dtype=np.float64)
    if s.ndim == 0:
        s = np.full(n, float(s))
    if s.shape != (n,):
        raise ValueError(f"{name} must be a scalar or have shape ({n},), got {s.shape}")
    return s


def is_feasible(budget: float, capacity: float) -> bool:
    return budget <= capacity * (1.0 + FEASIBILITY_RTOL)
