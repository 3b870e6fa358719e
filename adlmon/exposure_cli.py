"""``adlmon exposure PATH... --venue V --coin C --side long|short [--at-ms T]
[--shortfall-usd X] [--json]``: the ADL queue of one coin and side at a past time.

The state at T (default: the end of the input) is the ledger of a replay of PATH... (node
files and snapshots, through ``replay.replay_files``) stopped after the last event at or
before T. The queue and what-if are ``adlmon.exposure``'s.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson

from adlmon.config import ConfigError, load_config
from adlmon.engine.engine import Engine
from adlmon.engine.ledger import Ledger
from adlmon.exposure import SIDES, build_queue, exposure_report, net_notional, queue_order

_TIME = 6  # a fill row's time_ms (engine.ledger.fill_row)


class _Reached(Exception):
    """The input passed T: the replay stops here."""


class _EngineUntil(Engine):
    """An Engine that refuses every event after ``at_ms`` (and stops the replay there)."""

    def __init__(self, at_ms: int, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.at_ms = at_ms

    def apply(self, event):
        t = getattr(event, "time_ms", None)
        if t is not None and t > self.at_ms:
            raise _Reached
        return super().apply(event)

    def apply_fill_rows(self, rows):
        keep = [r for r in rows if r[_TIME] <= self.at_ms]
        out = super().apply_fill_rows(keep) if keep else []
        if len(keep) < len(rows):
            raise _Reached
        return out


def ledger_at(paths, at_ms: int | None = None, *, venue: str = "hyperliquid",
              snapshot_paths=()) -> tuple[Ledger, int | None, dict]:
    """(ledger, time of its last event, replay inputs) after replaying ``paths`` up to
    ``at_ms`` (None = all of it)."""
    from adlmon.replay import ACCOUNT_VALUES_PREFIX, replay_files, snapshot_kind

    # As replay_files' own engine: after a full account-value snapshot, an account it does
    # not list is new (known from zero).
    full = any(snapshot_kind(Path(p)) == ACCOUNT_VALUES_PREFIX for p in [*paths, *snapshot_paths])
    ledger = Ledger(new_accounts_empty=full)
    horizons = (0,)  # waves are not this command's subject: one horizon keeps them cheap
    eng = (Engine(venue, ledger=ledger, horizons_ms=horizons) if at_ms is None
           else _EngineUntil(at_ms, venue, ledger=ledger, horizons_ms=horizons))
    inputs: dict = {}
    try:
        result = replay_files(paths, horizons_ms=horizons, snapshot_paths=snapshot_paths,
                              engine=eng, venue=venue)
        inputs = result.inputs
    except _Reached:
        eng.finish()
    return eng.ledger, eng.last_time_ms, inputs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH",
                        help="archive files (node fills, misc events, snapshots) to replay")
    parser.add_argument("--venue", required=True, help="venue whose documented ADL order ranks the queue")
    parser.add_argument("--coin", required=True)
    parser.add_argument("--side", required=True, choices=tuple(SIDES),
                        help="the side whose positions are ADL'd (long: a short went bankrupt)")
    parser.add_argument("--at-ms", type=int, default=None, help="state at this exchange time (default: end of input)")
    parser.add_argument("--shortfall-usd", type=float, default=None,
                        help="what-if: the takes of production and every mechanism under this shortfall")
    parser.add_argument("--gap-usd", type=float, default=None,
                        help="contract view: USD lost per ADL'd contract (default: a fraction of the mark)")
    parser.add_argument("--top", type=int, default=20, help="rows in the table (JSON lists every position)")
    parser.add_argument("--config", default=None, help="config file ([counterfactual] mechanisms)")
    parser.add_argument("--json", action="store_true", help="print the JSON document")


def _fmt(x, spec=",.2f") -> str:
    return "-" if x is None else format(x, spec)


def format_table(rep: dict, top: int) -> str:
    lines = [f"{rep['venue']} {rep['coin']} {rep['side']} queue at {rep['at_ms']}: "
             f"{rep['totals']['positions']} positions, capacity ${rep['totals']['capacity_usd']:,.2f} "
             f"(order: {rep['order']['name']})"]
    head = f"{'rank':>5} {'user':<44} {'score':>10} {'size':>12} {'notional':>14} {'uPnL':>12} {'lev':>7}"
    if "what_if" in rep:
        head += f" {'prod take':>12}"
    lines.append(head)
    for r in rep["accounts"][:top]:
        line = (f"{r['rank']:>5} {r['user']:<44} {_fmt(r['score'], '.4f'):>10} {r['size']:>12,.4f} "
                f"{_fmt(r['notional_usd']):>14} {_fmt(r['upnl_usd']):>12} {_fmt(r['leverage'], '.2f'):>7}")
        if "what_if" in rep:
            line += f" {r['production_take_usd']:>12,.2f}"
        lines.append(line)
    if "what_if" in rep:
        wi = rep["what_if"]
        lines.append(f"what-if: shortfall ${wi['shortfall_usd']:,.2f}, uncovered ${wi['uncovered_usd']:,.2f}, "
                     f"gap ${wi['gap_usd_per_contract']:,.4f}/contract ({wi['gap_source']})")
        lines.append(f"{'mechanism':<22} {'total':>14} {'max share':>10} {'touched':>8} {'top10':>7}")
        for name, m in wi["mechanisms"].items():
            lines.append(f"{name:<22} {m['total_usd']:>14,.2f} {m['max_share']:>10.4f} "
                         f"{m['accounts_touched']:>8} {m['top10_share']:>7.3f}")
    return "\n".join(lines)


def main(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        return exc.report()
    missing = [p for p in args.paths if not Path(p).is_file()]
    if missing:
        print(f"adlmon exposure: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    try:
        order = queue_order(args.venue)
    except ValueError as exc:
        print(f"adlmon exposure: --venue: {exc}", file=sys.stderr)
        return 2
    if args.shortfall_usd is not None and not args.shortfall_usd >= 0:
        print(f"adlmon exposure: --shortfall-usd {args.shortfall_usd}: must be >= 0", file=sys.stderr)
        return 2
    ledger, last_ms, inputs = ledger_at(args.paths, args.at_ms, venue=args.venue)
    view = ledger.holders(args.coin, SIDES[args.side])
    q = build_queue(view, order, args.side)
    factor = net_notional(view.users, ledger.positions, ledger.marks(), SIDES[args.side])
    rep = exposure_report(q, venue=args.venue, at_ms=args.at_ms if args.at_ms is not None else last_ms,
                          shortfall_usd=args.shortfall_usd, cfg=cfg.counterfactual,
                          gap_per_contract=args.gap_usd, factor_exposure=factor)
    bad = {p: i for p, i in inputs.items() if i.get("status") != "ok" or i.get("error_count")}
    if bad:
        rep["inputs"] = bad
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(rep, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        print(format_table(rep, args.top))
    if not len(q):
        print(f"adlmon exposure: no {args.side} {args.coin} position at that time", file=sys.stderr)
    return 1 if bad else 0
