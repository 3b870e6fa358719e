"""``adlmon scorecard WAVELOG|PER_WAVE_CSV [--lambda L] [--share equity|pnl] [--json]``: OL
Table 2 over a run of waves.

For every policy π over the waves t, in wave time order (paper §3.7 eq. 23, §4.5 "OL Table 2"):

    tracking T(π) = Σ_t |H^π_t − B^needed_t|
    fairness F(π) = Σ_t λ·B^needed_t·|m^π_t − m^ref_t|      (m^ref: the reference policy's
                                                              max share, the min–max ILP)
    total    L(π) = T(π) + F(π),   share_of_bound = L(π) / bound
    bound         = √((1 + 2P)·Σ_t D_t²),  P = Σ_{t≥2} |θ_t − θ_{t−1}| over the capped
                    θ^needed path (OL Prop. 1)

The share m^π_t is in [0, 1], so a round's fairness loss is at most λ·B^needed_t
(measures.fairness_share). ``--share equity`` (default, the paper's convention, paper
§4.7.5): max haircut/equity clipped to [0, 1], which is what the CSV's ``max_pct_*`` hold and
adlmon's ``max_share_equity``; ``--share pnl``: adlmon's ``max_share`` (haircut over PnL
capacity, OL eq. 10) clipped to [0, 1], a haircut on an account without capacity counting 1.
The output names the convention.

Inputs (detected by content; waves are sorted by their start time, so P does not depend on
the order of the rows):

* the paper's per-wave CSV (``policy_per_wave_metrics.csv``): one row per wave, columns
  ``budget_<policy>`` (H), ``max_pct_<policy>`` (m), ``budget_needed`` (B),
  ``deficit_usd`` (D), ``theta_needed_capped``, ``t_start`` (else ``wave``) for the order;
  policy names kept as they are (prod, pr, pnl_pr, eq_pr, vector, contract_pr,
  fixed_point_ilp_integer); m^ref = max_pct of ``fixed_point_ilp_integer``. A CSV without
  ``budget_needed``, ``deficit_usd``, a ``budget_<policy>`` / ``max_pct_<policy>`` pair or an
  order column is an error naming what is missing.
* adlmon's wavelog (one wave report per line) or a replay report (``{"waves": [...]}``).
  Keys read per wave (everything else is ignored; missing values skip that term):
    - ``needed_usd`` (B), ``deficit_usd`` (D), ``theta_needed`` (else min(1, B/D)),
      ``production_haircut_usd`` {"<horizon ms>": H} → policy ``production`` (the
      smallest horizon unless --horizon-ms);
    - ``counterfactual``: mechanisms are its dict values (or those of
      ``counterfactual["mechanisms"]`` when present), one per name; of each, the
      ``ex_post`` sub-dict when present (the summary at the ex-post budget), else the
      entry itself: ``total_usd`` (else ``budget_usd``) = H, ``max_share_equity`` or
      ``max_share`` (+ ``max_share_unbounded_accounts``) = m by convention. An entry
      named ``production`` gives production's ``max_share`` (and H when the wave has no
      ``production_haircut_usd``). ``counterfactual["reference"]`` (a name, default
      ``min_max_integer``) is the m^ref policy; ``t_start_ms`` orders the waves.
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path

import numpy as np
import orjson

from adlmon.mechanisms.measures import SHARE_CONVENTIONS, fairness_loss, fairness_share, tracking_loss
from adlmon.mechanisms.severity import path_variation, regret_bound_usd, theta_needed

CSV_REFERENCE = "fixed_point_ilp_integer"
WAVELOG_REFERENCE = "min_max_integer"
PRODUCTION = "production"
SHARE_LABEL = {
    "equity": "m = max haircut/equity in the wave, clipped to [0, 1] (the paper's convention)",
    "pnl": "m = max haircut/PnL capacity in the wave, clipped to [0, 1] (OL eq. 10)",
}


# ---------------------------------------------------------------- rows ---------------------
# A row is one wave: {"wave", "deficit_usd", "needed_usd", "theta_needed", "reference",
#                     "policies": {name: {"total_usd": float|None, "max_share": float|None}}}

def _num(v) -> float | None:
    """A finite float, or None for missing / empty / NaN / non-numeric."""
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _csv_order(rec: Mapping, i: int) -> tuple:
    """Sort key of one CSV row: its start time (ISO), else its wave number, else file order."""
    t = rec.get("t_start")
    if t:
        try:
            return (0, datetime.fromisoformat(t.strip()).timestamp(), i)
        except ValueError:
            raise ValueError(f"row {i + 1}: t_start = {t!r} is not an ISO time") from None
    w = _num(rec.get("wave"))
    return (1, w if w is not None else math.inf, i)


def rows_from_csv(path: str | Path, reference: str | None = None,
                  share: str = "equity") -> list[dict]:
    """Rows of the paper's per-wave CSV (see the module docstring), in wave time order."""
    if share != "equity":
        raise ValueError(f"{path}: the per-wave CSV holds only the paper's share convention "
                         f"(max_pct_* = haircut/equity); --share {share} needs adlmon's wavelog")
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        header = reader.fieldnames or []
        if not header:
            return []
        names = [c[len("budget_"):] for c in header
                 if c.startswith("budget_") and c not in ("budget_needed", "budget_target")]
        missing = [c for c in ("budget_needed", "deficit_usd") if c not in header]
        if not [n for n in names if f"max_pct_{n}" in header]:
            missing.append("budget_<policy> with max_pct_<policy>")
        if "t_start" not in header and "wave" not in header:
            missing.append("t_start or wave (the wave order)")
        if missing:
            raise ValueError(f"{path}: not a per-wave CSV: missing column(s) {', '.join(missing)}")
        ref = reference or (CSV_REFERENCE if CSV_REFERENCE in names else None)
        rows = []
        records = sorted(((_csv_order(rec, i), rec) for i, rec in enumerate(reader)),
                         key=lambda p: p[0])
        for i, (_key, rec) in enumerate(records):
            needed = _num(rec.get("budget_needed"))
            deficit = _num(rec.get("deficit_usd"))
            th = _num(rec.get("theta_needed_capped", rec.get("theta_needed")))
            th = theta_needed(needed, deficit) if th is None else min(1.0, max(0.0, th))
            rows.append({
                "wave": rec.get("wave", str(i + 1)),
                "deficit_usd": deficit,
                "needed_usd": needed,
                "theta_needed": th,
                "reference": ref,
                "policies": {n: {"total_usd": _num(rec.get(f"budget_{n}")),
                                 "max_share": fairness_share(
                                     {"max_share_equity": _num(rec.get(f"max_pct_{n}"))})}
                             for n in names},
            })
    return rows


def _summary(entry: Mapping, share: str) -> dict:
    e = entry.get("ex_post") if isinstance(entry.get("ex_post"), Mapping) else entry
    total = _num(e.get("total_usd"))
    if total is None:
        total = _num(e.get("budget_usd"))
    return {"total_usd": total, "max_share": fairness_share(e, share)}


def row_from_report(wave: Mapping, index: int = 0, *, horizon_ms: int | None = None,
                    reference: str | None = None, share: str = "equity") -> dict:
    """One row from one wave report of adlmon (see the module docstring for the keys)."""
    needed = _num(wave.get("needed_usd"))
    deficit = _num(wave.get("deficit_usd"))
    th = _num(wave.get("theta_needed"))
    th = theta_needed(needed, deficit) if th is None else min(1.0, max(0.0, th))
    cf = wave.get("counterfactual") if isinstance(wave.get("counterfactual"), Mapping) else {}
    mechs = cf.get("mechanisms") if isinstance(cf.get("mechanisms"), Mapping) else cf
    policies: dict[str, dict] = {}
    prod = _production_haircut(wave.get("production_haircut_usd"), horizon_ms)
    if prod is not None or PRODUCTION in mechs:
        policies[PRODUCTION] = {"total_usd": prod, "max_share": None}
    for name, entry in mechs.items():
        if not isinstance(entry, Mapping):
            continue
        s = _summary(entry, share)
        if name == PRODUCTION:
            policies[PRODUCTION]["max_share"] = s["max_share"]
            if prod is None:
                policies[PRODUCTION]["total_usd"] = s["total_usd"]
            continue
        policies[str(name)] = s
    ref = reference or (cf.get("reference") if isinstance(cf.get("reference"), str) else None)
    return {
        "wave": wave.get("wave_id", index + 1),
        "deficit_usd": deficit,
        "needed_usd": needed,
        "theta_needed": th,
        "reference": ref or WAVELOG_REFERENCE,
        "policies": policies,
    }


def _production_haircut(by_horizon, horizon_ms: int | None) -> float | None:
    if not isinstance(by_horizon, Mapping) or not by_horizon:
        return _num(by_horizon)
    if horizon_ms is not None:
        return _num(by_horizon.get(str(horizon_ms)))
    keys = [k for k in by_horizon if _num(k) is not None]
    return _num(by_horizon[min(keys, key=float)]) if keys else None


def _wave_order(wave: Mapping, i: int) -> tuple:
    t = _num(wave.get("t_start_ms"))
    return (t is None, t if t is not None else 0.0, i)


def rows_from_wavelog(path: str | Path, *, horizon_ms: int | None = None,
                      reference: str | None = None, share: str = "equity") -> list[dict]:
    """Rows of a wavelog (JSON lines) or of a replay report ({"waves": [...]}), in wave
    time order (``t_start_ms``; waves without it keep their place after the others)."""
    data = Path(path).read_bytes()
    waves: list = []
    try:
        whole = orjson.loads(data)
    except orjson.JSONDecodeError:
        whole = None
    if isinstance(whole, Mapping):
        waves = list(whole["waves"]) if isinstance(whole.get("waves"), list) else [whole]
    elif isinstance(whole, list):
        waves = whole
    else:
        for n, line in enumerate(data.splitlines(), 1):
            if not line.strip():
                continue
            try:
                waves.append(orjson.loads(line))
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{path}:{n}: not a JSON wave report: {exc}") from None
    waves = [w for w in waves if isinstance(w, Mapping)]
    if waves and not any("needed_usd" in w for w in waves):
        raise ValueError(f"{path}: no wave report in it has needed_usd (not an adlmon wavelog)")
    order = sorted(range(len(waves)), key=lambda i: _wave_order(waves[i], i))
    return [row_from_report(waves[i], i, horizon_ms=horizon_ms, reference=reference, share=share)
            for i in order]


def load_rows(path: str | Path, *, horizon_ms: int | None = None,
              reference: str | None = None, share: str = "equity") -> list[dict]:
    """Rows of either input, told apart by content (a CSV header starts with a name)."""
    if share not in SHARE_CONVENTIONS:
        raise ValueError(f"--share {share!r}: must be one of {', '.join(SHARE_CONVENTIONS)}")
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip()
    if head[:1] in (b"{", b"["):
        return rows_from_wavelog(path, horizon_ms=horizon_ms, reference=reference, share=share)
    return rows_from_csv(path, reference=reference, share=share)


# ---------------------------------------------------------------- table --------------------

def _policy_names(rows: Iterable[dict]) -> list[str]:
    names: dict[str, None] = {}
    for r in rows:
        for n in r["policies"]:
            names.setdefault(n, None)
    return list(names)


def _columns(rows: list[dict], name: str) -> tuple[np.ndarray, ...]:
    """Per wave: H, m of the policy, B, m_ref (NaN where unknown)."""
    nan = math.nan

    def f(v):
        return nan if v is None else v

    h = np.array([f(r["policies"].get(name, {}).get("total_usd")) for r in rows], dtype=float)
    m = np.array([f(r["policies"].get(name, {}).get("max_share")) for r in rows], dtype=float)
    b = np.array([f(r["needed_usd"]) for r in rows], dtype=float)
    mref = np.array([f(r["policies"].get(r["reference"], {}).get("max_share"))
                     if r["reference"] else nan for r in rows], dtype=float)
    return h, m, b, mref


def scorecard(rows: list[dict], lam: float = 1.0, share: str = "equity") -> dict:
    """OL Table 2 over ``rows`` (see the module docstring). Terms with an unknown input are
    left out of the sums (:func:`coverage` counts them); share_of_bound is None when the
    bound is 0."""
    th = [r["theta_needed"] for r in rows]
    d = [r["deficit_usd"] for r in rows]
    # bound and P over the waves where both D_t and θ^needed_t are known
    known = [(dv, tv) for dv, tv in zip(d, th) if dv is not None and tv is not None]
    bound = regret_bound_usd([k[0] for k in known], [k[1] for k in known])
    p = path_variation([k[1] for k in known])
    policies = {}
    for name in _policy_names(rows):
        h, m, b, mref = _columns(rows, name)
        tracking = float(np.nansum(tracking_loss(h, b))) if h.size else 0.0
        fairness = float(np.nansum(fairness_loss(b, m, mref, lam))) if h.size else 0.0
        tot = tracking + fairness
        policies[name] = {
            "tracking_usd": tracking,
            "fairness_usd": fairness,
            "total_usd": tot,
            "share_of_bound": tot / bound if bound > 0 else None,
        }
    return {"bound_usd": bound, "path_variation": p, "lambda": lam, "share_convention": share,
            "policies": policies}


def coverage(rows: list[dict]) -> dict:
    """Per policy, how many waves' tracking and fairness terms could not be computed."""
    out = {}
    for name in _policy_names(rows):
        h, m, b, mref = _columns(rows, name)
        out[name] = {"tracking_missing": int(np.isnan(h - b).sum()),
                     "fairness_missing": int(np.isnan(m - mref + b).sum())}
    out["_bound_missing"] = sum(1 for r in rows
                                if r["deficit_usd"] is None or r["theta_needed"] is None)
    return out


def format_table(card: dict, rows: list[dict]) -> str:
    """The human table: one line per policy, then the bound."""
    # Two spaces before every column: a wide figure never runs into its neighbour.
    lines = [f"{'policy':<24}  {'tracking_usd':>18}  {'fairness_usd':>18}  {'total_usd':>18}  "
             f"{'of bound':>9}"]
    for name, p in card["policies"].items():
        share = "—" if p["share_of_bound"] is None else f"{100 * p['share_of_bound']:.1f}%"
        lines.append(f"{name:<24}  {p['tracking_usd']:>18,.2f}  {p['fairness_usd']:>18,.2f}  "
                     f"{p['total_usd']:>18,.2f}  {share:>9}")
    refs = sorted({r["reference"] for r in rows if r["reference"]})
    lines.append("")
    lines.append(f"bound √((1+2P)·ΣD²) = {card['bound_usd']:,.2f} USD   P = {card['path_variation']:.4f}   "
                 f"waves = {len(rows)}   λ = {card['lambda']:g}")
    lines.append(f"tracking = Σ|H − B_needed|; fairness = λ·Σ B_needed·|m − m_ref|, "
                 f"m_ref = max share of {', '.join(refs) or '(none)'} (OL eq. 23)")
    conv = card.get("share_convention", "equity")
    lines.append(f"share convention {conv}: {SHARE_LABEL[conv]}")
    return "\n".join(lines)


# ---------------------------------------------------------------- CLI ----------------------

def add_arguments(parser) -> None:
    parser.add_argument("path", metavar="WAVELOG|PER_WAVE_CSV",
                        help="adlmon wavelog (JSON lines), replay report, or the paper's per-wave CSV")
    parser.add_argument("--lambda", dest="lam", type=float, default=1.0, metavar="L",
                        help="weight λ >= 0 of the fairness term (default 1)")
    parser.add_argument("--share", choices=SHARE_CONVENTIONS, default="equity",
                        help="max-share convention of the fairness term: equity = haircut/equity "
                             "clipped to [0, 1], the paper's (default); pnl = haircut/PnL "
                             "capacity clipped to [0, 1]")
    parser.add_argument("--json", action="store_true", help="print the scorecard as JSON")
    parser.add_argument("--reference", default=None, metavar="POLICY",
                        help="policy whose max share is m_ref (default: fixed_point_ilp_integer "
                             "for the CSV; the wavelog's counterfactual.reference, else min_max_integer)")
    parser.add_argument("--horizon-ms", type=int, default=None, metavar="MS",
                        help="wavelog: production haircut horizon (default: the smallest)")


def main(args) -> int:
    share = getattr(args, "share", "equity")
    if not (math.isfinite(args.lam) and args.lam >= 0):
        print(f"adlmon scorecard: --lambda {args.lam:g}: must be a finite number >= 0 "
              "(the weight of the fairness term)", file=sys.stderr)
        return 2
    try:
        rows = load_rows(args.path, horizon_ms=args.horizon_ms, reference=args.reference,
                         share=share)
    except (OSError, ValueError, csv.Error) as exc:
        print(f"adlmon scorecard: {exc}", file=sys.stderr)
        return 2
    if not rows:
        print(f"adlmon scorecard: {args.path}: no waves", file=sys.stderr)
        return 1
    card = scorecard(rows, args.lam, share)
    for name, c in coverage(rows).items():
        if name == "_bound_missing":
            if c:
                print(f"adlmon scorecard: {c} wave(s) without D or θ_needed left out of the bound",
                      file=sys.stderr)
        elif c["tracking_missing"] or c["fairness_missing"]:
            print(f"adlmon scorecard: {name}: {c['tracking_missing']} tracking and "
                  f"{c['fairness_missing']} fairness term(s) unknown, left out", file=sys.stderr)
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(card, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(format_table(card, rows))
    return 0
