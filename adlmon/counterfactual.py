"""Wave + the ledger's view of its eligible winners -> WaveReport (DESIGN §4, paper §3, §4.4).

Pure: no I/O, no clock. For one closed wave it answers "what did production take, and what
would each mechanism of paper §3 have taken instead":

- eligible winners: the accounts that held a wave coin on the ADL'd side when the coin first
  appeared in the wave (the ledger's view, before its ADL fills). Capacity u_i = (uPnL_i)+ of
  the account (paper §1.3, the corrected PnL numéraire); equity cap c_i = min(u_i, equity_i)+
  (DESIGN §4), used as the cap fraction beta_i = c_i / u_i. An ADL'd winner the ledger has no
  state for gets u_i from its fills alone, Σ closedPnl·|startPosition|/sz, and the report
  counts how many capacities came from where (``capacity_source``).
- production: x_i = (Σ_fills s·sz·(M(t_end+Δ) − px))+ per ADL'd winner at the first horizon
  (the per-user terms of the wave's production haircut H_t, §4.4 step 4).
- each configured mechanism at the ex-post budget B_t = needed_usd and at the severity
  controller's ex-ante budget θ_t·D (§3.6–3.7), summarised by ``allocation_summary``.
- ``excess_vs_optimal_usd[Δ]`` = H_t(Δ) − Σx of the fairness optimum (capped pro-rata, §3.3)
  at B_t: what production took beyond what the optimal mechanism needed to take.
- a rank audit per coin: the venue's ADL'd order against its documented index.
- running regret accounting (OL Prop. 1): P = Σ|θ^needed_t − θ^needed_{t−1}|, the bound
  √((1+2P)ΣD_t²), and each policy's cumulative per-round loss (OL eq. 23) and share of it.

The controller and the regret accounting carry state from wave to wave, so one
``Counterfactual`` must see the waves of one venue in order.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from adlmon import mechanisms as mech
from adlmon.config import CounterfactualConfig
from adlmon.engine.waves import Wave

OPTIMAL = "capped_pro_rata"  # the fairness optimum of paper §3.3
REFERENCE = "min_max_integer"  # m_ref of OL eq. 23
PRODUCTION = "production"
SHARE_CONVENTION = "equity"  # m of the regret accounting: the paper's (measures.fairness_share)
MAX_AUDITED_COINS = 20  # rank audits kept per wave (largest ADL'd notional first)
MAX_SORTED_HAIRCUTS = 100  # largest haircuts kept per rule in a wave report


class Winners:
    """Eligible winners of one wave as account-level arrays, plus their positions per coin.

    ``Winners.from_views(views)`` builds the same from ledger views alone (no wave, no fills):
    the exposure what-if (exposure.py) runs the mechanisms on it."""

    @classmethod
    def from_views(cls, views: dict) -> "Winners":
        return cls(_ViewsOnly(views))

    def __init__(self, wave: Wave):
        index: dict[str, int] = {}
        upnl: list[float] = []
        equity: list[float] = []
        source: list[str] = []

        def account(user: str, u_pnl: float, eq: float, src: str) -> int:
            i = index.get(user)
            if i is None:
                i = index[user] = len(upnl)
                upnl.append(u_pnl)
                equity.append(eq)
                source.append(src)
            return i

        # Positions (one per account and coin): owner, coin, |size|, entry, mark.
        owner: list[int] = []
        pos_sign: list[float] = []
        pos_coin: list[str] = []
        pos_size: list[float] = []
        pos_entry: list[float] = []
        pos_mark: list[float] = []
        for coin, view in wave.eligible.items():
            mark = view.mark_px if view.mark_px is not None else float("nan")
            for k, user in enumerate(view.users):
                i = account(user, float(view.upnl[k]), float(view.equity[k]), "ledger")
                owner.append(i)
                pos_sign.append(1.0 if view.size[k] >= 0 else -1.0)
                pos_coin.append(coin)
                pos_size.append(abs(float(view.size[k])))
                pos_entry.append(float(view.entry_px[k]))
                pos_mark.append(mark)

        # ADL'd winners the ledger did not know: capacity from their fills alone.
        f = wave.fills
        with np.errstate(divide="ignore", invalid="ignore"):
            fill_capacity = np.where(f.sz > 0, f.closed_pnl * np.abs(f.start_position) / f.sz, 0.0)
            entry_px = getattr(f, "entry_px", None)  # views without fills (exposure) have none
            if entry_px is not None:
                # The venue published the closed position's entry (Lighter): u is its
                # unrealized PnL at the fill's mark (issue 10 "Capacities").
                at_mark = np.abs(f.start_position) * f.closed_sign * (f.mark_px - entry_px)
                fill_capacity = np.where(np.isfinite(at_mark), at_mark, fill_capacity)
        for k, user in enumerate(f.user):
            if user not in index:
                account(user, 0.0, float("nan"), "fill")
            i = index[user]
            if source[i] == "fill":
                upnl[i] += float(fill_capacity[k])
                owner.append(i)
                pos_sign.append(1.0 if f.start_position[k] >= 0 else -1.0)
                pos_coin.append(f.coin[k])
                pos_size.append(abs(float(f.start_position[k])))
                pos_entry.append(float("nan"))
                pos_mark.append(float(f.mark_px[k]))

        self.index = index
        self.users = tuple(index)
        self.upnl = np.asarray(upnl, dtype=float)
        self.owner = np.asarray(owner, dtype=np.intp)
        self.pos_size = np.asarray(pos_size, dtype=float)
        self.pos_mark = np.asarray(pos_mark, dtype=float)
        # Capacities within rounding of zero are zero (measures.CAPACITY_RTOL): no share is
        # computed against float dust.
        self.u = mech.capacity_without_dust(self.upnl, self.notional())
        eq = np.asarray(equity, dtype=float)
        self.equity = eq
        # beta_i = min(u_i, equity_i)+ / u_i; an account without known equity is capped by u only.
        with np.errstate(divide="ignore", invalid="ignore"):
            cap = np.where(np.isnan(eq), self.u, np.clip(np.minimum(self.u, eq), 0.0, None))
            self.beta = np.where(self.u > 0, cap / self.u, 0.0)
        self.source = source
        self.pos_sign = np.asarray(pos_sign, dtype=float)
        self.pos_coin = tuple(pos_coin)
        self.pos_entry = np.asarray(pos_entry, dtype=float)

    def __len__(self) -> int:
        return len(self.users)

    def capacity_source(self) -> dict[str, int]:
        return {s: self.source.count(s) for s in ("ledger", "fill")}

    def per_account(self, x_pos: np.ndarray) -> np.ndarray:
        """Sum a per-position vector into the account vector."""
        return np.bincount(self.owner, weights=x_pos, minlength=len(self))

    def notional(self) -> np.ndarray:
        """n_i = Σ |size|·mark over the account's positions in the wave's coins (USD)."""
        return np.bincount(self.owner, weights=self.pos_size * np.nan_to_num(self.pos_mark),
                           minlength=len(self.users))

    def leverage(self) -> np.ndarray:
        """Effective leverage λ_i = n_i / e_i over the wave's coins (paper §1.4)."""
        notional = self.notional()
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = np.where(self.equity > 0, notional / self.equity, 0.0)
        return np.nan_to_num(lam, nan=0.0, posinf=0.0)

    def hyperliquid_score(self) -> np.ndarray:
        """Account score for the wealth-space queue: the best of its positions' documented index."""
        pos_score = mech.hyperliquid_index(self.pos_mark, self.pos_entry,
                                           self.pos_size * self.pos_mark,
                                           self.equity[self.owner], self.pos_sign)
        score = np.full(len(self), -np.inf)
        np.maximum.at(score, self.owner, pos_score)
        # Accounts known only from fills have no entry price: rank them by PnL behind the others.
        return np.where(np.isfinite(score), score, -1.0 / (1.0 + self.u))


class _ViewsOnly:
    """What ``Winners`` reads of a wave, from ledger views alone: no fills."""

    def __init__(self, views: dict):
        self.eligible = views
        self.fills = _NO_FILLS


class _NoFills:
    sz = start_position = closed_pnl = mark_px = np.zeros(0)
    user: tuple = ()
    coin: tuple = ()


_NO_FILLS = _NoFills()


def production_haircuts(wave: Wave, winners: Winners, horizon_ms: int) -> np.ndarray:
    """Per eligible account, (Σ_fills s·sz·(M(t_end+Δ) − px))+ (paper §4.4 step 4)."""
    f = wave.fills
    marks = wave.horizon_marks.get(horizon_ms, {})
    m = np.asarray([marks.get(c, np.nan) for c in f.coin], dtype=float)
    contrib = np.nan_to_num(f.closed_sign * f.sz * (m - f.px))
    idx = np.asarray([winners.index[u] for u in f.user], dtype=np.intp)
    return np.maximum(np.bincount(idx, weights=contrib, minlength=len(winners)), 0.0)


def _coin_budget_split(wave: Wave) -> dict[str, tuple[float, float]]:
    """Per coin: (share of the wave's needed budget, USD gap per ADL'd contract), as the OSS
    contract pro-rata splits a wave budget across coins by Σ|mark − px|·sz (paper §3.2)."""
    f = wave.fills
    gap = np.nan_to_num(np.abs(f.mark_px - f.px)) * f.sz
    out: dict[str, tuple[float, float]] = {}
    total = float(gap.sum())
    coins = np.asarray(f.coin)
    for coin in dict.fromkeys(f.coin):
        sel = coins == coin
        g, q = float(gap[sel].sum()), float(f.sz[sel].sum())
        share = g / total if total > 0 else 1.0 / len(set(f.coin))
        out[coin] = (share, g / q if q > 0 else 0.0)
    return out


class RegretRun:
    """The running terms of the OL Prop. 1 bound √((1 + 2P^θ_T)·Σ_t D_t²) in O(1) memory
    (issue 9: a long run must not keep every wave's deficit). ``add(D_t, θ^needed_t)`` per
    counted wave; P^θ is over the known θ sub-path and Σ D² over the waves whose θ is
    known, as ``mechanisms.severity.path_variation`` / ``regret_bound_usd`` on the lists."""

    def __init__(self):
        self.waves = 0
        self.path_variation = 0.0
        self.sum_d2 = 0.0
        self._last_theta: float | None = None

    def add(self, deficit_usd: float, theta_needed: float | None) -> None:
        self.waves += 1
        if theta_needed is None or not math.isfinite(theta_needed) \
                or not math.isfinite(deficit_usd):
            return
        if self._last_theta is not None:
            self.path_variation += abs(theta_needed - self._last_theta)
        self._last_theta = theta_needed
        self.sum_d2 += deficit_usd * deficit_usd

    @property
    def bound_usd(self) -> float:
        return math.sqrt((1.0 + 2.0 * self.path_variation) * self.sum_d2)


def _per_coin(w: Winners, split: dict[str, tuple[float, float]], rule,
              with_capacity_only: bool = False) -> np.ndarray:
    """A per-position vector from ``rule(positions of one coin, budget share, gap)`` per coin.
    ``with_capacity_only``: only positions of accounts with PnL capacity u > 0 (a rule that
    shares PnL takes nothing from an account without it; leverage draining reads leverage)."""
    x_pos = np.zeros(len(w.pos_coin))
    coins = np.asarray(w.pos_coin)
    eligible = w.u[w.owner] > 0 if with_capacity_only else np.ones(len(coins), dtype=bool)
    for coin, (share, gap) in split.items():
        sel = np.flatnonzero((coins == coin) & eligible)
        if sel.size:
            x_pos[sel] = rule(sel, share, gap)
    return x_pos


def _risk_based(w: Winners, split: dict[str, tuple[float, float]], budget: float) -> dict[str, Any]:
    """Leverage draining (mechanisms/riskbased.py) per coin, single-asset form: the coin's
    contracts to close are its budget share over its gap per contract (as contract pro-rata
    reads the wave), reductions drain the positions' gross leverage |size|·mark / equity;
    the haircut is contracts × gap. Reported with the contracts it closes."""
    contracts = np.zeros(len(w.pos_coin))
    feasible = True

    def rule(sel, share, gap):
        nonlocal feasible
        need = share * budget / gap if gap > 0 else 0.0
        a = mech.allocate_risk_based(w.pos_size[sel], np.nan_to_num(w.pos_mark[sel]),
                                     w.equity[w.owner[sel]], need, gap)
        contracts[sel] = a.contracts
        feasible = feasible and a.feasible
        return a.x

    x_pos = _per_coin(w, split, rule)
    return {"x": w.per_account(x_pos), "feasible": feasible,
            "contracts": float(contracts.sum())}


def allocations(cfg: CounterfactualConfig, w: Winners, budget: float, coin_split,
                ex_post: bool = True) -> dict[str, dict[str, Any]]:
    """Every configured mechanism at one budget: name -> (x per account, extra fields).
    ``coin_split()`` -> {coin: (budget share, USD gap per contract)} for the contract rules.
    The min–max integer program is an ex-post reference (OL §3.7): solved ex post only."""
    out: dict[str, dict[str, Any]] = {}
    names = set(cfg.mechanisms)
    if not ex_post:
        names.discard(REFERENCE)
    if "pro_rata" in names:
        out["pro_rata"] = {"x": mech.pro_rata(w.u, budget)}
    # The optimum is always computed: excess_vs_optimal_usd is measured against it.
    a = mech.allocate_capped_pro_rata(w.u, budget, w.beta)
    out[OPTIMAL] = {"x": a.x, "feasible": a.feasible}
    if "rap" in names:
        weights = mech.rap_weights(w.leverage(), mech.g_linear)
        a = mech.allocate_rap(w.u, budget, weights, w.beta)
        out["rap"] = {"x": a.x, "feasible": a.feasible}
    if "queue_pnl" in names:
        out["queue_pnl"] = {"x": mech.queue(w.u, budget, w.u)}
    if "queue_hyperliquid" in names:
        out["queue_hyperliquid"] = {"x": mech.queue(w.u, budget, w.hyperliquid_score())}
    if names & {"contract_pro_rata", "min_max_integer", "risk_based"}:
        split = coin_split()
        gap_pos = np.asarray([split.get(c, (0.0, 0.0))[1] for c in w.pos_coin], dtype=float)
        if "contract_pro_rata" in names:
            x_pos = _per_coin(w, split, lambda sel, share, gap: mech.contract_pro_rata(
                w.pos_size[sel], np.full(sel.size, gap), share * budget), with_capacity_only=True)
            out["contract_pro_rata"] = {"x": w.per_account(x_pos)}
        if "risk_based" in names:
            out["risk_based"] = _risk_based(w, split, budget)
        if "min_max_integer" in names:
            method = "mip" if len(w) <= cfg.ilp_max_accounts else "fallback"
            a = mech.allocate_min_max_integer(w.pos_size, gap_pos, w.u, budget,
                                              cfg.ilp_time_limit_s, owner=w.owner,
                                              method=method)
            out["min_max_integer"] = {
                "x": np.asarray(a.account_x, dtype=float), "feasible": a.feasible,
                "optimal": a.optimal, "method": a.method, "bound": a.bound, "gap": a.gap,
            }
    return out


class Counterfactual:
    """Stateful across waves (severity controller, regret accounting); ``report`` is pure
    given that state."""

    def __init__(self, cfg: CounterfactualConfig | None = None):
        self.cfg = cfg or CounterfactualConfig()
        self.controller = mech.controller_from_config(self.cfg)
        self._regret = RegretRun()
        self._loss: dict[str, float] = {}

    # -- mechanisms ------------------------------------------------------------------------

    def _allocations(self, wave: Wave, w: Winners, budget: float,
                     ex_post: bool = True) -> dict[str, dict[str, Any]]:
        return allocations(self.cfg, w, budget, lambda: _coin_budget_split(wave), ex_post)

    @staticmethod
    def _summary(x: np.ndarray, w: Winners, wave: Wave, max_loss: float | None,
                 extra: dict[str, Any]) -> dict[str, Any]:
        """``allocation_summary`` plus what a share of PnL capacity alone hides.

        Production takes from accounts with no PnL capacity (u_i = 0: their principal),
        where x_i/(u_i+ε) is meaningless. So ``max_share`` is max x_i/u_i over accounts with
        u_i > 0 (OL eq. 10) and null when a haircut falls on an account without capacity
        (the share is unbounded; ``max_share_unbounded_accounts`` counts them: 0 would read
        "perfectly fair"); ``beyond_capacity_usd`` / ``beyond_capacity_accounts`` count
        Σ(x_i − u_i)+; ``max_share_equity`` = max x_i/e_i over accounts of known positive
        equity is the reproduction code's convention (paper §4.7.5), unclipped
        (``max_share_equity_unknown_accounts``: haircut accounts whose equity is unknown).
        """
        s = mech.allocation_summary(x, w.u, needed_usd=wave.needed_usd,
                                    deficit_usd=wave.deficit_usd, max_loss_usd=max_loss)
        has_u = w.u > 0
        unbounded = mech.accounts_touched(x[~has_u])
        s["max_share"] = (None if unbounded else
                          float(np.max(x[has_u] / w.u[has_u])) if has_u.any() else 0.0)
        s["max_share_unbounded_accounts"] = unbounded
        over = np.maximum(x - w.u, 0.0)
        s["beyond_capacity_usd"] = float(over.sum())
        s["beyond_capacity_accounts"] = mech.accounts_touched(over)
        has_e = w.equity > 0
        s["max_share_equity"] = float(np.max(x[has_e] / w.equity[has_e])) if has_e.any() else None
        s["max_share_equity_unknown_accounts"] = mech.accounts_touched(x[np.isnan(w.equity)])
        s.update({k: v for k, v in extra.items() if k != "x"})
        return s

    # -- report ----------------------------------------------------------------------------

    def report(self, wave: Wave) -> dict[str, Any]:
        """The wave report: ``wave.to_dict()`` plus ``counterfactual``."""
        out = wave.to_dict()
        w = Winners(wave)
        h0 = wave.horizons_ms[0]
        D = wave.deficit_usd
        losses = [(-e) for e in wave.loser_min_equity.values() if e is not None and e < 0]
        max_loss = max(losses) if losses else None

        start = mech.WaveStart(deficit_usd=wave.deficit_at_start_usd,
                               max_capacity_usd=float(w.u.max()) if len(w) else 0.0,
                               total_capacity_usd=float(w.u.sum()))
        theta_ante, budget_ante = self.controller.budget(start)

        x_prod = production_haircuts(wave, w, h0)
        mechanisms: dict[str, dict[str, Any]] = {
            PRODUCTION: {"ex_post": self._summary(x_prod, w, wave, max_loss, {}), "ex_ante": None},
        }
        ex_post = self._allocations(wave, w, wave.needed_usd)
        ex_ante = self._allocations(wave, w, budget_ante, ex_post=False) if budget_ante is not None else {}
        for name, alloc in ex_post.items():
            mechanisms[name] = {
                "ex_post": self._summary(alloc["x"], w, wave, max_loss, alloc),
                "ex_ante": (self._summary(ex_ante[name]["x"], w, wave, max_loss, ex_ante[name])
                            if name in ex_ante else None),
            }
        # Each rule's largest haircuts, sorted (the status page's concentration view).
        haircuts_sorted = {PRODUCTION: _largest(x_prod)}
        haircuts_sorted.update({name: _largest(alloc["x"]) for name, alloc in ex_post.items()})
        optimal = optimal_status(wave, w, ex_post[OPTIMAL])
        excess_vs_optimal = {str(h): (None if optimal["total_usd"] is None else
                                      wave.production_haircut_usd[h] - optimal["total_usd"])
                             for h in wave.horizons_ms}

        self.controller.update(mech.WaveEnd(deficit_usd=D, needed_usd=wave.needed_usd))
        regret = self._account(wave, mechanisms)
        if OPTIMAL not in self.cfg.mechanisms:
            mechanisms[OPTIMAL]["configured"] = False

        out["counterfactual"] = {
            "winners": len(w),
            "capacity_usd": float(w.u.sum()),
            "capacity_source": w.capacity_source(),
            "budget": {
                "ex_post_usd": wave.needed_usd,
                "ex_ante_usd": budget_ante,
                "theta_ex_ante": theta_ante,
                "controller": self.controller.name,
            },
            "optimal_mechanism": OPTIMAL,
            "optimal": optimal,
            "reference": REFERENCE,
            "excess_vs_optimal_usd": excess_vs_optimal,
            "mechanisms": mechanisms,
            "rank_audit": rank_audits(wave),
            "haircuts_sorted_usd": haircuts_sorted,
            "regret": regret,
        }
        return out

    def _account(self, wave: Wave, mechanisms: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """Running OL Prop. 1 bound and each policy's cumulative eq. 23 loss (λ from config)."""
        D, B = wave.deficit_usd, wave.needed_usd
        if D is None or not D > 0:
            return {"counted": False}
        self._regret.add(D, wave.theta_needed)
        # m and m_ref in [0, 1] (paper convention, measures.fairness_share): a round's
        # fairness loss is at most λ·B; a term with an unknown share is left out, as the
        # scorecard does.
        ref = mech.fairness_share(mechanisms.get(REFERENCE, mechanisms[OPTIMAL])["ex_post"],
                                  SHARE_CONVENTION)
        lam = self.cfg.fairness_lambda
        for name, m in mechanisms.items():
            s = m["ex_post"]
            total = (wave.production_haircut_usd[wave.horizons_ms[0]] if name == PRODUCTION
                     else s["total_usd"])
            share = mech.fairness_share(s, SHARE_CONVENTION)
            loss = float(mech.tracking_loss(total, B))
            if share is not None and ref is not None:
                loss += float(mech.fairness_loss(B, share, ref, lam))
            self._loss[name] = self._loss.get(name, 0.0) + loss
        p = self._regret.path_variation
        bound = self._regret.bound_usd
        return {
            "counted": True,
            "waves": self._regret.waves,
            "path_variation": p,
            "bound_usd": bound,
            "lambda": lam,
            "share_convention": SHARE_CONVENTION,
            "cumulative_loss_usd": dict(self._loss),
            "share_of_bound": {k: (v / bound if bound > 0 else math.nan) for k, v in self._loss.items()},
        }


def optimal_status(wave: Wave, w: Winners, alloc: dict[str, Any]) -> dict[str, Any]:
    """Whether the fairness optimum at B_t is known (paper §1.3 feasibility B <= C(β)).

    Capped pro-rata at B_t exists only when the winners' known capacity C(β) = Σ β_i u_i
    can carry B_t. When it cannot, the optimum is unknown, not the capped maximum: the
    missing capacity belongs to winners the ledger could not value (capacities inferred
    from fills, or u_i = 0), so ``total_usd`` is null and the reason says what was known.
    """
    capacity = float(np.sum(w.u * w.beta))
    without = int(np.count_nonzero(w.u <= 0))
    out = {
        "mechanism": OPTIMAL,
        "status": "known" if alloc["feasible"] else "unknown",
        "total_usd": float(np.sum(alloc["x"])) if alloc["feasible"] else None,
        "known_capacity_usd": capacity,
        "needed_usd": wave.needed_usd,
        "winners": len(w),
        "winners_without_capacity": without,
        "reason": None,
    }
    if not alloc["feasible"]:
        src = w.capacity_source()
        out["reason"] = (f"known capacity ${capacity:,.2f} cannot carry B = ${wave.needed_usd:,.2f}: "
                         f"{without} of {len(w)} winners have no known capacity "
                         f"({src['fill']} valued from their fills alone)")
    return out


def _largest(x: np.ndarray) -> list[float]:
    """The MAX_SORTED_HAIRCUTS largest positive haircuts, descending (USD)."""
    x = np.asarray(x, dtype=float)
    top = np.sort(x[x > 0])[::-1][:MAX_SORTED_HAIRCUTS]
    return [float(v) for v in top]


def rank_audits(wave: Wave) -> dict[str, dict[str, Any]]:
    """Per coin (largest ADL'd notional first, at most MAX_AUDITED_COINS): the venue's ADL'd
    set and order against Hyperliquid's documented index over the ledger's candidates."""
    f = wave.fills
    coins = np.asarray(f.coin)
    notional = f.px * f.sz
    by_coin = sorted(wave.eligible, key=lambda c: -float(notional[coins == c].sum()))
    out: dict[str, dict[str, Any]] = {}
    for coin in by_coin[:MAX_AUDITED_COINS]:
        view = wave.eligible[coin]
        if len(view) == 0 or view.mark_px is None:
            continue
        cand_notional = np.abs(view.size) * view.mark_px
        scores = mech.hyperliquid_index(view.mark_px, view.entry_px, cand_notional, view.equity,
                                        view.size)
        sel = np.flatnonzero(coins == coin)
        audit = mech.rank_audit(view.users, scores, cand_notional,
                                [f.user[i] for i in sel], notional[sel], f.time_ms[sel])
        out[coin] = audit.to_dict()
        # The candidates are the ledger's view when the coin first appeared in the wave, so
        # only that first block is ranked against the state the venue ranked: audited apart.
        first = sel[f.time_ms[sel] == f.time_ms[sel].min()]
        out[coin]["first_block"] = mech.rank_audit(
            view.users, scores, cand_notional, [f.user[i] for i in first], notional[first],
            f.time_ms[first]).to_dict()
    return out
