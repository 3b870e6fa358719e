"""A simulated ADL cascade in dYdX v4's wire format: capture files plus ``truth.json`` (issue 10).

The cascade is ``adlmon.sim``'s model (accounts, price shock, liquidations,
backstop takeovers, ADL of the vault against the opposite side), run into a
temporary directory; its node fills are then rendered as what the dYdX indexer
would publish (venues-wire.md §1.2-§1.4):

* every model block is one dYdX block (its ``block_number`` the height); each
  trade (a pair of model fills sharing a ``tid``) is one public trade whose
  ``id`` encodes (height, tx 0, its index in the block), ``side`` the taker's:
  the ADL'd vault's side for ``DELEVERAGED``, the liquidated account's for
  ``LIQUIDATED`` (market liquidations and backstop takeovers), the first
  fill's for ``LIMIT``; ``price``/``size`` the model's strings;
* oracle prices: per block and traded market, one ``v4_markets``
  ``oraclePrices`` update at the block time, before the block's trades: the
  ADL fills' ``markPx`` in an ADL block, else the block's last trade price (the
  model's mark rule); the ``subscribed`` snapshot carries each market's first
  price at the snapshot's receive time;
* with ``final_settlement`` (default on), the last market is delisted after
  the cascade: a ``trading`` update sets ``FINAL_SETTLEMENT`` and one
  ``DELEVERAGED`` trade closes a position at the oracle price. It is not ADL.

Capture (``adlmon.io.capture`` lines, one connection ``sim#0``): ``open``, the
``connected`` frame, the ``v4_markets`` and per-market ``v4_trades`` snapshots,
then each block's frames, ``t`` = block time + ``latency_ms``.

``truth.json`` is computed here from the rendered trades and oracle path, never
by the parser or engine: waves by the gap rule over ADL trades, B = Σ|M(t_k) −
px_k|·sz_k, H(Δ) = Σ_fills (s·sz·(M(t_end+Δ) − px))+ with every fill its own
winner (what public data gives; the exact per-winner figure is
``production_haircut_exact_usd``, netting the model's real winners), deficit
unknown. ``model_needed_usd`` is the model's own B for the same wave (its
``markPx``), a cross-check of the rendering.

``node_blocks.json`` holds, per height with ADL, what a node's
``/cosmos/tx/v1beta1/txs/block/{h}`` would answer (venues-wire §1.7 A): tx 0's
``MsgProposedOperations`` with one ``match_perpetual_deleveraging`` per
(loser, market), its fills naming the model's winners ``<address>/0``; the
fake indexer serves it as a node for the optional block decode.
"""

from __future__ import annotations

import argparse
import bisect
import tempfile
from decimal import Decimal
from pathlib import Path

import orjson

from adlmon import sim as model
from adlmon.io.capture import CLOSE, OPEN, SUFFIX, WS, CaptureRecord, encode
from adlmon.venues.dydx.parse import VENUE, encode_trade_id, ms_iso

SRC = "sim#0"
ATOMIC_RESOLUTION = -10  # every simulated market's (sizes are multiples of 1e-10)
NODE_BLOCKS = "node_blocks.json"
_SIDE = {"B": "BUY", "A": "SELL"}


def ticker(coin: str) -> str:
    return f"{coin}-USD"


def _market(tk: str, pair: int, px: str, status: str = "ACTIVE") -> dict:
    """A PerpetualMarketResponseObject (venues-wire §1.4), the fields adlmon reads plus a few."""
    return {"clobPairId": str(pair), "ticker": tk, "status": status, "oraclePrice": px,
            "priceChange24H": "0", "volume24H": "0", "trades24H": 0, "nextFundingRate": "0",
            "initialMarginFraction": "0.05", "maintenanceMarginFraction": "0.03",
            "openInterest": "0", "atomicResolution": ATOMIC_RESOLUTION, "quantumConversionExponent": -9,
            "tickSize": "1", "stepSize": "0.0001", "stepBaseQuantums": 1000000,
            "subticksPerTick": 100000, "marketType": "CROSS", "baseOpenInterest": "0"}


class _Capture:
    def __init__(self, path: Path, latency_ms: int):
        self.fh = open(path, "wb")
        self.latency_ms = latency_ms
        self.message_id = 0

    def frame(self, t: int, obj: dict) -> None:
        obj = {"connection_id": "00000000-0000-4000-8000-000000000000",
               "message_id": self.message_id, **obj}
        self.message_id += 1
        self.fh.write(encode(CaptureRecord(t + self.latency_ms, VENUE, SRC, WS,
                                           orjson.dumps(obj).decode())))

    def mark(self, t: int, kind: str) -> None:
        self.fh.write(encode(CaptureRecord(t + self.latency_ms, VENUE, SRC, kind, "")))

    def close(self) -> None:
        self.fh.close()


def render(model_dir: Path, out: Path, *, latency_ms: int = 20, final_settlement: bool = True,
           gap_ms: int = model.GAP_MS, horizons_ms=model.HORIZONS_MS) -> dict:
    """The model's node fills -> a dYdX capture in ``out``; returns the truth."""
    blocks = [orjson.loads(line) for line in model.open_lines(next(model_dir.glob("node_fills_by_block*")))]
    coins = sorted({f["coin"] for b in blocks for _u, f in b["events"]})
    first_px: dict[str, str] = {}
    for b in blocks:
        for _u, f in b["events"]:
            first_px.setdefault(f["coin"], f["px"])
    tickers = [ticker(c) for c in coins]
    pair = {tk: i for i, tk in enumerate(tickers)}
    oracle_t: dict[str, list[int]] = {tk: [] for tk in tickers}
    oracle_p: dict[str, list[float]] = {tk: [] for tk in tickers}
    adl: list[tuple] = []  # (t, ticker, s, sz, px, model winner, id)
    counts = {"trades": 0, "adl": 0, "liquidations": 0, "limit": 0, "final_settlement": 0}

    path = out / f"{VENUE}-sim-000001{SUFFIX}"
    cap = _Capture(path, latency_ms)
    t0 = blocks[0]["events"][0][1]["time"] - 500
    cap.mark(t0, OPEN)
    cap.frame(t0, {"type": "connected"})
    cap.frame(t0, {"type": "subscribed", "channel": "v4_markets",
                   "contents": {"markets": {tk: _market(tk, pair[tk], first_px[c])
                                            for c, tk in zip(coins, tickers)}}})
    for tk in tickers:
        oracle_t[tk].append(t0 + latency_ms)  # the snapshot's price is at its receive time
        oracle_p[tk].append(float(first_px[tk[:-4]]))
        cap.frame(t0, {"type": "subscribed", "channel": "v4_trades", "id": tk,
                       "contents": {"trades": []}})

    def oracle(t: int, height: int, prices: dict[str, str]) -> None:
        contents = {tk: {"oraclePrice": px, "effectiveAt": ms_iso(t), "effectiveAtHeight": str(height),
                         "marketId": pair[tk]} for tk, px in prices.items()}
        for tk, px in prices.items():
            oracle_t[tk].append(t)
            oracle_p[tk].append(float(px))
        cap.frame(t, {"type": "channel_data", "channel": "v4_markets", "version": "1.0.0",
                      "contents": {"oraclePrices": contents}})

    node_blocks: dict[str, dict] = {}
    last_t = t0
    for b in blocks:
        events = b["events"]
        height = int(b["block_number"])
        t = events[0][1]["time"]
        last_t = t
        prices: dict[str, str] = {}
        by_market: dict[str, list[dict]] = {}
        matches: dict[tuple[str, str], dict] = {}  # (loser, market) -> match_perpetual_deleveraging
        for i in range(0, len(events), 2):
            (u1, f1), (u2, f2) = events[i], events[i + 1]
            tk = ticker(f1["coin"])
            tid = encode_trade_id(height, 0, i // 2)
            liq = f1.get("liquidation")
            if f1["dir"] == "Auto-Deleveraging":
                kind, side = "DELEVERAGED", _SIDE[f2["side"]]
                prices[tk] = liq["markPx"]
                s = 1.0 if f1["side"] == "A" else -1.0  # the winner sold: its long was closed
                adl.append((t, tk, s, float(f1["sz"]), float(f1["px"]), f"{u1}/0", tid))
                counts["adl"] += 1
                m = matches.setdefault((u2, tk), {
                    "liquidated": {"owner": u2, "number": 0}, "perpetual_id": pair[tk],
                    "fills": [], "is_final_settlement": False})
                m["fills"].append({"offsetting_subaccount_id": {"owner": u1, "number": 0},
                                   "fill_amount": str(int(Decimal(f1["sz"]).scaleb(-ATOMIC_RESOLUTION)))})
            else:
                if liq is not None and liq.get("liquidatedUser") == u1:
                    kind = "LIQUIDATED"
                    counts["liquidations"] += 1
                else:
                    kind = "LIMIT"
                    counts["limit"] += 1
                side = _SIDE[f1["side"]]
                prices[tk] = f1["px"]  # the last trade price of the block
            counts["trades"] += 1
            by_market.setdefault(tk, []).append({"id": tid, "size": f1["sz"], "price": f1["px"],
                                                 "side": side, "createdAt": ms_iso(t), "type": kind})
        if matches:
            node_blocks[str(height)] = _block_answer(matches.values())
        if prices:
            oracle(t, height, prices)
        for tk, trades in by_market.items():
            cap.frame(t, {"type": "channel_data", "channel": "v4_trades", "id": tk, "version": "2.1.0",
                          "contents": {"trades": trades}})

    if final_settlement:
        tk = tickers[-1]
        t = last_t + 2 * gap_ms + max(horizons_ms)
        height = int(blocks[-1]["block_number"]) + 1000
        cap.frame(t, {"type": "channel_data", "channel": "v4_markets", "version": "1.0.0",
                      "contents": {"trading": {tk: {"ticker": tk, "status": "FINAL_SETTLEMENT"}}}})
        px = model.num(oracle_p[tk][-1])
        t += 1000
        cap.frame(t, {"type": "channel_data", "channel": "v4_trades", "id": tk, "version": "2.1.0",
                      "contents": {"trades": [{"id": encode_trade_id(height, 0, 0), "size": "1.0",
                                               "price": px, "side": "BUY", "createdAt": ms_iso(t),
                                               "type": "DELEVERAGED"}]}})
        counts["final_settlement"] += 1
        counts["trades"] += 1
        last_t = t
    cap.mark(last_t, CLOSE)
    cap.close()
    (out / NODE_BLOCKS).write_bytes(orjson.dumps(node_blocks))
    return _truth(adl, oracle_t, oracle_p, gap_ms, tuple(horizons_ms), counts, path)


def _block_answer(matches) -> dict:
    """A node's ``/cosmos/tx/v1beta1/txs/block/{h}`` answer with tx 0 = MsgProposedOperations
    (venues-wire §1.7 A; the JSON shape is the Cosmos SDK's, numbers as proto-JSON strings)."""
    ops = [{"match": {"match_perpetual_deleveraging": m}} for m in matches]
    return {"txs": [{"body": {"messages": [{"@type": "/dydxprotocol.clob.MsgProposedOperations",
                                            "operations_queue": ops}]}}],
            "pagination": {"next_key": None, "total": "1"}}


def _mark_at(ts: list[int], ps: list[float], t: int) -> float:
    i = bisect.bisect_right(ts, t) - 1
    return ps[i] if i >= 0 else float("nan")


def _truth(adl, oracle_t, oracle_p, gap_ms, horizons, counts, path) -> dict:
    waves: list[list[tuple]] = []
    for r in adl:
        if waves and r[0] - waves[-1][-1][0] <= gap_ms:
            waves[-1].append(r)
        else:
            waves.append([r])
    out = []
    for wid, w in enumerate(waves, 1):
        t0, t1 = w[0][0], w[-1][0]
        needed = sum(abs(_mark_at(oracle_t[tk], oracle_p[tk], t) - px) * sz
                     for (t, tk, _s, sz, px, _u, _i) in w)
        own, exact = {}, {}
        for h in horizons:
            per_fill = [s * sz * (_mark_at(oracle_t[tk], oracle_p[tk], t1 + h) - px)
                        for (_t, tk, s, sz, px, _u, _i) in w]
            own[str(h)] = sum(max(0.0, x) for x in per_fill)
            per_user: dict[str, float] = {}
            for x, r in zip(per_fill, w):
                per_user[r[5]] = per_user.get(r[5], 0.0) + x
            exact[str(h)] = sum(max(0.0, x) for x in per_user.values())
        out.append({
            "wave_id": wid, "venue": VENUE, "t_start_ms": t0, "t_end_ms": t1, "adl_fills": len(w),
            "accounts": len(w), "losers": 0, "coins": sorted({r[1] for r in w}),
            "notional_usd": sum(r[3] * r[4] for r in w), "closed_pnl_usd": 0.0,
            "needed_usd": needed, "deficit_usd": None, "deficit_source": "unknown",
            "production_haircut_usd": own,
            "excess_haircut_usd": {k: v - needed for k, v in own.items()},
            "production_haircut_exact_usd": exact,
            "winners_exact": len({r[5] for r in w}),
            "trade_ids": [r[6] for r in w],
        })
    return {"venue": VENUE, "gap_ms": gap_ms, "horizons_ms": list(horizons), "waves": out,
            "totals": {**counts, "waves": len(out), "needed_usd": sum(w["needed_usd"] for w in out)},
            "files": {"capture": [path.name]}}


def simulate(out: str | Path, *, seed: int = 1, latency_ms: int = 20, final_settlement: bool = True,
             gap_ms: int = model.GAP_MS, horizons_ms=model.HORIZONS_MS, **params) -> dict:
    """Write a dYdX capture of a simulated cascade and ``truth.json`` into ``out``; return the truth.

    ``params`` go to :func:`adlmon.sim.simulate` (accounts, coins, shock, waves, ...).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="adlmon-dydx-model-") as tmp:
        res = model.simulate(tmp, seed=seed, gap_ms=gap_ms, horizons_ms=tuple(horizons_ms), **params)
        truth = render(Path(tmp), out, latency_ms=latency_ms, final_settlement=final_settlement,
                       gap_ms=gap_ms, horizons_ms=horizons_ms)
    for w, mw in zip(truth["waves"], res.truth["waves"]):
        w["model_needed_usd"] = mw["needed_usd"]
    truth["params"] = {"seed": seed, "latency_ms": latency_ms, "final_settlement": final_settlement,
                       **params}
    truth["model_waves"] = len(res.truth["waves"])
    (out / "truth.json").write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return truth


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--accounts", type=int, default=model.DEFAULTS["accounts"])
    parser.add_argument("--coins", type=int, default=model.DEFAULTS["coins"])
