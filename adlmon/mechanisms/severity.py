"""Severity controllers: how much of a wave's deficit to socialize (paper §3.6, §3.7).

A controller publishes a severity θ_t ∈ [0, 1] and an ex-ante budget B_t = θ_t·D̂_t
from information available at the wave's start only, then learns from the wave's
realized outcome (paper §1.3 separation principle: severity is a scalar control,
the allocation of B_t across winners is chosen separately).

Protocol (every controller; pure: no clock, no I/O)::

    theta, budget_usd = ctl.budget(WaveStart(deficit_usd=D_t, ...))   # before the wave
    ctl.update(WaveEnd(deficit_usd=D_t, needed_usd=B_needed_t))       # after the wave

Which deficit the budget multiplies (``forecast``):

* ``"current"`` (default) — D_t of this wave. OL §3.7's round lifecycle measures the
  residual D_t *before* choosing B_t = θ_t·D_t, and an exchange knows its loser-side
  deficit after the liquidation batch, before the ADL fills (paper §6.1). The regret
  bound of OL Prop. 1 is stated for this budget.
* ``"lagged"`` — D̂_t = D_{t−1}, the previous wave's realized deficit: the v2 "lagged
  publication" variant (paper §3.6), for an observer that cannot see D_t until the
  wave is over. Overshoot then also reflects the forecast error.

θ itself only ever uses realized θ^needed of *past* waves, so it is ex ante in both
modes. An unknown deficit (None) gives ``budget_usd = None``: never invented.
When the start information carries the winners' total capacity U_t, the budget is
capped at U_t (feasibility θD ≤ U, paper §1.3).

Regret helpers (OL Prop. 1): :func:`path_variation`, :func:`regret_bound_usd`,
:func:`oracle_step`, :func:`severity_regret_usd`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

__all__ = [
    "ADAPTIVE_REGRET_FACTOR",
    "BackoffSeverity",
    "FixedSeverity",
    "OgdSeverity",
    "SeverityController",
    "WaveEnd",
    "WaveStart",
    "controller_from_config",
    "oracle_step",
    "path_variation",
    "regret_bound_usd",
    "severity_regret_usd",
    "theta_needed",
]

FORECASTS = ("current", "lagged")

# Constant of the deployable (doubling) step's regret bound, see OgdSeverity.
ADAPTIVE_REGRET_FACTOR = 11.0 * math.sqrt(3.0) / 6.0  # ≈ 3.18


def theta_needed(needed_usd: float | None, deficit_usd: float | None) -> float | None:
    """θ^needed_t = min(1, B^needed_t / D_t) (OL §3.7 with ε = 0; contract: None when D
    is unknown or not positive)."""
    if needed_usd is None or deficit_usd is None or not deficit_usd > 0:
        return None
    return min(1.0, max(0.0, float(needed_usd) / float(deficit_usd)))


@dataclass(frozen=True)
class WaveStart:
    """What a controller may know when a wave starts.

    deficit_usd: D_t measured at the start (None = unknown; used by forecast "current").
    max_capacity_usd: M_t = max_i u_i, the top winner's PnL capacity (backoff's PoA cap).
    total_capacity_usd: U_t = Σ_i u_i; the budget is capped at it when given.
    """

    deficit_usd: float | None = None
    max_capacity_usd: float | None = None
    total_capacity_usd: float | None = None


@dataclass(frozen=True)
class WaveEnd:
    """What a wave revealed once it closed: D_t and the ex-post needed budget B^needed_t."""

    deficit_usd: float | None
    needed_usd: float | None

    @property
    def theta_needed(self) -> float | None:
        return theta_needed(self.needed_usd, self.deficit_usd)

    @classmethod
    def from_report(cls, wave: Mapping) -> WaveEnd:
        """From a wave report dict (keys ``deficit_usd``, ``needed_usd``)."""
        return cls(deficit_usd=wave.get("deficit_usd"), needed_usd=wave.get("needed_usd"))


class SeverityController(Protocol):
    name: str

    def budget(self, start: WaveStart) -> tuple[float, float | None]: ...

    def update(self, end: WaveEnd) -> None: ...


class _Forecast:
    """Shared: which deficit the budget multiplies, the capacity cap, the lagged D."""

    name = "severity"

    def __init__(self, forecast: str) -> None:
        if forecast not in FORECASTS:
            raise ValueError(f"forecast must be one of {FORECASTS}, got {forecast!r}")
        self.forecast = forecast
        self._last_deficit: float | None = None

    def _deficit(self, start: WaveStart) -> float | None:
        d = start.deficit_usd if self.forecast == "current" else self._last_deficit
        if d is None or not math.isfinite(d):
            return None
        return max(0.0, float(d))

    def _budget(self, theta: float, deficit: float | None, start: WaveStart) -> float | None:
        if deficit is None:
            return None
        b = theta * deficit
        if start.total_capacity_usd is not None:
            b = min(b, max(0.0, float(start.total_capacity_usd)))
        return b

    def _remember(self, end: WaveEnd) -> None:
        if end.deficit_usd is not None:
            self._last_deficit = float(end.deficit_usd)


class FixedSeverity(_Forecast):
    """Static θ: B_t = θ·D̂_t (paper §3.6; the static class of OL, Ω(T) dynamic regret)."""

    name = "fixed"

    def __init__(self, theta: float, *, forecast: str = "current") -> None:
        super().__init__(forecast)
        if not 0.0 <= theta <= 1.0:
            raise ValueError(f"theta must be in [0, 1], got {theta}")
        self.theta = float(theta)

    def budget(self, start: WaveStart) -> tuple[float, float | None]:
        return self.theta, self._budget(self.theta, self._deficit(start), start)

    def update(self, end: WaveEnd) -> None:
        self._remember(end)


class OgdSeverity(_Forecast):
    """Projected online gradient descent on θ ∈ [0, 1] (OL §3.7, Prop. 1).

    Loss of wave t: ℓ_t(θ) = D_t·|θ − θ^needed_t|, subgradient g_t = D_t·sign(θ_t − θ^needed_t);
    after the wave θ_{t+1} = Π_[0,1](θ_t − η_t·g_t). Rounds with unknown or zero D_t carry no
    loss and are skipped (this only shortens the comparator path).

    Step η (``eta``):

    * a number — fixed step. With the oracle step η* = √((1+2P)/ΣD_t²) (:func:`oracle_step`,
      needs the whole path: evaluation only) the dynamic regret against the θ^needed path is
      Σ_t D_t|θ_t − θ^needed_t| ≤ √((1+2P)·ΣD_t²) (Prop. 1).
    * ``None`` (default, deployable) — doubling on the path variation, adaptive in ΣD².
      Epoch k guesses P̂_k = 2^k; inside it η_t = √((1+2P̂_k)/S_t) with S_t = Σ D_s² over the
      epoch's rounds up to and including t (D_t is known when the step is taken, after the
      wave). When the epoch's own path variation exceeds P̂_k, the guess doubles and a new
      epoch starts (S and the running P restart; θ is kept). Bound: inside an epoch η is
      non-increasing, so Reg_k ≤ (1+2P_k)/(2η_end) + Σ η_t D_t²/2 ≤ (11/6)√((1+2P̂_k)S_k)
      (P_k ≤ P̂_k + 1, P̂_k ≥ 1, Σ D_t²/√S_t ≤ 2√S); summing with Cauchy–Schwarz and
      Σ_k (1+2P̂_k) ≤ 3(1+2P) gives Reg ≤ (11√3/6)·√((1+2P)ΣD_t²) ≈ 3.18× the bound
      (:data:`ADAPTIVE_REGRET_FACTOR`), with no knowledge of P or ΣD² in advance.
    """

    name = "ogd"

    def __init__(self, theta_init: float = 0.1, *, eta: float | None = None,
                 forecast: str = "current") -> None:
        super().__init__(forecast)
        if not 0.0 <= theta_init <= 1.0:
            raise ValueError(f"theta_init must be in [0, 1], got {theta_init}")
        if eta is not None and not eta > 0:
            raise ValueError(f"eta must be positive, got {eta}")
        self.theta = float(theta_init)
        self.eta = eta
        self.rounds = 0  # rounds that moved the learner (D_t > 0 and θ^needed known)
        # doubling state (eta is None)
        self._p_guess = 1.0
        self._epoch_sq = 0.0
        self._epoch_p = 0.0
        self._epoch_last: float | None = None

    def budget(self, start: WaveStart) -> tuple[float, float | None]:
        return self.theta, self._budget(self.theta, self._deficit(start), start)

    def update(self, end: WaveEnd) -> None:
        self._remember(end)
        target = end.theta_needed
        if target is None:
            return
        d = float(end.deficit_usd)
        g = d * float(np.sign(self.theta - target))
        if self.eta is not None:
            eta = self.eta
        else:
            self._epoch_sq += d * d
            if self._epoch_last is not None:
                self._epoch_p += abs(target - self._epoch_last)
            self._epoch_last = target
            eta = math.sqrt((1.0 + 2.0 * self._p_guess) / self._epoch_sq)
        self.theta = min(1.0, max(0.0, self.theta - eta * g))
        self.rounds += 1
        if self.eta is None and self._epoch_p > self._p_guess:
            self._p_guess *= 2.0
            self._epoch_sq = 0.0
            self._epoch_p = 0.0
            self._epoch_last = None


class BackoffSeverity(_Forecast):
    """Exponential backoff with the per-round PoA cap (paper §3.6, v2 appendix "Policies").

    θ_t = min(θ^cand_t, Θ_t), θ^cand_1 = θ_init (the paper: θ_0), θ^cand_t = max(α·θ_{t−1}, θ_0);
    Θ_t = R/(1+R)·M_t/D̂_t when M_t (top winner capacity) is given, else 1; θ_t ∈ [0, 1].
    θ_{t−1} is the θ this controller published for the previous wave.

    As printed the rule is open loop: with α ≤ 1 and θ_init = θ_0 it holds θ_0 (capped by
    Θ_t); θ_init > θ_0 decays geometrically to the floor θ_0; α > 1 ramps up to the cap.
    R is the admitted price-of-anarchy ratio; its calibrated value is not published
    (paper §7), 1.0 by default. ``update`` only records D_t for the lagged forecast.
    """

    name = "backoff"

    def __init__(self, alpha: float = 0.5, theta0: float = 0.05, *, poa_ratio: float = 1.0,
                 theta_init: float | None = None, forecast: str = "current") -> None:
        super().__init__(forecast)
        if not alpha > 0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        if not 0.0 <= theta0 <= 1.0:
            raise ValueError(f"theta0 must be in [0, 1], got {theta0}")
        if not poa_ratio > 0:
            raise ValueError(f"poa_ratio must be positive, got {poa_ratio}")
        self.alpha = float(alpha)
        self.theta0 = float(theta0)
        self.poa_ratio = float(poa_ratio)
        self.theta_init = self.theta0 if theta_init is None else float(theta_init)
        self._prev: float | None = None  # θ published for the previous wave
        self._published: float | None = None

    def _candidate(self) -> float:
        if self._prev is None:
            return self.theta_init
        return max(self.alpha * self._prev, self.theta0)

    def cap(self, start: WaveStart, deficit: float | None) -> float:
        """Θ_t = R/(1+R)·M_t/D_t (1 when M_t or D_t is unknown or D_t = 0)."""
        if start.max_capacity_usd is None or deficit is None or not deficit > 0:
            return 1.0
        r = self.poa_ratio
        return max(0.0, r / (1.0 + r) * float(start.max_capacity_usd) / deficit)

    def budget(self, start: WaveStart) -> tuple[float, float | None]:
        deficit = self._deficit(start)
        theta = min(1.0, max(0.0, min(self._candidate(), self.cap(start, deficit))))
        self._published = theta
        return theta, self._budget(theta, deficit, start)

    def update(self, end: WaveEnd) -> None:
        self._remember(end)
        # A wave with no published budget advances the uncapped candidate.
        self._prev = self._published if self._published is not None else min(1.0, self._candidate())
        self._published = None


def controller_from_config(cfg, *, forecast: str = "current") -> SeverityController:
    """The controller named by a ``[counterfactual]`` config section (severity, fixed_theta,
    backoff_alpha, backoff_theta0). OGD starts at fixed_theta and uses the deployable step."""
    kind = cfg.severity
    if kind == "fixed":
        return FixedSeverity(cfg.fixed_theta, forecast=forecast)
    if kind == "ogd":
        return OgdSeverity(cfg.fixed_theta, forecast=forecast)
    if kind == "backoff":
        return BackoffSeverity(cfg.backoff_alpha, cfg.backoff_theta0, forecast=forecast)
    raise ValueError(f"unknown severity controller {kind!r} (ogd | fixed | backoff)")


def _clean_path(theta_needed_path: Sequence[float | None]) -> np.ndarray:
    vals = [float(t) for t in theta_needed_path if t is not None and math.isfinite(float(t))]
    return np.asarray(vals, dtype=float)


def path_variation(theta_needed_path: Sequence[float | None]) -> float:
    """P^θ_T = Σ_{t≥2} |θ*_t − θ*_{t−1}| over the (capped) θ^needed path (OL Prop. 1).

    Unknown entries (None/NaN) are dropped, i.e. P is taken over the known sub-path."""
    th = _clean_path(theta_needed_path)
    return float(np.abs(np.diff(th)).sum()) if th.size > 1 else 0.0


def regret_bound_usd(deficit_usd: Sequence[float | None],
                     theta_needed_path: Sequence[float | None]) -> float:
    """√((1 + 2P^θ_T)·Σ_t D_t²) (OL Prop. 1), over the waves where both D_t and θ^needed_t
    are known."""
    d, th = _pairs(deficit_usd, theta_needed_path)
    return math.sqrt((1.0 + 2.0 * path_variation(th)) * float(np.dot(d, d)))


def oracle_step(deficit_usd: Sequence[float | None],
                theta_needed_path: Sequence[float | None]) -> float:
    """η* = √((1 + 2P)/Σ D_t²): the step of OL Prop. 1. Needs the whole path, so it is an
    evaluation reference, not deployable (see OgdSeverity for the online step)."""
    d, th = _pairs(deficit_usd, theta_needed_path)
    sq = float(np.dot(d, d))
    return math.inf if sq == 0 else math.sqrt((1.0 + 2.0 * path_variation(th)) / sq)


def severity_regret_usd(theta: Sequence[float], deficit_usd: Sequence[float | None],
                        theta_needed_path: Sequence[float | None]) -> float:
    """Dynamic regret against the θ^needed path: Σ_t D_t·|θ_t − θ^needed_t| (the comparator's
    loss is 0; OL Prop. 1). Waves with unknown D_t or θ^needed_t are skipped."""
    total = 0.0
    for th, d, tn in zip(theta, deficit_usd, theta_needed_path, strict=True):
        if d is None or tn is None:
            continue
        total += float(d) * abs(float(th) - float(tn))
    return total


def _pairs(deficit_usd, theta_needed_path) -> tuple[np.ndarray, list[float]]:
    d, th = [], []
    for dv, tv in zip(deficit_usd, theta_needed_path, strict=True):
        if dv is None or tv is None or not math.isfinite(float(dv)) or not math.isfinite(float(tv)):
            continue
        d.append(float(dv))
        th.append(float(tv))
    return np.asarray(d, dtype=float), th
