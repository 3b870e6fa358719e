"""Synthetic ADL cascades in Hyperliquid's archive formats (issue 2 item 7).

``adlmon simulate --out DIR`` (or :func:`simulate`) runs a small cross-margin
perp exchange through a price shock and writes what a Hyperliquid node would
have archived, plus ``truth.json``: every ADL wave's true deficit, needed budget
and production haircut, taken from the simulator's own state (never re-parsed
from its output), so a replay of the files is an independent check of the
engine (CONTRACT "Engine accounting", "Wave definitions").

The model (paper.md §1.1, venues.md §1.4):

* accounts: Pareto account values and leverage, one or two coins each, more
  longs than shorts; one market maker (the counterparty of all flow) and the
  HLP Liquidator vault (optionally also Liquidator 2), all in the snapshot;
* prices: per coin, a shock path of ``waves`` drops (together a fractional
  drop ``shock``), each followed by a quiet rebound, plus noise and the decaying
  impact of market liquidations; background trades print at the fundamental
  ± half spread, so the mark (last fill price, CONTRACT mark rule) follows it;
* liquidation (cross): equity < maintenance = Σ|size|·mark/(2·max_leverage):
  all positions sold to the market maker with linear impact
  p_exec = mark·(1 ∓ k/2), k = notional/depth (method "market");
  equity < 2/3 maintenance: the vault takes every position at the mark
  (method "backstop"); the liquidated user keeps whatever margin is left
  (the archive has no public record of a margin transfer);
* ADL: when a vault's equity e < 0, each of its positions is closed against
  the opposite side ranked by Hyperliquid's index (venues.md §1.4)
  ``(mark/entry)·(notional/account_value)`` for longs and, our documented
  guess for shorts, ``(entry/mark)·(notional/account_value)``; accounts with
  equity ≤ 0 rank last; whole positions are closed in rank order, the last
  one partly, until the vault's size is matched, so the vault ends each ADL
  step flat. The transfer price is the vault's bankruptcy price capped by a
  per-step band around the mark: px = mark + sign(q)·min((−e)·w/|q|,
  adl_band·mark) (w = the coin's share of the vault's notional), rounded one
  tick away from the mark, so px ≠ markPx. Hyperliquid closes ADL'd
  positions "at the previous mark price" (venues.md §1.4), near the mark,
  not at a price that makes the vault whole; the band (default 5 bps) is our
  stand-in for that distance, not a documented venue number. One ADL step
  thus transfers at most ≈ adl_band of the notional it closes; the rest of
  the vault's hole stays as negative equity (cash) across blocks and waves,
  partly covered by the ADL steps of later takeovers. So a wave's needed
  budget B (the transfers) is usually a part of the vault's deficit D (its
  whole hole), θ^needed = B/D < 1, as on 10 Oct 2025 (paper §4.5: D ≈ $10.9M
  in most waves, B $0.1–5.6M). ``adl_band=0`` gives the uncapped model: the
  vault ends every ADL step with equity ≥ 0 and, since a wave's needed adds
  each block's hole while its deficit takes the largest, θ^needed = 1. All
  ADL fills of one vault and step share one block and one timestamp;
* funding (two settlements: longs pay shorts at a per-coin rate) and a few
  deposits, in ``misc_events``;
* fees: taker 4.5 bps (also the market-liquidated user), maker −0.2 bps
  (rebate), backstop takeovers and ADL fills 0 (``"0.0"``, as the real ADL fill);
* time: one block of background trades, liquidations and takeovers every
  ``block_ms`` (each coin trades in the first block, so marks exist from the
  start); funding at +block_ms/5; ADL blocks at +block_ms/2 (+10 ms for
  Liquidator 2), so an ADL block never shares its timestamp with other fills
  and "the loser's equity before the block" is unambiguous. Drops come in
  gaps every 500 ms (gaps push accounts past maintenance to the backstop);
  each drop is followed by ``quiet_ms`` (default 9 s) of rebound, so waves are
  more than 5 s apart, and the first drop (4 s) gives a multi-second wave.

Accounting is the contract's exactly: entry averaging on increase, realized
PnL on the closed part, flips reopen at px, cash += closedPnl − fee, funding
and deposits add to cash, equity = cash + Σ size·(mark − entry) with mark the
last fill price of the coin. Every number written is the shortest decimal
string that parses back to the simulator's own float, so a replay sees exactly
the simulator's numbers.

Files written in ``out_dir`` (``.lz4`` = LZ4 frame, when ``lz4=True``):

``account_value_snapshot_<block>_<ms>.json``
    ``[{"user", "account_value", "total_long_notional", "total_short_notional"}]``,
    numbers as JSON numbers (venues.md §6.2), every account (users, market
    maker, vaults).
``perp_positions_by_market_<block>_<ms>.json``
    ``[{"market_name": "hyperliquid:COIN", "position_count", "positions":
    [{"user", "size" (signed), "notional_size" (= |size|·mark, > 0),
    "funding_pnl" (0.0), "entry_price", "is_cross" (true), "leverage" (number),
    "liquidation_price" (number or null), "account_value"}]}]``, numbers as
    JSON numbers. The snapshot mark is notional_size/|size|.
``node_fills_by_block.jsonl``
    one line per block: ``{"local_time", "block_time" (ISO, ns, UTC, no zone),
    "block_number", "events": [[user, WsFill], ...]}``; WsFill keys in the
    real order ``coin, px, sz, side ("B"|"A"), time (ms int), startPosition,
    dir, closedPnl, hash, oid (int), crossed, fee, tid (int), [liquidation
    {liquidatedUser, markPx, method}], feeToken``; px, sz, startPosition,
    closedPnl, fee and markPx are strings. Both sides of every trade, taker (or
    ADL winner, or liquidated user) first, sharing hash and tid. ``dir``:
    Open Long/Short, Close Long/Short, Long > Short, Short > Long, Liquidated
    Cross Long/Short, Auto-Deleveraging. Liquidation counterparties (market
    maker, vault taking over) carry the liquidation object too.
``misc_events.jsonl``
    ``misc_format="event"`` (default): one ``{"time" (ISO ns, as block_time),
    "hash", "inner"}`` per line; ``misc_format="block"``: as the node writes
    with ``--batch-by-block``, ``{"local_time", "block_time", "block_number",
    "events": [{"time", "hash", "inner"}]}``. ``inner`` is one of
    ``{"Funding": {"deltas": [{"user", "coin", "funding_amount" (string,
    > 0 = received)}]}}``,
    ``{"LedgerUpdate": {"users": [user], "delta": {"type": "deposit",
    "usdc": "1000.0"}}}`` and
    ``{"LedgerUpdate": {"users": [user], "delta": {"type": "liquidation",
    "liquidatedNtlPos", "accountValue" (pre-liquidation equity),
    "leverageType": "Cross", "liquidatedPositions": [{"coin", "szi"}]}}}``
    (numbers as strings).
``truth.json``
    ``{"venue", "params", "gap_ms", "horizons_ms", "waves": [...],
    "accounts": {user: final equity}, "marks": {coin: final mark},
    "totals": {...}, "files": {...}}``; each wave has the report fields of
    CONTRACT "Wave definitions" (``production_haircut_usd`` keyed by horizon
    ms as a string) plus ``loser_deficits_usd``.

A fake venue can stream the files with :func:`iter_archive` (time order):
each ``[user, WsFill]`` of a block is a ``userFills`` fill of ``user`` as is;
a ``Funding`` delta is a ``userFundings`` entry with ``usdc`` =
``funding_amount``; a ledger ``liquidation`` is a ``WsLiquidation``
(``liquidated_account_value`` = ``accountValue``).
"""

from __future__ import annotations

import argparse
import bisect
import calendar
import math
import sys
import time as _time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import orjson

VENUE = "hyperliquid"
HLP_LIQUIDATOR = "0x2e3d94f0562703b25c83308a05046ddaf9a8dd14"
HLP_LIQUIDATOR_2 = "0xb0a55f13d22f66e6d495ac98113841b2326e9540"
GAP_MS = 5000
HORIZONS_MS = (0, 500, 1000, 2000, 5000)

# (coin, price at the snapshot, max leverage): roughly 10 Oct 2025, before the drop.
COINS = (
    ("BTC", 121500.0, 40), ("ETH", 4350.0, 25), ("SOL", 221.5, 20), ("HYPE", 42.35, 10),
    ("XRP", 2.815, 20), ("DOGE", 0.25013, 10), ("AVAX", 28.47, 10), ("ENA", 0.5931, 10),
    ("SUI", 3.512, 10), ("LINK", 22.43, 10), ("XPL", 1.0237, 5), ("PUMP", 0.006032, 5),
)

TAKER_FEE = 0.00045
MAKER_FEE = -0.00002  # rebate
SPREAD = 0.0002
JUMP_MS = 500


@dataclass(frozen=True)
class SimResult:
    """What :func:`simulate` wrote. ``paths`` lists the replay inputs
    (snapshot files first, then fills and misc events)."""

    out_dir: Path
    account_snapshot_path: Path
    positions_snapshot_path: Path
    fills_path: Path
    misc_path: Path
    truth_path: Path
    truth: dict
    fills: int
    adl_fills: int
    blocks: int
    waves: list = field(default_factory=list)

    @property
    def paths(self) -> list[Path]:
        return [self.account_snapshot_path, self.positions_snapshot_path,
                self.fills_path, self.misc_path]


# ---------------------------------------------------------------------------
# numbers and times as the archive writes them


def num(x: float) -> str:
    """Shortest decimal string that parses back to ``x`` (never exponent form,
    never ``-0.0``), like the venue's ``"22.075"``."""
    x = float(x) + 0.0
    s = repr(x)
    if "e" in s:
        s = np.format_float_positional(x, unique=True, trim="0")
    return s


def iso_ns(ns: int) -> str:
    """``2025-10-10T21:16:04.831874687``: UTC, nanoseconds, no zone (node files)."""
    sec, rem = divmod(ns, 1_000_000_000)
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(sec)) + f".{rem:09d}"


def open_lines(path: str | Path):
    """Iterate the byte lines of a plain or ``.lz4`` (LZ4 frame) file (the one reader, adlmon.io)."""
    from adlmon.io.archive import read_lines

    return read_lines(path)


def iter_archive(res: "SimResult"):
    """The written fills and misc events merged in time order, as a fake venue
    would stream them: ``(time_ms, "fills", block_line)`` and
    ``(time_ms, "misc", misc_line)`` (decoded JSON; for ``misc_format="block"``
    one misc line per block). At equal times fills come first (the order does
    not matter: misc events at a fill block's time carry no cash or only
    deposits)."""
    import heapq

    def fills():
        for line in open_lines(res.fills_path):
            b = orjson.loads(line)
            yield decoded_line_time_ms(b), 0, "fills", b

    def misc():
        for line in open_lines(res.misc_path):
            m = orjson.loads(line)
            yield decoded_line_time_ms(m), 1, "misc", m

    for t, _, kind, obj in heapq.merge(fills(), misc(), key=lambda x: (x[0], x[1])):
        yield t, kind, obj


def line_time_ms(line: bytes) -> int:
    """The time (ms) of one line the simulator wrote (:func:`decoded_line_time_ms`)."""
    return decoded_line_time_ms(orjson.loads(line))


def decoded_line_time_ms(obj: dict) -> int:
    """The time (ms) of one decoded line the simulator wrote: a fills block's first
    fill, a misc block's first event or a misc event's ISO time."""
    events = obj.get("events")
    if events and isinstance(events[0], list):
        return events[0][1]["time"]
    return _iso_to_ms(events[0]["time"] if events else obj["time"])


def _iso_to_ms(text: str) -> int:
    head, _, frac = text.partition(".")
    sec = calendar.timegm(_time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
    return sec * 1000 + int((frac + "000")[:3])


class _Writer:
    def __init__(self, path: Path, compress: bool):
        self.path = path
        if compress:
            import lz4.frame

            self._fh = lz4.frame.open(path, "wb", compression_level=0)
        else:
            self._fh = open(path, "wb", buffering=1 << 20)

    def line(self, obj) -> None:
        self._fh.write(orjson.dumps(obj) + b"\n")

    def close(self) -> None:
        self._fh.close()


# ---------------------------------------------------------------------------
# the exchange


@dataclass
class _Coin:
    name: str
    p0: float
    max_lev: int
    beta: float
    tick_exp: int  # tick = 10**-tick_exp
    sz_dec: int
    depth_usd: float = 0.0
    impact: float = 0.0  # log-price offset from liquidation impact, decays
    noise: float = 0.0

    @property
    def mmr(self) -> float:
        return 1.0 / (2.0 * self.max_lev)

    def px(self, ticks: int) -> float:
        # a division by an exact power of ten is correctly rounded: repr is clean
        e = self.tick_exp
        return ticks / 10.0 ** e if e >= 0 else float(ticks * 10 ** (-e))

    def ticks(self, price: float, mode: str) -> int:
        e = self.tick_exp
        scaled = price * 10.0 ** e if e >= 0 else price / 10.0 ** (-e)
        t = math.floor(scaled + 1e-9) if mode == "down" else (
            math.ceil(scaled - 1e-9) if mode == "up" else round(scaled))
        return max(1, int(t))

    def round_px(self, price: float, mode: str = "near") -> float:
        return self.px(self.ticks(price, mode))

    @property
    def lot_div(self) -> float:
        return 10.0 ** self.sz_dec


def _make_coins(k: int, rng: np.random.Generator) -> list[_Coin]:
    coins = []
    for i in range(k):
        if i < len(COINS):
            name, p0, lev = COINS[i]
        else:
            name = f"SIM{i}"
            p0 = float(f"{10 ** rng.uniform(-2, 3):.5g}")
            lev = int(rng.choice([3, 5, 10]))
        mag = math.floor(math.log10(p0))
        tick_exp = 4 - mag  # five significant figures, as the venue
        p0 = (round(p0 * 10.0 ** tick_exp) / 10.0 ** tick_exp) if tick_exp >= 0 else p0
        sz_dec = int(min(5, max(0, mag + 1)))
        beta = 0.8 if i == 0 else float(rng.uniform(0.75, 1.3))
        coins.append(_Coin(name, p0, lev, beta, tick_exp, sz_dec))
    return coins


def _address(rng: np.random.Generator, n: int) -> list[str]:
    raw = rng.bytes(20 * n).hex()
    return ["0x" + raw[40 * i:40 * i + 40] for i in range(n)]


def _dir_for(start_lots: int, d_lots: int) -> str:
    if start_lots == 0 or (start_lots > 0) == (d_lots > 0):
        return "Open Long" if d_lots > 0 else "Open Short"
    if abs(d_lots) <= abs(start_lots):
        return "Close Long" if start_lots > 0 else "Close Short"
    return "Long > Short" if start_lots > 0 else "Short > Long"


class _Exchange:
    """Accounts, positions and the event writers; one instance per simulation."""

    def __init__(self, p: dict):
        self.p = p
        self.rng = np.random.Generator(np.random.PCG64(p["seed"]))
        rng = self.rng
        k = p["coins"]
        self.coins = _make_coins(k, rng)
        n = p["accounts"]
        self.n_users = n
        self.mm = n
        self.vaults = [n + 1 + v for v in range(p["vaults"])]
        self.n_acc = n + 1 + p["vaults"]
        users = _address(rng, n + 1)
        self.addr = users + [HLP_LIQUIDATOR, HLP_LIQUIDATOR_2][: p["vaults"]]
        if len(dict.fromkeys(self.addr)) != len(self.addr):
            raise RuntimeError("address collision; use another seed")
        a = self.n_acc
        self.lots = np.zeros((a, k), np.int64)
        self.size = np.zeros((a, k))
        self.entry = np.zeros((a, k))
        self.cash = np.zeros(a)
        # Σ_c size·entry per account, kept up to date by apply(): equity of all
        # accounts is then cash + size @ mark − cost (one matrix-vector product)
        self.cost = np.zeros(a)
        self.lot_div = [c.lot_div for c in self.coins]
        self.mark = [c.p0 for c in self.coins]
        self.mmr = np.array([c.mmr for c in self.coins])
        # truth records
        self.price_t: list[list[int]] = [[] for _ in range(k)]
        self.price_p: list[list[float]] = [[] for _ in range(k)]
        self.adl_rows: list[tuple] = []  # (time, winner, coin, side, sz, px, mark_px, closed, loser)
        self.adl_blocks: list[tuple] = []  # (time, loser, equity before the block)
        self.fees = 0.0
        self.funding = 0.0
        self.deposits = 0.0
        self.n_fills = 0
        self.n_liq_fills = 0
        self.n_blocks = 0
        self.oid = 194_018_000_000
        self.tid = 771_334_000_000_000
        self._hex = ""
        self._hex_pos = 0

    # -- identifiers ---------------------------------------------------------
    def hash(self) -> str:
        if self._hex_pos + 64 > len(self._hex):
            self._hex = self.rng.bytes(32 * 4096).hex()
            self._hex_pos = 0
        h = self._hex[self._hex_pos:self._hex_pos + 64]
        self._hex_pos += 64
        return "0x" + h

    # -- accounting (CONTRACT "Engine accounting") ------------------------------
    def apply(self, u: int, c: int, d_lots: int, px: float, fee: float) -> tuple[int, float]:
        """Apply a signed fill of ``d_lots`` at ``px`` to (u, c); return
        (start lots, closedPnl)."""
        div = self.lot_div[c]
        s_l = int(self.lots[u, c])
        new_l = s_l + d_lots
        if s_l == 0:
            entry, closed = px, 0.0
        elif (s_l > 0) == (d_lots > 0):
            s = abs(s_l) / div
            d = abs(d_lots) / div
            entry = (s * float(self.entry[u, c]) + d * px) / (s + d)
            closed = 0.0
        else:
            e = float(self.entry[u, c])
            closed = min(abs(d_lots), abs(s_l)) / div * (px - e) * (1.0 if s_l > 0 else -1.0)
            entry = px if abs(d_lots) > abs(s_l) else e
        new_s = new_l / div
        self.cost[u] += new_s * entry - (s_l / div) * float(self.entry[u, c])
        self.lots[u, c] = new_l
        self.size[u, c] = new_s
        self.entry[u, c] = entry
        self.cash[u] += closed - fee
        return s_l, closed

    def equity(self, u: int) -> float:
        eq = float(self.cash[u])
        for c in self.lots[u].nonzero()[0]:
            eq += float(self.size[u, c]) * (self.mark[c] - float(self.entry[u, c]))
        return eq

    def maintenance(self, u: int) -> float:
        return sum(abs(float(self.size[u, c])) * self.mark[c] * self.coins[c].mmr
                   for c in self.lots[u].nonzero()[0])

    def trade(self, block: list, t: int, c: int, first: int, second: int, d_lots: int,
              px: float, fees: tuple[float, float], dirs: tuple[str | None, str | None] = (None, None),
              liq: dict | None = None, crossed: tuple[bool, bool] = (True, False)) -> float:
        """One trade: ``first`` gets signed ``d_lots``, ``second`` the opposite.
        Appends both fills to ``block``; returns the first side's closedPnl."""
        coin = self.coins[c]
        sz_s = num(abs(d_lots) / coin.lot_div)
        px_s = num(px)
        h = self.hash()
        self.tid += 1
        out = 0.0
        for k, (u, dl) in enumerate(((first, d_lots), (second, -d_lots))):
            fee = fees[k]
            s_l, closed = self.apply(u, c, dl, px, fee)
            if k == 0:
                out = closed
            self.fees += fee
            self.oid += 1
            f = {
                "coin": coin.name, "px": px_s, "sz": sz_s, "side": "B" if dl > 0 else "A",
                "time": t, "startPosition": num(s_l / coin.lot_div),
                "dir": dirs[k] or _dir_for(s_l, dl), "closedPnl": num(closed), "hash": h,
                "oid": self.oid, "crossed": crossed[k], "fee": num(fee), "tid": self.tid,
            }
            if liq is not None:
                f["liquidation"] = liq
            f["feeToken"] = "USDC"
            block.append([self.addr[u], f])
        self.mark[c] = px
        self.n_fills += 2
        return out


# ---------------------------------------------------------------------------
# the scenario


def _schedule(p: dict) -> tuple[list[tuple[int, int, float]], int]:
    """Drop phases as (start_ms, end_ms, drop fraction) after t0, and the total
    length in ms. Each drop is followed by ``quiet_ms`` of rebound, so waves are
    separated by more than the 5 s gap."""
    n = p["waves"]
    w = np.array([0.75 ** i for i in range(n)])
    w /= w.sum()
    fracs = [1.0 - (1.0 - p["shock"]) ** wi for wi in w]
    drops = [p["drop_ms"] * (1.0 if i == 0 else 0.6) for i in range(n)]
    warm, quiet = p["warmup_ms"], p["quiet_ms"]
    total = warm + sum(drops) + n * quiet
    if p["blocks"]:
        scale = p["blocks"] * p["block_ms"] / total
        warm, quiet, drops = warm * scale, quiet * scale, [d * scale for d in drops]
        total = p["blocks"] * p["block_ms"]
        if quiet < 6000:
            raise ValueError(f"blocks={p['blocks']} leaves {quiet:.0f} ms of quiet between waves; "
                             "need >= 6000 ms (raise --blocks or --block-ms)")
    phases, t = [], warm
    for d, f in zip(drops, fracs):
        phases.append((int(t), int(t + d), f))
        t += d + quiet
    return phases, int(total)


def _shock_log(phases, t_rel: float) -> tuple[float, bool]:
    """log multiplier of the common shock path at t_rel, and whether a drop is on."""
    lg, dropping = 0.0, False
    for i, (a, b, f) in enumerate(phases):
        if t_rel >= b:
            lg += math.log(1.0 - f)
            nxt = phases[i + 1][0] if i + 1 < len(phases) else None
            # quiet rebound: a fifth of the drop back, linearly until the next drop
            span = (nxt - b) if nxt else 10_000
            lg += -0.2 * math.log(1.0 - f) * min(1.0, (t_rel - b) / span)
        elif t_rel > a:
            # the fall comes in gaps every JUMP_MS: gaps are what push accounts
            # past maintenance straight to the backstop (venues.md §1.4)
            jumps = max(2, (b - a) // JUMP_MS)
            prog = math.ceil((t_rel - a) / (b - a) * jumps - 1e-9) / jumps
            lg += math.log(1.0 - f * prog)
            dropping = True
    return lg, dropping


def _initial_book(ex: _Exchange) -> None:
    """Snapshot state: Pareto account values and leverage, the market maker on
    the other side of everything, the vaults with capital only."""
    rng, p = ex.rng, ex.p
    n, k = ex.n_users, len(ex.coins)
    av = np.round(np.minimum(p["min_account_usd"] * (1.0 + rng.pareto(1.3, n)), 5e7), 2)
    lev = 1.0 + 1.5 * rng.pareto(1.2, n)
    n_pos = np.where(rng.random(n) < 0.3, 2, 1)
    wc = 1.0 / np.arange(1, k + 1)
    wc /= wc.sum()
    first = rng.choice(k, size=n, p=wc)
    second = (first + 1 + rng.integers(0, max(1, k - 1), n)) % k
    long = rng.random((n, 2)) < p["long_share"]
    jitter = rng.normal(0.0, 0.06, (n, 2))
    for j, coin_idx in enumerate((first, second)):
        has = (n_pos > j) & (k > j)
        for c in range(k):
            rows = np.flatnonzero(has & (coin_idx == c))
            if rows.size == 0:
                continue
            coin = ex.coins[c]
            lv = np.minimum(lev[rows], 0.8 * coin.max_lev)
            notional = lv * av[rows] / n_pos[rows]
            lots = np.maximum(1, np.round(notional / coin.p0 * coin.lot_div)).astype(np.int64)
            sign = np.where(long[rows, j], 1, -1)
            ex.lots[rows, c] = sign * lots
            ex.size[rows, c] = ex.lots[rows, c] / coin.lot_div
            e = coin.p0 * np.exp(jitter[rows, j])
            scale = 10.0 ** coin.tick_exp
            ex.entry[rows, c] = (np.round(e * scale) / scale) if coin.tick_exp >= 0 else \
                np.round(e / 10.0 ** -coin.tick_exp) * 10.0 ** -coin.tick_exp
    # market maker: the other side of every position, entered at the snapshot mark
    ex.lots[ex.mm] = -ex.lots[:n].sum(axis=0)
    for c, coin in enumerate(ex.coins):
        ex.size[ex.mm, c] = ex.lots[ex.mm, c] / coin.lot_div
        ex.entry[ex.mm, c] = coin.p0
    gross = float((np.abs(ex.size[:n]) * np.array([c.p0 for c in ex.coins])).sum())
    for c, coin in enumerate(ex.coins):
        oi = float(np.abs(ex.size[:n, c]).sum()) * coin.p0
        coin.depth_usd = max(oi * p["depth"], 1e5)
    ex.cost[:] = (ex.size * ex.entry).sum(axis=1)
    ex.av0 = np.zeros(ex.n_acc)
    ex.av0[:n] = av
    ex.av0[ex.mm] = float(round(5.0 * gross + 1e6))
    for v in ex.vaults:
        ex.av0[v] = float(round(p["vault_capital"] * gross, 2))


def _write_snapshot(ex: _Exchange, out: Path, block: int, t0: int) -> tuple[Path, Path]:
    """The two snapshot files; sets each account's cash exactly as the engine
    bootstraps it (CONTRACT: cash = account_value − Σ size·(snapshot_mark − entry))."""
    k = len(ex.coins)
    marks = [c.p0 for c in ex.coins]
    notional = np.abs(ex.size) * np.array(marks)
    longs = np.where(ex.size > 0, notional, 0.0).sum(axis=1)
    shorts = np.where(ex.size < 0, notional, 0.0).sum(axis=1)
    accounts = [
        {"user": ex.addr[u], "account_value": float(ex.av0[u]),
         "total_long_notional": float(longs[u]), "total_short_notional": float(shorts[u])}
        for u in range(ex.n_acc)
    ]
    upnl = np.zeros(ex.n_acc)
    markets = []
    for c in range(k):
        coin = ex.coins[c]
        rows = np.flatnonzero(ex.lots[:, c])
        positions = []
        for u in rows.tolist():
            size = float(ex.size[u, c])
            ntl = float(notional[u, c])
            entry = float(ex.entry[u, c])
            av = float(ex.av0[u])
            gross = float(notional[u].sum())
            lev = max(1, min(coin.max_lev, round(gross / av))) if av > 0 else coin.max_lev
            liq = (coin.p0 - (av - gross * coin.mmr) / size) if size else None
            positions.append({
                "user": ex.addr[u], "size": size, "notional_size": ntl, "funding_pnl": 0.0,
                "entry_price": entry, "is_cross": True, "leverage": lev,
                "liquidation_price": liq if liq is not None and liq > 0 else None,
                "account_value": av,
            })
            snap_mark = ntl / abs(size)
            upnl[u] += size * (snap_mark - entry)
        markets.append({"market_name": f"hyperliquid:{coin.name}", "position_count": len(positions),
                        "positions": positions})
    ex.cash[:] = ex.av0 - upnl  # Σ in file (coin) order, then one subtraction, as the ledger
    pa = out / f"account_value_snapshot_{block}_{t0}.json"
    pp = out / f"perp_positions_by_market_{block}_{t0}.json"
    pa.write_bytes(orjson.dumps(accounts))
    pp.write_bytes(orjson.dumps(markets))
    return pa, pp


class _Run:
    """One simulation: the step loop, the block/misc writers and the truth records."""

    def __init__(self, ex: _Exchange, out: Path, p: dict, progress=None):
        self.ex, self.p, self.out = ex, p, out
        self.progress = progress  # (step, steps, fills so far) after every step, or None
        self.t0 = p["start_ms"]
        self.block0 = p["snapshot_block"]
        sfx = ".jsonl.lz4" if p["lz4"] else ".jsonl"
        self.fills = _Writer(out / f"node_fills_by_block{sfx}", p["lz4"])
        self.misc = _Writer(out / f"misc_events{sfx}", p["lz4"])
        self.misc_blocks = 0

    # -- writing ---------------------------------------------------------------
    def _block_header(self, t: int) -> dict:
        bn = self.block0 + (t - self.t0) // 10
        ns = t * 1_000_000 + (bn * 7919) % 1_000_000
        lt = ns + 150_000 + (bn * 104_729) % 400_000
        return {"local_time": iso_ns(lt), "block_time": iso_ns(ns), "block_number": bn}

    def write_fills(self, t: int, events: list) -> None:
        if not events:
            return
        line = self._block_header(t)
        line["events"] = events
        self.fills.line(line)
        ex = self.ex
        ex.n_blocks += 1
        # the price path as the engine sees it: last fill of each coin at t
        seen: dict[str, float] = {}
        for _, f in events:
            seen[f["coin"]] = f["px"]
        for c, coin in enumerate(ex.coins):
            if coin.name in seen:
                ex.price_t[c].append(t)
                ex.price_p[c].append(ex.mark[c])

    def write_misc(self, t: int, inners: list[dict]) -> None:
        if not inners:
            return
        hdr = self._block_header(t)
        evs = [{"time": hdr["block_time"], "hash": self.ex.hash(), "inner": i} for i in inners]
        if self.p["misc_format"] == "event":
            for e in evs:
                self.misc.line(e)
        else:
            hdr["events"] = evs
            self.misc.line(hdr)
        self.misc_blocks += 1

    # -- one step ----------------------------------------------------------------
    def fundamentals(self, t: int, phases) -> tuple[list[float], bool]:
        ex, rng = self.ex, self.ex.rng
        lg, dropping = _shock_log(phases, t - self.t0)
        decay = math.exp(-self.p["block_ms"] / 3000.0)
        sig = 3e-4 if dropping else 1e-4
        eps = rng.normal(0.0, sig, len(ex.coins))
        out = []
        for c, coin in enumerate(ex.coins):
            coin.impact *= decay
            coin.noise = 0.98 * coin.noise + float(eps[c])
            out.append(coin.p0 * math.exp(coin.beta * lg + coin.impact + coin.noise))
        return out, dropping

    def round_trips(self, t: int, fund: list[float], n: int, block: list) -> None:
        """``n`` one-lot round trips (buy then sell, both against the market maker):
        volume for ``fills`` beyond what the cascade's population trades, leaving every
        position as it was (the cost is one lot's spread and fees)."""
        ex, rng = self.ex, self.ex.rng
        users = rng.integers(0, ex.n_users, n)
        coins = rng.integers(0, len(ex.coins), n)
        for u, c in zip(users.tolist(), coins.tolist()):
            coin = ex.coins[c]
            for d, side in ((1, "up"), (-1, "down")):
                px = coin.round_px(fund[c] * (1 + d * SPREAD / 2), side)
                ntl = px / coin.lot_div
                ex.trade(block, t, c, u, ex.mm, d, px,
                         (round(ntl * TAKER_FEE, 6), round(ntl * MAKER_FEE, 6)))

    def background(self, t: int, fund: list[float], n: int, block: list, seed_coins: bool) -> None:
        ex, rng = self.ex, self.ex.rng
        k = len(ex.coins)
        users = rng.integers(0, ex.n_users, n)
        r = rng.random((n, 4))
        wc = 1.0 / np.arange(1, k + 1)
        pick = rng.choice(k, size=n, p=wc / wc.sum())
        if seed_coins:  # every coin trades in the first block: marks exist from the start
            pick[:k] = np.arange(k)
            users[:k] = np.arange(k) % ex.n_users
        mark = np.array(ex.mark)
        eq = ex.cash[users] + ex.size[users] @ mark - ex.cost[users]
        for i in range(n):
            u = int(users[i])
            held = ex.lots[u].nonzero()[0]
            if held.size and not (seed_coins and i < k):
                c = int(held[int(r[i, 0] * held.size)])
            else:
                c = int(pick[i])
            coin = ex.coins[c]
            s_l = int(ex.lots[u, c])
            e = float(eq[i])
            if s_l != 0:
                x = r[i, 1]
                if x < 0.45 or e <= 0:
                    take = max(1, int(abs(s_l) * (0.05 + 0.55 * r[i, 2])))
                    d = -take if s_l > 0 else take
                elif x < 0.5:
                    take = abs(s_l) + max(1, int(abs(s_l) * (0.05 + 0.45 * r[i, 2])))
                    d = -take if s_l > 0 else take
                else:
                    take = max(1, int(abs(s_l) * (0.02 + 0.18 * r[i, 2])))
                    gross = float(np.abs(ex.size[u]) @ mark)
                    if (gross + take / coin.lot_div * fund[c]) > e * coin.max_lev * 0.5:
                        take = max(1, int(abs(s_l) * 0.1))
                        d = -take if s_l > 0 else take
                    else:
                        d = take if s_l > 0 else -take
            else:
                if e <= 0:
                    continue
                # dip buyers and fresh shorts: Pareto leverage as in the snapshot book
                lev = min(0.8 * coin.max_lev, 1.0 + 1.5 * ((1.0 - r[i, 2]) ** (-1 / 1.2) - 1.0))
                ntl = e * lev
                take = max(1, int(ntl / fund[c] * coin.lot_div))
                d = take if r[i, 3] < 0.55 else -take
            px = coin.round_px(fund[c] * (1 + SPREAD / 2), "up") if d > 0 else \
                coin.round_px(fund[c] * (1 - SPREAD / 2), "down")
            ntl = abs(d) / coin.lot_div * px
            ex.trade(block, t, c, u, ex.mm, d, px,
                     (round(ntl * TAKER_FEE, 6), round(ntl * MAKER_FEE, 6)))

    def liquidations(self, t: int, block: list, misc: list) -> None:
        ex = self.ex
        n = ex.n_users
        mark = np.array(ex.mark)
        sz = ex.size[:n]
        # screening only (cost is a running sum); each candidate is re-checked exactly
        eq = ex.cash[:n] + sz @ mark - ex.cost[:n]
        mm = np.abs(sz) @ (mark * ex.mmr)
        cand = np.flatnonzero((mm > 0) & (eq < mm * (1 + 1e-9) + 1e-9))
        if cand.size == 0:
            return
        ratio = eq[cand] / mm[cand]
        cand = cand[np.lexsort((cand, ratio))]
        nv = len(ex.vaults)
        # the book absorbs at most max_impact of price move per coin and step; the
        # rest waits under maintenance and, if the fall goes on, reaches the backstop
        budget = [coin.depth_usd * self.p["max_impact"] for coin in ex.coins]
        for u in cand.tolist():
            e = ex.equity(u)
            m = ex.maintenance(u)
            if m <= 0 or e >= m:
                continue
            backstop = e < (2.0 / 3.0) * m
            held = ex.lots[u].nonzero()[0].tolist()
            if not backstop:
                need = [abs(float(ex.size[u, c])) * ex.mark[c] for c in held]
                if any(x > budget[c] for x, c in zip(need, held)):
                    continue
                for x, c in zip(need, held):
                    budget[c] -= x
            ntl = sum(abs(float(ex.size[u, c])) * ex.mark[c] for c in held)
            misc.append({"LedgerUpdate": {"users": [ex.addr[u]], "delta": {
                "type": "liquidation", "liquidatedNtlPos": num(ntl), "accountValue": num(e),
                "leverageType": "Cross",
                "liquidatedPositions": [{"coin": ex.coins[c].name,
                                         "szi": num(float(ex.size[u, c]))} for c in held]}}})
            for c in held:
                coin = ex.coins[c]
                s_l = int(ex.lots[u, c])
                mk = ex.mark[c]
                liq_dir = "Liquidated Cross Long" if s_l > 0 else "Liquidated Cross Short"
                if backstop:
                    v = ex.vaults[c % nv]
                    liq = {"liquidatedUser": ex.addr[u], "markPx": num(mk), "method": "backstop"}
                    ex.trade(block, t, c, u, v, -s_l, mk, (0.0, 0.0), (liq_dir, None), liq)
                else:
                    pos_ntl = abs(s_l) / coin.lot_div * mk
                    kk = min(self.p["max_impact"], pos_ntl / coin.depth_usd)
                    if s_l > 0:
                        px = coin.round_px(mk * (1 - kk / 2), "down")
                        coin.impact += math.log(1 - kk)
                    else:
                        px = coin.round_px(mk * (1 + kk / 2), "up")
                        coin.impact -= math.log(1 - kk)
                    fntl = abs(s_l) / coin.lot_div * px
                    liq = {"liquidatedUser": ex.addr[u], "markPx": num(mk), "method": "market"}
                    ex.trade(block, t, c, u, ex.mm, -s_l, px,
                             (round(fntl * TAKER_FEE, 6), round(fntl * MAKER_FEE, 6)),
                             (liq_dir, None), liq)
                ex.n_liq_fills += 1

    def adl(self, t: int, v: int) -> list:
        """ADL of vault ``v`` if its equity is negative: one block of fills (whole
        positions, at the bankruptcy price capped by ``adl_band``, module docstring)."""
        ex = self.ex
        e = ex.equity(v)
        held = np.flatnonzero(ex.lots[v]).tolist()
        if e >= 0 or not held:
            return []
        deficit = -e
        band = float(self.p["adl_band"])
        ex.adl_blocks.append((t, v, e))
        mark = np.array(ex.mark)
        ntl = {c: abs(float(ex.size[v, c])) * ex.mark[c] for c in held}
        total = sum(ntl.values())
        plans = []
        for c in held:  # every ranking from the state before the block
            coin = ex.coins[c]
            q_l = int(ex.lots[v, c])
            q = abs(q_l) / coin.lot_div
            mk = ex.mark[c]
            dist = deficit * (ntl[c] / total) / q  # to the vault's bankruptcy price
            if band > 0.0:  # per-step ADL cap: the price stays within the band
                dist = min(dist, band * mk)
            raw = mk + (1 if q_l > 0 else -1) * dist
            px = coin.round_px(raw, "up") if q_l > 0 else coin.round_px(raw, "down")
            if px == mk:
                px = coin.px(coin.ticks(mk, "near") + (1 if q_l > 0 else -1))
            col = ex.lots[:, c]
            rows = np.flatnonzero((col < 0) if q_l > 0 else (col > 0))
            rows = rows[~np.isin(rows, ex.vaults)]
            if rows.size == 0:
                continue
            eq = ex.cash[rows] + (ex.size[rows] * (mark - ex.entry[rows])).sum(axis=1)
            notional = np.abs(ex.size[rows, c]) * mk
            ent = ex.entry[rows, c]
            ratio = (ent / mk) if q_l > 0 else (mk / ent)  # winners are shorts when the vault is long
            with np.errstate(divide="ignore", invalid="ignore"):
                index = np.where(eq > 0, ratio * notional / eq, -np.inf)
            order = rows[np.lexsort((rows, -index))]
            plans.append((c, q_l, px, mk, order))
        block: list = []
        for c, q_l, px, mk, order in plans:
            coin = ex.coins[c]
            need = abs(q_l)
            liq = {"liquidatedUser": ex.addr[v], "markPx": num(mk), "method": "backstop"}
            vault_dir = "Liquidated Cross Long" if q_l > 0 else "Liquidated Cross Short"
            for w in order.tolist():
                if need == 0:
                    break
                wl = int(ex.lots[w, c])
                take = min(abs(wl), need)
                need -= take
                d = take if wl < 0 else -take
                closed = ex.trade(block, t, c, w, v, d, px, (0.0, 0.0),
                                  ("Auto-Deleveraging", vault_dir), liq, (True, False))
                ex.adl_rows.append((t, w, c, -1 if d > 0 else 1, take / coin.lot_div, px, mk,
                                    closed, v))
        return block

    def funding(self, t: int) -> list[dict]:
        ex, rng = self.ex, self.ex.rng
        rates = rng.normal(1.0e-5, 2.0e-5, len(ex.coins))
        deltas = []
        for c, coin in enumerate(ex.coins):
            rows = np.flatnonzero(ex.lots[:, c])
            amt = np.round(-ex.size[rows, c] * ex.mark[c] * rates[c], 6)
            keep = amt != 0
            rows, amt = rows[keep], amt[keep] + 0.0
            ex.cash[rows] += amt
            ex.funding += float(amt.sum())
            deltas.extend({"user": ex.addr[u], "coin": coin.name, "funding_amount": num(a)}
                          for u, a in zip(rows.tolist(), amt.tolist()))
        chunk = 5000
        return [{"Funding": {"deltas": deltas[i:i + chunk]}} for i in range(0, len(deltas), chunk)]

    def deposits(self) -> list[dict]:
        ex, rng = self.ex, self.ex.rng
        m = max(1, ex.n_users // 500)
        who = np.unique(rng.integers(0, ex.n_users, m))
        amt = np.round(rng.uniform(100.0, 10_000.0, who.size), 2)
        out = []
        for u, a in zip(who.tolist(), amt.tolist()):
            ex.cash[u] += a
            ex.deposits += a
            out.append({"LedgerUpdate": {"users": [ex.addr[u]],
                                         "delta": {"type": "deposit", "usdc": num(a)}}})
        return out

    def run(self) -> None:
        ex, p = self.ex, self.p
        phases, total = _schedule(p)
        bms = p["block_ms"]
        steps = total // bms
        tpb, round_trips = background_rates(p, steps, ex.n_users)
        funding_steps = {steps // 10, (phases[-1][1] + (total - phases[-1][1]) // 2) // bms}
        deposit_step = max(1, steps // 20)
        for i in range(1, steps + 1):
            t = self.t0 + i * bms
            fund, _ = self.fundamentals(t, phases)
            block: list = []
            misc: list = []
            if i == deposit_step:
                misc.extend(self.deposits())
            self.background(t, fund, tpb, block, seed_coins=(i == 1))
            if round_trips:
                self.round_trips(t, fund, round_trips, block)
            self.liquidations(t, block, misc)
            self.write_fills(t, block)
            self.write_misc(t, misc)
            if i in funding_steps:
                self.write_misc(t + bms // 5, self.funding(t + bms // 5))
            for j, v in enumerate(ex.vaults):
                ta = t + bms // 2 + 10 * j
                self.write_fills(ta, self.adl(ta, v))
            if self.progress is not None:
                self.progress(i, steps, ex.n_fills)
        self.end_ms = self.t0 + steps * bms
        self.fills.close()
        self.misc.close()


# ---------------------------------------------------------------------------
# truth (CONTRACT "Wave definitions"), from the simulator's own state


def _mark_at(ex: _Exchange, c: int, t: int) -> float:
    """Last fill price of coin c at or before t (CONTRACT mark rule)."""
    i = bisect.bisect_right(ex.price_t[c], t) - 1
    return ex.price_p[c][i] if i >= 0 else ex.coins[c].p0


def _truth(ex: _Exchange, p: dict, gap_ms: int, horizons: tuple[int, ...]) -> dict:
    rows = ex.adl_rows
    waves: list[list[tuple]] = []
    for r in rows:
        if waves and r[0] - waves[-1][-1][0] <= gap_ms:
            waves[-1].append(r)
        else:
            waves.append([r])
    out = []
    prev_d: dict[int, float] = {}
    for wid, w in enumerate(waves, 1):
        t0, t1 = w[0][0], w[-1][0]
        needed = 0.0
        notional = 0.0
        closed = 0.0
        for (_, _, _, _, sz, px, mk, cp, _) in w:
            needed += abs(mk - px) * sz
            notional += px * sz
            closed += cp
        losers = list(dict.fromkeys(r[8] for r in w))
        d_by: dict[int, float] = {}
        for (tb, lo, e) in ex.adl_blocks:
            if t0 <= tb <= t1 and lo in losers:
                d_by[lo] = max(d_by.get(lo, 0.0), -e)
        deficit = sum(max(0.0, d_by.get(lo, 0.0)) for lo in losers)
        incr = sum(max(0.0, d_by.get(lo, 0.0) - prev_d.get(lo, 0.0)) for lo in losers)
        for lo in losers:
            prev_d[lo] = max(prev_d.get(lo, 0.0), d_by.get(lo, 0.0))
        haircut = {}
        for h in horizons:
            per_user: dict[int, float] = {}
            for (_, u, c, s, sz, px, _, _, _) in w:
                per_user[u] = per_user.get(u, 0.0) + s * sz * (_mark_at(ex, c, t1 + h) - px)
            haircut[str(h)] = sum(max(0.0, x) for x in per_user.values())
        first = str(horizons[0])
        out.append({
            "wave_id": wid, "venue": VENUE, "t_start_ms": t0, "t_end_ms": t1,
            "adl_fills": len(w), "accounts": len(dict.fromkeys(r[1] for r in w)),
            "losers": len(losers),
            "coins": sorted({ex.coins[r[2]].name for r in w}),
            "notional_usd": notional, "closed_pnl_usd": closed, "needed_usd": needed,
            "deficit_usd": deficit, "deficit_increment_usd": incr, "deficit_source": "ledger",
            "production_haircut_usd": haircut,
            "excess_haircut_usd": {k: v - needed for k, v in haircut.items()},
            "excess_haircut_positive_usd": {k: max(0.0, v - needed) for k, v in haircut.items()},
            "theta_needed": min(1.0, needed / deficit) if deficit > 0 else None,
            "theta_prod": min(1.0, haircut[first] / deficit) if deficit > 0 else None,
            "loser_deficits_usd": {ex.addr[lo]: d_by.get(lo, 0.0) for lo in losers},
        })
    marks = {coin.name: ex.mark[c] for c, coin in enumerate(ex.coins)}
    mark = np.array(ex.mark)
    upnl = (ex.size * (mark - ex.entry)).sum(axis=1)
    equity = ex.cash + upnl
    return {
        "venue": VENUE,
        "params": p,
        "gap_ms": gap_ms,
        "horizons_ms": list(horizons),
        "waves": out,
        "marks": marks,
        "accounts": {ex.addr[u]: float(equity[u]) for u in range(ex.n_acc)},
        "totals": {
            "fills": ex.n_fills, "adl_fills": len(rows), "liquidated_positions": ex.n_liq_fills,
            "blocks": ex.n_blocks, "waves": len(out),
            "fees_usd": ex.fees, "funding_usd": ex.funding, "deposits_usd": ex.deposits,
            "initial_account_value_usd": float(ex.av0.sum()),
            "final_equity_usd": float(equity.sum()),
            "needed_usd": sum(w["needed_usd"] for w in out),
            "deficit_usd": sum(w["deficit_usd"] for w in out),
        },
        "vaults": [ex.addr[v] for v in ex.vaults],
        "market_maker": ex.addr[ex.mm],
    }


# ---------------------------------------------------------------------------
# API and CLI

DEFAULTS = dict(
    accounts=2000, coins=4, shock=0.3, seed=1, blocks=0, block_ms=100, waves=3,
    fills=0, trades_per_block=20, vaults=1, lz4=False, misc_format="event",
    start_ms=1760130900000, snapshot_block=758750000, warmup_ms=6000, drop_ms=4000,
    quiet_ms=9000, long_share=0.65, min_account_usd=200.0, depth=2.0, max_impact=0.02,
    vault_capital=0.0005, adl_band=0.0005,
)


# Background trades per account and block that the cascade survives: busier accounts
# trade their positions away before the shock reaches them (issue 8 §3: --fills 10^6 on
# 2,000 accounts gave no ADL at all). The default (20 trades, 2,000 accounts) is 0.01.
MAX_TRADES_PER_ACCOUNT_BLOCK = 0.01


def background_rates(p: dict, steps: int, n_users: int) -> tuple[int, int]:
    """(position-changing trades, one-lot round trips) per block for params ``p``.

    Without ``fills``: ``trades_per_block`` trades. With it: ``fills`` / 2 trades
    over the run (each trade writes two fills), of which at most
    max(trades_per_block, MAX_TRADES_PER_ACCOUNT_BLOCK · accounts) change positions;
    the rest are round trips (two trades each), so the cascade is the same at any
    size."""
    tpb = p["trades_per_block"]
    if not p["fills"]:
        return tpb, 0
    want = max(1, math.ceil(p["fills"] / 2 / steps))
    cap = max(tpb, int(MAX_TRADES_PER_ACCOUNT_BLOCK * n_users))
    if want <= cap:
        return want, 0
    return cap, math.ceil((want - cap) / 2)


def simulate(out_dir: str | Path, *, gap_ms: int = GAP_MS,
             horizons_ms: tuple[int, ...] = HORIZONS_MS, progress=None, **params) -> SimResult:
    """Write a synthetic cascade into ``out_dir`` and return what was written.

    ``params`` (defaults in :data:`DEFAULTS`): accounts, coins (≤ 12 named,
    more are synthetic), shock (total fractional drop), seed, blocks (total
    steps; 0 = from the schedule), block_ms (≥ 100), waves (drop phases),
    fills (target fill count; sets trades per block), trades_per_block,
    vaults (1 or 2), lz4, misc_format ("block" | "event"), start_ms,
    snapshot_block, warmup_ms, drop_ms, quiet_ms, long_share,
    min_account_usd, depth (book depth per 100% move as a multiple of open
    interest), max_impact, vault_capital (vault capital as a fraction of gross
    notional), adl_band (per-step cap of the ADL price's distance from the
    mark, as a fraction of the mark; 0 = uncapped bankruptcy price, the vault
    made whole at every ADL step). Same params and seed give the same bytes.
    ``progress(step, steps, fills)`` is called after every step (the CLI prints it).
    """
    unknown = set(params) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown simulate() parameters: {sorted(unknown)}")
    p = {**DEFAULTS, **params}
    if p["block_ms"] < 100 or p["block_ms"] % 10:
        raise ValueError("block_ms must be a multiple of 10 and >= 100")
    if p["vaults"] not in (1, 2):
        raise ValueError("vaults must be 1 or 2")
    if not 0.0 < p["shock"] < 1.0:
        raise ValueError("shock must be in (0, 1)")
    if p["accounts"] < 10 or p["coins"] < 1:
        raise ValueError("need at least 10 accounts and 1 coin")
    if p["misc_format"] not in ("block", "event"):
        raise ValueError("misc_format must be 'block' or 'event'")
    if not 0.0 <= p["adl_band"] < 1.0:
        raise ValueError("adl_band must be in [0, 1)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ex = _Exchange(p)
    _initial_book(ex)
    pa, pp = _write_snapshot(ex, out, p["snapshot_block"], p["start_ms"])
    run = _Run(ex, out, p, progress)
    run.run()
    truth = _truth(ex, p, gap_ms, tuple(horizons_ms))
    truth["files"] = {"account_snapshot": pa.name, "positions_snapshot": pp.name,
                      "fills": run.fills.path.name, "misc": run.misc.path.name}
    tp = out / "truth.json"
    tp.write_bytes(orjson.dumps(truth, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
    return SimResult(out, pa, pp, run.fills.path, run.misc.path, tp, truth,
                     ex.n_fills, len(ex.adl_rows), ex.n_blocks, truth["waves"])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = DEFAULTS
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--accounts", type=int, default=d["accounts"], help="number of trader accounts")
    parser.add_argument("--coins", type=int, default=d["coins"], help="number of perp markets")
    parser.add_argument("--shock", type=float, default=d["shock"], help="total fractional price drop")
    parser.add_argument("--seed", type=int, default=d["seed"],
                        help="random seed (same seed and flags: same bytes)")
    parser.add_argument("--blocks", type=int, default=d["blocks"],
                        help="total steps of block_ms (0 = from the wave schedule)")
    parser.add_argument("--block-ms", type=int, default=d["block_ms"],
                        help="venue time between blocks, ms (a multiple of 10, >= 100)")
    parser.add_argument("--waves", type=int, default=d["waves"], help="number of drop phases")
    parser.add_argument("--fills", type=int, default=d["fills"],
                        help="target number of fills (0 = from --accounts); volume past what "
                             "the accounts trade is one-lot round trips, so the cascade stays")
    parser.add_argument("--vaults", type=int, default=d["vaults"], choices=(1, 2),
                        help="1 = HLP Liquidator, 2 = also Liquidator 2")
    parser.add_argument("--lz4", action="store_true", help="write fills and misc events as LZ4 frames")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--misc-format", default=d["misc_format"], choices=("block", "event"),
                        help="misc_events lines: one {time, hash, inner} per line, or node blocks")
    parser.add_argument("--adl-band", type=float, default=d["adl_band"],
                        help="per-step cap of the ADL price's distance from the mark (fraction "
                             "of the mark; 0 = bankruptcy price, the vault made whole)")
    parser.add_argument("--gap-ms", type=int, default=GAP_MS, help="wave gap of truth.json")
    parser.add_argument("--horizons-ms", default=",".join(map(str, HORIZONS_MS)),
                        help="production haircut horizons of truth.json (comma separated)")


def _fmt_theta(theta: float | None) -> str:
    return "null" if theta is None else f"{theta:.4f}"


def main(args: argparse.Namespace) -> int:
    params = dict(accounts=args.accounts, coins=args.coins, shock=args.shock, seed=args.seed,
                  blocks=args.blocks, block_ms=args.block_ms, waves=args.waves, fills=args.fills,
                  vaults=args.vaults, lz4=args.lz4, misc_format=args.misc_format,
                  adl_band=args.adl_band)
    t = _time.perf_counter()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"adlmon simulate: --out {args.out}: exists and is not a directory "
              "(give a new or an existing directory)", file=sys.stderr)
        return 2
    try:
        horizons = tuple(int(x) for x in args.horizons_ms.split(",") if x.strip())
        if not horizons or args.gap_ms <= 0 or min(horizons) < 0:
            raise ValueError("--gap-ms must be > 0 and --horizons-ms non-negative integers")
        res = simulate(args.out, gap_ms=args.gap_ms, horizons_ms=horizons,
                       progress=None if args.quiet else _Progress(), **params)
    except ValueError as exc:
        print(f"adlmon simulate: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"adlmon simulate: --out {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    dt = _time.perf_counter() - t
    tot = res.truth["totals"]
    print(f"wrote {res.out_dir}: {res.fills:,} fills in {res.blocks:,} blocks, "
          f"{res.adl_fills:,} ADL fills, {tot['liquidated_positions']:,} liquidated positions, "
          f"{len(res.waves)} waves ({dt:.1f} s)")
    for w in res.waves:
        print(f"  wave {w['wave_id']}: {w['t_start_ms']}..{w['t_end_ms']} "
              f"({(w['t_end_ms'] - w['t_start_ms']) / 1000:.1f} s) fills={w['adl_fills']} "
              f"needed={w['needed_usd']:,.2f} deficit={w['deficit_usd']:,.2f} "
              f"H0={w['production_haircut_usd'].get('0', float('nan')):,.2f} "
              f"theta_needed={_fmt_theta(w['theta_needed'])}")
    if not res.adl_fills:
        # Asked for a cascade, got none: say why instead of a silent success.
        print(f"adlmon simulate: no ADL in this run: the {args.shock:.0%} shock left every "
              "liquidator vault's equity >= 0 (liquidations were absorbed by the market and "
              "the vault); raise --shock or --accounts, or lower --adl-band", file=sys.stderr)
        return 1
    return 0


class _Progress:
    """Progress lines on stderr for long runs: at most one every ``every_s`` of wall
    time, none for a run shorter than that."""

    def __init__(self, every_s: float = 2.0, clock=_time.monotonic, stream=None):
        self.every_s = every_s
        self.clock = clock
        self.stream = stream
        self.next_at = clock() + every_s
        self.printed = False

    def __call__(self, step: int, steps: int, fills: int) -> None:
        if step < steps:
            if self.clock() < self.next_at:
                return
            self.next_at = self.clock() + self.every_s
            self.printed = True
        elif not self.printed:
            return  # a short run: the summary line is enough
        print(f"adlmon simulate: step {step:,}/{steps:,} ({step / steps:.0%}), {fills:,} fills",
              file=self.stream or sys.stderr, flush=True)
