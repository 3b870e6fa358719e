"""ADL exposure now: who is next in a venue's queue, and what a shortfall would take.

Pure: no I/O, no clock. Input: the ledger's view of one coin and side (``HoldersView``:
every open position on that side, profitable or not, with its account's equity) and the
venue's documented ADL order (``QueueOrder``, declared in ``adlmon/venues/<venue>/adl_queue.py``;
this module names no venue).

The queue (paper §3.1 "Scores"): positions sorted by the venue's score, highest first (ties:
ledger order; unrankable scores last), each with rank (1 = head), score, size, notional
|size|·mark, uPnL of the position size·(mark − entry), capacity u = (uPnL)+, account equity
and leverage notional/equity. ``percentile`` = 100·(N − rank + 1)/N (100 = the head).

What-if under a shortfall X (USD) on that side:
  * production, wealth view (paper §3.1): the greedy prefix of capacities in queue order,
    x_σ(j) = min(u_σ(j), X − Σ_{l<j} x_σ(l));
  * production, contract view (paper §3.1 "Contract-space queue"): positions are closed whole
    in queue order until Q = X / gap contracts are matched (the last one partly); each closed
    contract costs the gap, so loss_i = contracts_i·gap and what it loses beyond its PnL is
    (loss_i − u_i)+. gap = USD per contract between the transfer price and the mark: given,
    or by default ``DEFAULT_GAP_FRACTION`` of the mark (our assumption, reported);
  * every configured mechanism (counterfactual.allocations on the same positions: one coin,
    the whole budget X at that gap) with its measures: total, max share (over u > 0),
    accounts touched, concentration (share of the top 10 accounts, Herfindahl index);
    where the caller has every account's positions, also risk-based ADL in its one-factor
    multi-asset form (``net_notional``, β = 1 for every coin).
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from adlmon import mechanisms as mech
from adlmon.config import CounterfactualConfig
from adlmon.counterfactual import Winners, allocations

DEFAULT_GAP_FRACTION = 0.005  # transfer-price gap as a fraction of the mark (assumed, 50 bps)
TOP_N = 10  # concentration: share of the take borne by the top 10 accounts
SIDES = {"long": 1, "short": -1}


@dataclass(frozen=True)
class QueueOrder:
    """A venue's ADL ordering: ``score(view)`` per position, higher = closed first.

    ``kind``: "rank" (a deterministic queue) or "expected_share" (a randomised start: the
    output then gives an expected share instead of a rank and says so)."""

    name: str
    kind: str
    score: Callable[[Any], np.ndarray]
    note: str


def queue_order(venue: str) -> QueueOrder:
    """The ``ORDER`` of ``adlmon.venues.<venue>.adl_queue`` (ValueError if it has none)."""
    try:
        mod = importlib.import_module(f"adlmon.venues.{venue}.adl_queue")
    except ModuleNotFoundError:
        raise ValueError(f"venue {venue!r} documents no ADL queue order adlmon knows") from None
    return mod.ORDER


def _num(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass(frozen=True, eq=False)
class Queue:
    """One coin and side in queue order (arrays aligned, index 0 = the head)."""

    coin: str
    side: str
    mark_px: float | None
    order: QueueOrder
    users: tuple[str, ...]
    score: np.ndarray
    size: np.ndarray
    entry_px: np.ndarray
    notional_usd: np.ndarray
    upnl_usd: np.ndarray
    equity_usd: np.ndarray
    leverage: np.ndarray
    view: Any  # the HoldersView in queue order (for the mechanisms)

    def __len__(self) -> int:
        return len(self.users)

    @property
    def capacity_usd(self) -> np.ndarray:
        return np.maximum(self.upnl_usd, 0.0)

    def rank_of(self, user: str) -> int | None:
        try:
            return self.users.index(user) + 1
        except ValueError:
            return None

    def percentile(self, rank: int) -> float:
        n = len(self)
        return 100.0 * (n - rank + 1) / n


def build_queue(view, order: QueueOrder, side: str) -> Queue:
    """The queue of ``view`` (a ledger HoldersView of one side) in ``order``."""
    mark = view.mark_px
    m = float(mark) if mark is not None else math.nan
    score = np.asarray(order.score(view), dtype=float)
    key = np.where(np.isnan(score), np.inf, -score)
    idx = np.argsort(key, kind="stable")
    size = np.asarray(view.size, dtype=float)[idx]
    entry = np.asarray(view.entry_px, dtype=float)[idx]
    equity = np.asarray(view.equity, dtype=float)[idx]
    notional = np.abs(size) * m
    with np.errstate(divide="ignore", invalid="ignore"):
        leverage = np.where(equity > 0, notional / equity, np.inf)
    users = tuple(view.users[i] for i in idx)
    ordered = type(view)(view.coin, view.sign, mark, users, size, entry, equity,
                         np.asarray(view.upnl, dtype=float)[idx])
    return Queue(view.coin, side, mark, order, users, score[idx], size, entry, notional,
                 size * (m - entry), equity, leverage, ordered)


def _measures(x: np.ndarray, u: np.ndarray) -> dict[str, Any]:
    total = float(x.sum())
    has_u = u > 0
    top = np.sort(x)[::-1][:TOP_N]
    return {
        "total_usd": total,
        "max_share": float(np.max(x[has_u] / u[has_u])) if has_u.any() else 0.0,
        "accounts_touched": mech.accounts_touched(x),
        "top10_share": float(top.sum() / total) if total > 0 else 0.0,
        "hhi": float(((x / total) ** 2).sum()) if total > 0 else 0.0,
    }


def net_notional(users, positions_of: Callable[[str], dict], marks: dict[str, float],
                 sign: int) -> dict[str, float]:
    """Per user, the account's net notional signed towards ``sign``'s side,
    sign·Σ_c size_c·mark_c over all its coins: the one-factor exposure E_i of risk-based
    ADL's multi-asset form with β_c = 1 for every coin (mechanisms/riskbased.py; adlmon
    estimates no betas). ``positions_of(user)`` -> {coin: (signed size, entry)}."""
    out = {}
    for user in users:
        out[user] = sign * sum(size * marks.get(coin, entry)
                               for coin, (size, entry) in positions_of(user).items())
    return out


def what_if(q: Queue, shortfall_usd: float, cfg: CounterfactualConfig | None = None,
            gap_per_contract: float | None = None,
            factor_exposure: dict[str, float] | None = None) -> dict[str, Any]:
    """Every take under a shortfall X on the queue's side (module docstring). With
    ``factor_exposure`` (``net_notional``) and risk_based configured, also
    ``risk_based_factor``: leverage draining in the factor-adjusted leverage E_i/e_i, so a
    position hedged elsewhere in its account is reduced less."""
    cfg = cfg or CounterfactualConfig()
    X = mech.allocation.as_budget(shortfall_usd)
    u = q.capacity_usd
    rank_score = -np.arange(len(q), dtype=float)  # the queue order itself
    prod = mech.queue(u, X, rank_score)
    gap = (float(gap_per_contract) if gap_per_contract is not None
           else DEFAULT_GAP_FRACTION * (q.mark_px or 0.0))
    contracts_needed = X / gap if gap > 0 else 0.0
    contract = mech.allocate_contract_queue(np.abs(q.size), gap, contracts_needed, rank_score)
    loss = contract.x
    takes: dict[str, np.ndarray] = {}
    extras: dict[str, dict] = {}
    if len(q):
        w = Winners.from_views({q.coin: q.view})
        for name, a in allocations(cfg, w, X, lambda: {q.coin: (1.0, gap)}).items():
            if name in cfg.mechanisms:
                takes[name] = np.asarray(a["x"], dtype=float)
                extras[name] = {k: v for k, v in a.items() if k != "x"}
    if factor_exposure is not None and "risk_based" in cfg.mechanisms and len(q):
        E = np.asarray([factor_exposure.get(user, 0.0) for user in q.users], dtype=float)
        a = mech.allocate_risk_based(np.abs(q.size), q.mark_px or 0.0, q.equity_usd,
                                     contracts_needed, gap, exposure=E)
        takes["risk_based_factor"] = a.x
        extras["risk_based_factor"] = {"feasible": a.feasible,
                                       "contracts": float(a.contracts.sum()),
                                       "factor": "net notional, beta 1 for every coin"}
    mechanisms = {"production": _measures(prod, u),
                  "production_contracts": {**_measures(loss, u),
                                           "contracts_closed": float(contract.contracts.sum()),
                                           "beyond_pnl_usd": float(np.maximum(loss - u, 0).sum())}}
    for name, x in takes.items():
        mechanisms[name] = {**_measures(x, u), **extras[name]}
    return {
        "shortfall_usd": X,
        "capacity_usd": float(u.sum()),
        "uncovered_usd": max(X - float(u.sum()), 0.0),
        "gap_usd_per_contract": gap,
        "gap_source": "given" if gap_per_contract is not None else
                      f"assumed {DEFAULT_GAP_FRACTION:g} of the mark",
        "contracts_needed": contracts_needed,
        "production_take_usd": prod,
        "contracts_closed": contract.contracts,
        "contract_loss_usd": loss,
        "beyond_pnl_usd": np.maximum(loss - u, 0.0),
        "take_usd": takes,
        "mechanisms": mechanisms,
    }


def exposure_report(q: Queue, *, venue: str, at_ms: int | None,
                    shortfall_usd: float | None = None, cfg: CounterfactualConfig | None = None,
                    gap_per_contract: float | None = None, limit: int | None = None,
                    factor_exposure: dict[str, float] | None = None) -> dict:
    """The JSON document of ``adlmon exposure`` and ``/api/exposure`` (the issue's shape):
    ``accounts`` in queue order (the first ``limit``), the totals, the what-if measures."""
    wi = (what_if(q, shortfall_usd, cfg, gap_per_contract, factor_exposure)
          if shortfall_usd is not None else None)
    n = len(q) if limit is None else min(limit, len(q))
    u = q.capacity_usd
    accounts = []
    for i in range(n):
        row = {
            "user": q.users[i], "rank": i + 1, "score": _num(q.score[i]),
            "size": float(q.size[i]), "entry_px": _num(q.entry_px[i]),
            "notional_usd": _num(q.notional_usd[i]), "upnl_usd": _num(q.upnl_usd[i]),
            "capacity_usd": _num(u[i]), "equity_usd": _num(q.equity_usd[i]),
            "leverage": _num(q.leverage[i]), "percentile": q.percentile(i + 1),
            "production_take_usd": None, "take_usd": {},
        }
        if wi is not None:
            row["production_take_usd"] = float(wi["production_take_usd"][i])
            row["contract_view"] = {
                "contracts_closed": float(wi["contracts_closed"][i]),
                "loss_usd": float(wi["contract_loss_usd"][i]),
                "beyond_pnl_usd": float(wi["beyond_pnl_usd"][i]),
            }
            row["take_usd"] = {k: float(v[i]) for k, v in wi["take_usd"].items()}
        accounts.append(row)
    totals = {
        "positions": len(q),
        "size": float(np.abs(q.size).sum()),
        "notional_usd": float(np.nansum(q.notional_usd)),
        "upnl_usd": float(np.nansum(q.upnl_usd)),
        "capacity_usd": float(u.sum()),
        "top10_capacity_usd": float(u[:TOP_N].sum()),
    }
    out = {
        "venue": venue, "coin": q.coin, "side": q.side, "at_ms": at_ms,
        "mark_px": q.mark_px,
        "order": {"name": q.order.name, "kind": q.order.kind, "note": q.order.note},
        "accounts": accounts, "totals": totals, "truncated": n < len(q),
    }
    if wi is not None:
        out["what_if"] = {k: wi[k] for k in ("shortfall_usd", "capacity_usd", "uncovered_usd",
                                              "gap_usd_per_contract", "gap_source",
                                              "contracts_needed", "mechanisms")}
        totals["production_take_usd"] = float(wi["production_take_usd"].sum())
        totals["take_usd"] = {k: float(v.sum()) for k, v in wi["take_usd"].items()}
    return out


def account_report(user: str, queues: dict[tuple[str, str], Queue]) -> list[dict]:
    """Every position of ``user`` among ``queues`` ({(coin, side): Queue}) with its rank and
    percentile in that queue."""
    out = []
    for (coin, side), q in sorted(queues.items()):
        r = q.rank_of(user)
        if r is None:
            continue
        i = r - 1
        out.append({"coin": coin, "side": side, "rank": r, "of": len(q),
                    "percentile": q.percentile(r), "score": _num(q.score[i]),
                    "size": float(q.size[i]), "notional_usd": _num(q.notional_usd[i]),
                    "upnl_usd": _num(q.upnl_usd[i]), "equity_usd": _num(q.equity_usd[i]),
                    "leverage": _num(q.leverage[i]), "order": q.order.name})
    return out


def queues_of(ledger, order: QueueOrder, coins=None) -> dict[tuple[str, str], Queue]:
    """Both sides of every coin the ledger holds (or of ``coins``)."""
    out = {}
    cache: dict = {}
    for coin in (ledger.coins() if coins is None else coins):
        for side, sign in SIDES.items():
            view = ledger.holders(coin, sign, cache)
            if len(view):
                out[(coin, side)] = build_queue(view, order, side)
    return out


def side_summary(q: Queue, reference_shortfall_usd: float) -> dict[str, float]:
    """The queue gauges of one coin and side: positions, capacity Σu and the share of a
    reference shortfall X the first ``TOP_N`` positions would bear under production's greedy
    prefix, min(X, Σ_{rank <= 10} u) / X."""
    u = q.capacity_usd
    x = float(reference_shortfall_usd)
    top = float(u[:TOP_N].sum())
    return {"positions": float(len(q)), "capacity_usd": float(u.sum()),
            "top10_share": min(x, top) / x if x > 0 else 0.0}


def watch_ranks(queues: dict[tuple[str, str], Queue], watch) -> dict[tuple[str, str, str], tuple[int, float]]:
    """(address, coin, side) -> (rank, percentile as a ratio 0..1) for watched addresses."""
    out = {}
    wanted = {a.lower() for a in watch}
    if not wanted:
        return out
    for (coin, side), q in queues.items():
        for i, user in enumerate(q.users):
            if user.lower() in wanted:
                out[(user.lower(), coin, side)] = (i + 1, q.percentile(i + 1) / 100.0)
    return out
