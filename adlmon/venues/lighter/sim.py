"""A simulated cascade on Lighter: the shared cascade model, written as Lighter capture files.

:func:`simulate` runs ``adlmon.sim`` (the cross-margin exchange through a price
shock, its liquidations, backstop takeovers and ADL; its docstring is the
model) and converts what it produced to Lighter's wire format
(venues-wire.md §2), as a capture of the venue would hold it
(``adlmon.io.capture``), plus ``truth.json``.

Conversion (one Lighter trade per simulated trade, the two fills sharing a tid):

* accounts get Lighter account indexes: the liquidator vault is the LLP pool
  (:data:`~adlmon.venues.lighter.parse.LLP_MAINNET`; a second vault, when
  simulated, the pool just below it), every other account ``1000 + n`` in
  order of appearance;
* an ADL fill pair becomes a ``deleverage`` trade whose taker is the vault
  (the deleveraged account) and whose maker is the winner; a market or
  backstop liquidation a ``liquidation`` trade whose taker is the liquidated
  account; anything else a ``trade`` whose taker is the simulated taker.
  ``deleverage`` and ``liquidation`` entries go into ``liquidation_trades``
  (which array the venue uses for ``deleverage`` is unverified; the parser
  scans both), the rest into ``trades``;
* every trade carries both sides' ``*_position_size_before`` and
  ``*_entry_quote_before`` (= |size|·entry, from a ledger that replays the
  simulation with the engine's accounting) and fee rates in ppm;
* marks: one ``market_stats/all`` frame at the snapshot and after every
  block that is not an ADL block, each market at its last trade price (the
  simulator's mark), stamped with the block time. So an ADL fill's M(t_k),
  the last mark ≤ t_k, is the simulator's mark before the ADL block (its
  ``markPx``);
* REST answers as the collector records them: ``orderBooks``,
  ``systemConfig`` (``liquidity_pool_index``) and the pool's ``account`` at
  the snapshot and after every funding settlement (the pool's funding is not
  public on Lighter; its account is).

Capture records are stamped with venue time (``t`` = the block time): a
replay then sees the cascade's own clock.

``truth.json``: ``{"venue": "lighter", "params", "gap_ms", "horizons_ms",
"waves": [...], "pool", "markets", "files"}``. Each wave has ``t_start_ms``,
``t_end_ms``, ``adl_fills``, ``accounts`` (winners), ``losers``, ``coins``,
``notional_usd``, ``needed_usd`` B = Σ|M(t_k) − px_k|·sz_k and
``production_haircut_usd`` H(Δ) = Σ_winners (Σ s·sz·(M(t_end+Δ) − px))+ (keyed
by Δ as a string), from the converted trades and the mark series written,
with M the last mark ≤ t (issue 10 "Definitions"); ``deficit_usd`` and
``loser_deficits_usd`` are the simulator's own (the pool's hole before each
ADL block), and ``sim_needed_usd`` the simulator's B (from its ``markPx``).
"""

from __future__ import annotations

import bisect
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from adlmon import sim as cascade
from adlmon.engine.ledger import Ledger
from adlmon.events import Funding
from adlmon.io.capture import OPEN, REST, WS, CaptureWriter
from adlmon.venues.hyperliquid.fake import load_timeline
from adlmon.venues.hyperliquid.parse import fill_rows
from adlmon.venues.lighter.parse import LLP_MAINNET, VENUE

WS_SRC = "wss://sim.lighter/stream#0"
REST_SRC = "https://sim.lighter"
FIRST_ACCOUNT = 1000


@dataclass(frozen=True)
class LighterSimResult:
    out_dir: Path
    capture_paths: list[Path]
    truth_path: Path
    truth: dict
    trades: int
    adl_trades: int
    waves: list = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return list(self.capture_paths)


class _Clock:
    """The capture writer's wall clock: the time of the record being written."""

    def __init__(self, t_ms: int):
        self.t_ms = t_ms

    def __call__(self) -> float:
        return self.t_ms / 1000.0


def simulate(out_dir: str | Path, *, gap_ms: int = cascade.GAP_MS,
             horizons_ms: tuple[int, ...] = cascade.HORIZONS_MS, compress: bool = False,
             **params) -> LighterSimResult:
    """Write a simulated Lighter cascade into ``out_dir`` (module docstring).

    ``params`` are ``adlmon.sim.simulate``'s (seed, accounts, coins, shock, waves, ...);
    ``compress`` writes the capture as ``.lz4``. Same params, same bytes.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="adlmon-lighter-sim-") as tmp:
        res = cascade.simulate(tmp, gap_ms=gap_ms, horizons_ms=horizons_ms, **params)
        snaps, t0, blocks = load_timeline(tmp)
        conv = _Converter(res.truth, snaps, t0)
        clock = _Clock(t0)
        writer = CaptureWriter(out, VENUE, max_bytes=1 << 40, max_age_s=1e12, compress=compress,
                               wall=clock)
        conv.write(writer, clock, blocks)
        writer.close()
    captures = sorted(out.glob(f"{VENUE}-*.capture.jsonl*"))
    truth = conv.truth(params, gap_ms, tuple(horizons_ms), [p.name for p in captures])
    tp = out / "truth.json"
    tp.write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return LighterSimResult(out, captures, tp, truth, conv.n_trades, len(conv.adl), truth["waves"])


class _Converter:
    def __init__(self, sim_truth: dict, snaps: list, t0: int):
        self.sim_truth = sim_truth
        self.t0 = t0
        vaults = sim_truth["vaults"]
        self.index = {v: LLP_MAINNET - k for k, v in enumerate(vaults)}
        self.pools = [LLP_MAINNET - k for k in range(len(vaults))]
        self.ledger = Ledger(new_accounts_empty=True)
        for s in snaps:
            self._account(s.user)
            self.ledger.apply(s)
        coins = sorted({p.coin for s in snaps for p in s.positions})
        self.market = {c: i for i, c in enumerate(coins)}
        self.mark_t: dict[int, list[int]] = {i: [] for i in self.market.values()}
        self.mark_p: dict[int, list[float]] = {i: [] for i in self.market.values()}
        self.adl: list[tuple] = []  # (t, winner, market, s, sz, px, closed_pnl)
        self.n_trades = 0
        self.nonce = 0

    def _account(self, user: str) -> int:
        i = self.index.get(user)
        if i is None:
            i = self.index[user] = FIRST_ACCOUNT + len(self.index) - len(self.pools)
        return i

    def _market(self, coin: str) -> int:
        m = self.market.get(coin)
        if m is None:
            m = self.market[coin] = len(self.market)
            self.mark_t[m], self.mark_p[m] = [], []
        return m

    # ---- frames
    def _frame(self, obj: dict) -> str:
        return orjson.dumps(obj).decode()

    def _stats_frame(self, t: int, kind: str = "update/market_stats") -> str:
        stats = {}
        for coin, m in self.market.items():
            px = self.ledger.mark(coin)
            if px is None:
                continue
            self.mark_t[m].append(t)
            self.mark_p[m].append(px)
            s = cascade.num(px)
            stats[str(m)] = {"market_id": m, "symbol": coin, "index_price": s, "mark_price": s,
                             "last_trade_price": s, "daily_base_token_volume": 0.0}
        return self._frame({"type": kind, "channel": "market_stats:all", "timestamp": t,
                            "market_stats": stats})

    def _pool_account(self, pool: int, user: str) -> str:
        led = self.ledger
        positions = []
        for coin, (size, entry) in sorted(led.positions(user).items()):
            mark = led.mark(coin) or entry
            positions.append({"market_id": self._market(coin), "symbol": coin,
                              "sign": 1 if size > 0 else -1, "position": cascade.num(abs(size)),
                              "avg_entry_price": cascade.num(entry),
                              "position_value": cascade.num(abs(size) * mark),
                              "unrealized_pnl": cascade.num(size * (mark - entry))})
        return self._frame({"code": 200, "total": 1, "accounts": [{
            "code": 0, "account_type": 1, "index": pool, "l1_address": "0x0", "status": 1,
            "collateral": cascade.num(led.cash(user)),
            "total_asset_value": cascade.num(led.equity(user)), "positions": positions}]})

    def _write_pools(self, w: CaptureWriter, clock: _Clock, t: int) -> None:
        clock.t_ms = t
        for user, pool in self.index.items():
            if pool in self.pools:
                w.write(REST, REST_SRC, self._pool_account(pool, user), t_ms=t,
                        req=f"/api/v1/account?by=index&value={pool}")

    def _trade(self, t: int, bn: int, u1: str, f1: dict, u2: str, f2: dict) -> tuple[dict, bool]:
        """One simulated trade (two fills) -> (Lighter trade, goes to liquidation_trades)."""
        lq = f1.get("liquidation")
        if f1["dir"] == "Auto-Deleveraging":
            kind, taker, tf, maker, mf = "deleverage", u2, f2, u1, f1
        elif lq and lq.get("liquidatedUser") == u1:
            kind, taker, tf, maker, mf = "liquidation", u1, f1, u2, f2
        else:
            kind, taker, tf, maker, mf = "trade", u1, f1, u2, f2
        px, sz = float(f1["px"]), float(f1["sz"])
        ntl = px * sz
        seller, buyer = (maker, taker) if mf["side"] == "A" else (taker, maker)
        tr = {"trade_id": f1["tid"], "tx_hash": f1["hash"][2:], "type": kind,
              "market_id": self._market(f1["coin"]), "size": f1["sz"], "price": f1["px"],
              "usd_amount": cascade.num(ntl), "ask_id": 0, "bid_id": 0, "ask_client_id": 0,
              "bid_client_id": 0, "ask_account_id": self._account(seller),
              "bid_account_id": self._account(buyer), "is_maker_ask": mf["side"] == "A",
              "block_height": bn, "timestamp": t}
        for role, user, f in (("taker", taker, tf), ("maker", maker, mf)):
            size, entry = self.ledger.position(user, f["coin"])
            fee = float(f["fee"])
            tr[f"{role}_fee"] = round(fee / ntl * 1e6) if ntl > 0 else 0
            tr[f"{role}_position_size_before"] = f["startPosition"]
            tr[f"{role}_entry_quote_before"] = cascade.num(abs(size) * entry)
        if kind == "deleverage":
            s = 1 if mf["side"] == "A" else -1  # the winner sold: its long was closed
            self.adl.append((t, self._account(maker), tr["market_id"], s, sz, px,
                             float(mf["closedPnl"])))
        return tr, kind != "trade"

    def write(self, w: CaptureWriter, clock: _Clock, blocks: list) -> None:
        t0 = self.t0
        w.write(OPEN, WS_SRC, "", t_ms=t0)
        books = [{"symbol": c, "market_id": m, "status": "active"} for c, m in self.market.items()]
        w.write(REST, REST_SRC, self._frame({"code": 200, "order_books": books}), t_ms=t0,
                req="/api/v1/orderBooks")
        w.write(REST, REST_SRC, self._frame({"code": 200, "liquidity_pool_index": LLP_MAINNET}),
                t_ms=t0, req="/api/v1/systemConfig")
        self._write_pools(w, clock, t0)
        w.write(WS, WS_SRC, self._frame({"type": "connected", "session_id": "sim"}), t_ms=t0)
        w.write(WS, WS_SRC, self._stats_frame(t0, "subscribed/market_stats"), t_ms=t0)
        for m in self.market.values():
            w.write(WS, WS_SRC, self._frame({"type": "subscribed/trade", "channel": f"trade:{m}",
                                             "nonce": 0, "trades": [], "liquidation_trades": []}),
                    t_ms=t0)
        for block in blocks:
            t = block.time_ms
            clock.t_ms = t
            bn = 25_000_000 + (t - t0) // 10
            by_market: dict[int, tuple[list, list]] = {}
            fills = block.fills
            adl_block = False
            for k in range(0, len(fills), 2):
                (u1, f1), (u2, f2) = fills[k], fills[k + 1]
                tr, forced = self._trade(t, bn, u1, f1, u2, f2)
                adl_block |= tr["type"] == "deleverage"
                by_market.setdefault(tr["market_id"], ([], []))[1 if forced else 0].append(tr)
                self.ledger.apply_fill_rows(fill_rows([fills[k], fills[k + 1]]))
                self.n_trades += 1
            for m, (regular, forced) in sorted(by_market.items()):
                self.nonce += 1
                w.write(WS, WS_SRC, self._frame({"type": "update/trade", "channel": f"trade:{m}",
                                                 "nonce": self.nonce, "trades": regular,
                                                 "liquidation_trades": forced}), t_ms=t)
            for e in block.misc:
                self.ledger.apply(e)
            if by_market and not adl_block:
                w.write(WS, WS_SRC, self._stats_frame(t), t_ms=t)
            if any(isinstance(e, Funding) for e in block.misc):
                self._write_pools(w, clock, t)
        self.end_ms = blocks[-1].time_ms if blocks else t0

    # ---- truth
    def _mark(self, m: int, t: int) -> float:
        i = bisect.bisect_right(self.mark_t[m], t) - 1
        return self.mark_p[m][i] if i >= 0 else float("nan")

    def truth(self, params: dict, gap_ms: int, horizons: tuple[int, ...], files: list[str]) -> dict:
        waves: list[list[tuple]] = []
        for r in self.adl:
            if waves and r[0] - waves[-1][-1][0] <= gap_ms:
                waves[-1].append(r)
            else:
                waves.append([r])
        names = {m: c for c, m in self.market.items()}
        sim_waves = {(w["t_start_ms"], w["t_end_ms"]): w for w in self.sim_truth["waves"]}
        out = []
        for wid, w in enumerate(waves, 1):
            t_start, t_end = w[0][0], w[-1][0]
            needed = sum(abs(self._mark(m, t) - px) * sz for t, _u, m, _s, sz, px, _c in w)
            haircut = {}
            for h in horizons:
                per: dict[int, float] = {}
                for _t, u, m, s, sz, px, _c in w:
                    per[u] = per.get(u, 0.0) + s * sz * (self._mark(m, t_end + h) - px)
                haircut[str(h)] = sum(max(0.0, x) for x in per.values())
            sw = sim_waves.get((t_start, t_end), {})
            losers = {self.index[a]: d for a, d in (sw.get("loser_deficits_usd") or {}).items()}
            out.append({
                "wave_id": wid, "venue": VENUE, "t_start_ms": t_start, "t_end_ms": t_end,
                "adl_fills": len(w), "accounts": len({r[1] for r in w}), "losers": len(losers),
                "coins": sorted({names[r[2]] for r in w}),
                "notional_usd": sum(r[5] * r[4] for r in w),
                "closed_pnl_usd": sum(r[6] for r in w),
                "needed_usd": needed, "production_haircut_usd": haircut,
                "deficit_usd": sw.get("deficit_usd"),
                "loser_deficits_usd": {str(k): v for k, v in losers.items()},
                "sim_needed_usd": sw.get("needed_usd"),
            })
        return {"venue": VENUE, "params": params, "gap_ms": gap_ms, "horizons_ms": list(horizons),
                "waves": out, "pool": LLP_MAINNET, "markets": names and {str(m): c for m, c in names.items()},
                "files": files, "totals": {"trades": self.n_trades, "adl_fills": len(self.adl),
                                           "waves": len(out)}}
