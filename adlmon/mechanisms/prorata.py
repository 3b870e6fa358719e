"""Wealth-space pro-rata family: pro-rata (§3.2), capped pro-rata (§3.3) and RAP (§3.4).

All three are one rule, weighted water-filling: h_i = min(beta_i, level * weight_i) with the
level set so that sum_i u_i h_i = B; x_i = u_i h_i. Pro-rata has weight 1 and no caps, capped
pro-rata weight 1, RAP the risk weights w~_i = lambda_i g(lambda_i).

Which programs the water-fill solves (used by the optimality tests):
  * weighted min–max:  min_x max_i x_i / (u_i w~_i)   s.t. sum x = B, 0 <= x_i <= beta_i u_i.
    The optimum is unique: any x with max ratio <= level has x_i <= u_i min(beta_i, level w~_i)
    and those bounds already sum to B.
  * separable QP:      min_x sum_i x_i^2 / (u_i w~_i)  on the same set (KKT: x_i/(u_i w~_i) is
    the same multiplier on every account strictly between its bounds), and more generally
    min sum_i u_i w~_i phi(h_i / w~_i) for any strictly convex phi (paper §3.3 "convex
    optimality" is the case w~ = 1).
  * NOT the linear one-step-deficit program that paper §3.4 (P-v3 App. RAP, Prop.
    "RAP optimizes delta_T") names: max sum_i rho_i e_i x_i / u_i over the same set is a
    fractional knapsack whose optimum is the *queue* by score rho_i e_i / u_i (an extreme point,
    see queue.py), not a water-fill. The tests check both statements.

Accounts with u_i = 0, beta_i = 0 or (RAP) weight 0 can take nothing; they count towards no
capacity. Complexity O(n log n) (one argsort of the breakpoints beta_i / weight_i), O(n) memory,
no Python loop over accounts.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .allocation import (
    Allocation,
    as_beta,
    as_budget,
    as_capacity,
    as_weights,
    is_feasible,
)


def _water_fill(u: np.ndarray, beta: np.ndarray, weight: np.ndarray | None, budget: float) -> Allocation:
    """Weighted water-filling (P-v3 App. "Algorithms", both algorithms), vectorised.

    h_i = min(beta_i, tau * weight_i), sum_i u_i h_i = budget (weight None means 1). Breakpoints
    r_i = beta_i/weight_i (tau at which account i reaches its cap) are sorted once; the fill
    level at each breakpoint, S_k = sum_{j<k} u_j beta_j + r_k sum_{j>=k} u_j weight_j, is
    nondecreasing, so the segment holding B is found by binary search. A refinement pass removes
    any rounding residual above 1e-13 relative.
    """
    n = u.size
    x = np.zeros(n)
    active = (u > 0.0) & (beta > 0.0)
    if weight is not None:
        active &= weight > 0.0
    idx = None if active.all() else np.flatnonzero(active)
    ua = u if idx is None else u[idx]
    ba = beta if idx is None else beta[idx]
    cap_a = ua * ba
    capacity = float(cap_a.sum())
    if budget <= 0.0 or capacity <= 0.0:
        return Allocation(x, budget, capacity, is_feasible(budget, capacity), 0.0)
    if weight is None:
        wa, r, mass = None, ba, ua
    else:
        wa = weight if idx is None else weight[idx]
        r, mass = ba / wa, ua * wa
    if budget >= capacity:
        x[active] = cap_a
        return Allocation(x, budget, capacity, is_feasible(budget, capacity), float(r.max()))

    order = np.argsort(r)
    r_s = r[order]
    capped_before = np.empty(r_s.size)
    capped_before[0] = 0.0
    np.cumsum(cap_a[order][:-1], out=capped_before[1:])
    # Suffix sums directly (not total - prefix) so a heavy head cannot swamp a light tail.
    mass_from = np.cumsum(mass[order][::-1])[::-1]
    level_at = capped_before + r_s * mass_from
    k = min(int(np.searchsorted(level_at, budget, side="left")), r_s.size - 1)
    tau = (budget - capped_before[k]) / mass_from[k]
    tau = min(max(tau, r_s[k - 1] if k > 0 else 0.0), r_s[k])

    def fill(level: float) -> np.ndarray:
        return ua * np.minimum(ba, level if wa is None else level * wa)

    xa = fill(tau)
    resid = budget - float(xa.sum())
    if abs(resid) > 1e-13 * budget:
        # Spread the rounding residual over the accounts still below their cap.
        free = r > tau
        free_mass = float(mass[free].sum())
        if free_mass > 0.0:
            tau += resid / free_mass
            xa = fill(tau)
    if idx is None:
        x = xa
    else:
        x[idx] = xa
    return Allocation(x, budget, capacity, True, float(tau))


def allocate_pro_rata(u, budget) -> Allocation:
    """Wealth pro-rata (paper.md §3.2, P-v3 eq. pro-rata): x_i = (u_i / U) B, U = sum u.

    Uniform haircut fraction h = B/U on every account with u_i > 0; rank-preserving, the unique
    min–max-burden allocation (OL Prop. 9). B > U is infeasible: x = u (h = 1), flagged.
    O(n). Empty input or U = 0 gives zeros (feasible only when B = 0).
    """
    u = as_capacity(u)
    b = as_budget(budget)
    total = float(u.sum())
    if total <= 0.0 or b <= 0.0:
        return Allocation(np.zeros(u.size), b, total, is_feasible(b, total), 0.0)
    if b >= total:
        return Allocation(u.copy(), b, total, is_feasible(b, total), 1.0)
    h = b / total
    return Allocation(u * h, b, total, True, h)


def pro_rata(u, budget) -> np.ndarray:
    """x_i = (u_i/U) B (paper.md §3.2); see ``allocate_pro_rata`` for feasibility."""
    return allocate_pro_rata(u, budget).x


def allocate_capped_pro_rata(u, budget, beta=None) -> Allocation:
    """Capped pro-rata (paper.md §3.3, P-v3 eq. capped-pro-rata/eta, Alg. "Capped Pro-Rata").

    h_i = min(eta, beta_i), eta set by sum_i u_i min(eta, beta_i) = B; x_i = u_i h_i.
    Unique minimiser of max_i x_i/u_i and of sum_i x_i^2/u_i (any increasing strictly convex
    sum phi(h_i)) over {sum x = B, 0 <= x_i <= beta_i u_i}.
    Infeasible B > C(beta) = sum beta_i u_i: x = beta u, feasible=False.
    Ties in beta are irrelevant (h depends on values only). O(n log n); O(n) when beta is None.
    """
    u = as_capacity(u)
    b = as_budget(budget)
    if beta is None:
        return allocate_pro_rata(u, b)
    return _water_fill(u, as_beta(beta, u.size), None, b)


def capped_pro_rata(u, budget, beta=None) -> np.ndarray:
    """h_i = min(eta, beta_i) (paper.md §3.3); see ``allocate_capped_pro_rata``."""
    return allocate_capped_pro_rata(u, budget, beta).x


def allocate_rap(u, budget, weights, beta=None) -> Allocation:
    """Risk-Aware Pro-Rata (paper.md §3.4, P-v3 eq. glpr, Alg. "RAP Water-Filling").

    h_i = min(beta_i, tau * w~_i), tau set by sum_i u_i h_i = B; x_i = u_i h_i. ``weights`` are
    the risk weights w~_i = lambda_i g(lambda_i) (build them with ``rap_weights``); only their
    ratios matter. Accounts with w~_i = 0 are never haircut (the paper's "r_i = inf"), so the
    capacity is sum over w~_i > 0 of beta_i u_i; B above it is infeasible: x = beta u on those
    accounts, feasible=False. Unique solution of min max_i x_i/(u_i w~_i) and of
    min sum_i x_i^2/(u_i w~_i) on the feasible set. O(n log n).
    """
    u = as_capacity(u)
    b = as_budget(budget)
    return _water_fill(u, as_beta(beta, u.size), as_weights(weights, u.size), b)


def rap(u, budget, weights, beta=None) -> np.ndarray:
    """h_i = min(beta_i, tau w~_i) (paper.md §3.4); see ``allocate_rap``."""
    return allocate_rap(u, budget, weights, beta).x


# ---- risk models g(lambda) and weights w~ = lambda g(lambda) (paper.md §3.4) ----------------

def g_linear(lam) -> np.ndarray:
    """g(lambda) = lambda (paper §3.4 "Linear"). Note: w~ = lambda^2 then; the printed LPR rule
    (§3.2, x ∝ lambda u) corresponds to w~ = lambda, i.e. g = 1 — the paper calls both "LPR"."""
    return np.asarray(lam, dtype=np.float64).copy()


def g_power(lam, c: float) -> np.ndarray:
    """g(lambda) = lambda^c, c > 1 in the paper (§3.4 "Power")."""
    return np.power(np.asarray(lam, dtype=np.float64), float(c))


def g_cvar(lam, tau: float) -> np.ndarray:
    """g(lambda) = (lambda - tau)+ (§3.4 "CVaR" surrogate); accounts at or below tau get weight 0
    and are therefore never haircut by RAP."""
    return np.maximum(np.asarray(lam, dtype=np.float64) - float(tau), 0.0)


def g_star(lam, psi: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Shock-kernel optimal risk model g*(lambda) = rho(lambda)/lambda = psi(1/lambda) (§3.4).

    psi(v) = E[(v + Z)_-] is the expected shortfall of a position with bankruptcy buffer v
    (v = 1/lambda = equity/notional) under the adverse-signed return shock Z; use
    ``gaussian_psi`` or ``empirical_psi`` (e.g. ``functools.partial(gaussian_psi, sigma=0.05)``).
    lambda = 0 (no leverage) gives g* = psi(inf) = 0.
    """
    lam = np.asarray(lam, dtype=np.float64)
    out = np.zeros(lam.shape)
    pos = lam > 0.0
    out[pos] = psi(1.0 / lam[pos])
    return out


def rap_weights(lam, g: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Risk weights w~_i = lambda_i g(lambda_i) (P-v3 §7 "RAP rule"); lambda_i = n_i/e_i is the
    effective leverage of winner i (§1.4). With g = g_star these are rho(lambda_i)."""
    lam = np.asarray(lam, dtype=np.float64)
    if lam.size and (not np.all(np.isfinite(lam)) or lam.min() < 0.0):
        raise ValueError("leverage must be finite and >= 0")
    return lam * np.asarray(g(lam), dtype=np.float64)


def empirical_psi(v, shocks) -> np.ndarray:
    """psi(v) = mean_k (v + z_k)_- = mean_k max(-v - z_k, 0) over shock samples z_k.

    Sorted samples and prefix sums: O((n + m) log m) for n buffers and m samples.
    """
    v = np.asarray(v, dtype=np.float64)
    z = np.sort(np.asarray(shocks, dtype=np.float64).ravel())
    if z.size == 0:
        raise ValueError("shocks must not be empty")
    prefix = np.concatenate(([0.0], np.cumsum(z)))
    c = -v  # (v + z)_- > 0  <=>  z < -v
    k = np.searchsorted(z, c, side="left")
    return np.maximum((c * k - prefix[k]) / z.size, 0.0)


def gaussian_psi(v, sigma: float, mu: float = 0.0) -> np.ndarray:
    """psi(v) = E[(v + Z)_-] for Z ~ N(mu, sigma^2), in closed form:
    E[(a - Z)+] = sigma (s Phi(s) + phi(s)), a = -v, s = (a - mu)/sigma."""
    if not sigma > 0.0:
        raise ValueError("sigma must be > 0")
    s = (-np.asarray(v, dtype=np.float64) - mu) / sigma
    cdf = 0.5 * _erfc(-s / math.sqrt(2.0))
    pdf = np.exp(-0.5 * s * s) / math.sqrt(2.0 * math.pi)
    return np.maximum(sigma * (s * cdf + pdf), 0.0)


def _erfc(x) -> np.ndarray:
    """Complementary error function, vectorised (numpy has none; scipy is not a runtime dep).

    |x| < 2: Maclaurin series of erf (60 terms); |x| >= 2: Laplace continued fraction
    (depth 80, evaluated bottom-up); erfc(-x) = 2 - erfc(x). Within 1e-12 relative of math.erfc
    (worst near |x| = 2, where the series cancels).
    """
    x = np.asarray(x, dtype=np.float64)
    ax = np.abs(x)
    out = np.empty(x.shape)
    small = ax < 2.0
    if np.any(small):
        t = ax[small]
        t2 = t * t
        term = t.copy()
        acc = t.copy()
        for k in range(1, 60):
            term = term * (-t2) / k
            acc = acc + term / (2 * k + 1)
        out[small] = 1.0 - 2.0 / math.sqrt(math.pi) * acc
    big = ~small
    if np.any(big):
        t = ax[big]
        frac = np.zeros_like(t)
        for k in range(80, 0, -1):
            frac = (k / 2.0) / (t + frac)
        out[big] = np.exp(-t * t) / math.sqrt(math.pi) / (t + frac)
    return np.where(x < 0.0, 2.0 - out, out)
