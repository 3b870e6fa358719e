"""Lighter (zkLighter) frames and REST answers -> adlmon events (venues-wire.md §2; issue 10).

Pure: no I/O, no clock. :class:`LighterParser` keeps the little state the
venue's frames need (seen trade ids, the mark history per market, market
names, the LLP pool index); the live collectors and capture replay feed the
same parser, so a replayed capture gives the live run's events.

Definitions (issue 10 "Definitions", venues-wire §2.3):

* **ADL fill**: a trade of ``type == "deleverage"`` in either array
  (``trades``, ``liquidation_trades``) of ``subscribed/trade`` or
  ``update/trade`` (or a REST trade list), deduplicated on ``trade_id``.
  ``liquidation`` trades feed the liquidation counters (``kind="liquidation"``,
  the taker's side), not waves; ``market-settlement`` is never ADL.
* **Time**: the trade's ``timestamp`` (ms).
* **Loser and winner**: the taker is the deleveraged (liquidated) account, the
  maker the winner. ``is_maker_ask`` true: the maker sold, so the winner's
  long was closed (side ``sell``). Taker = ``bid_account_id`` if
  ``is_maker_ask`` else ``ask_account_id``. Accounts are named by their index
  as a decimal string.
* **Mark** M(t) of a market: the last ``market_stats`` ``mark_price`` whose
  frame ``timestamp`` is ≤ t (a frame without one is stamped with its receive
  time). Each ADL fill carries M(t_k) as ``liquidation.mark_px`` (NaN when no
  mark ≤ t_k is known, counted as ``adl_without_mark``), so the engine's
  B = Σ|M(t_k) − px_k|·sz_k (DESIGN §4). Every mark is also a ``Mark`` event,
  the ledger's M(t_end+Δ) for H.
* **Capacities**: ``maker_position_size_before`` (signed) is the winner's
  ``start_position``; with ``maker_entry_quote_before`` (entry notional) the
  entry price is quote/|size|, carried as ``liquidation.entry_px``: the
  counterfactual's capacity of the winner is then the position's unrealized
  PnL at the mark, |size|·s·(M(t_k) − entry) (issue 10 "Capacities"), and
  ``closed_pnl`` is what the fill realized, q·(px − entry)·sign(size),
  q = min(sz, |size|). Absent, the fill closes exactly ``sz`` with closed_pnl
  0 and no entry (capacity not public: ``dir`` says so, counted as
  ``capacity_unknown``), as Hyperliquid's inferred winner fills do.

Which sides become ``Fill`` events: the ledger takes a fill's
``start_position`` as the truth, so a side is emitted only when the trade
gives its position before (``*_position_size_before``). Two sides are always
emitted, with the closing convention above when the position is absent: the
ADL winner (waves need every ADL fill) and the liquidated taker (the
liquidation counters). A side left out is counted (``position_unknown``); the
accounts the engine must know exactly (the LLP pool, whose shortfall is the
deficit D) are refreshed from ``/api/v1/account`` snapshots.

Fees: ``taker_fee``/``maker_fee`` are integer rates in parts per million
(``10000`` = 1 %, venues-wire §2.2; a GUESS there), the fee is rate·px·sz/1e6.

Bad input: a frame that is not JSON, not an object, of an unknown ``type``,
or whose arrays are not arrays raises ``ParseError``. Inside a frame, one bad
trade (missing or malformed field, unknown ``type``) is skipped and counted in
:attr:`LighterParser.rejected` by reason; the frame's other trades are kept.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import replace
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

import orjson

from adlmon.events import (
    ADL, BUY, CLOSE, LIQUIDATION, OPEN, SELL, AccountSnapshot, Event, FeedGap, Fill,
    InsuranceFund, Liquidation, Mark, ParseError, PositionSnapshot,
)
from adlmon.io.capture import CLOSE as CAPTURE_CLOSE, OPEN as CAPTURE_OPEN, REST, WS
from adlmon.venues.dedupe import SeenSet
from adlmon.validate import MAX_ABS, number
from adlmon.venues.merge import TimeMerge

VENUE = "lighter"
LLP_MAINNET = 281474976710654  # 2**48 - 2 (venues-wire §2.6); read from systemConfig at run time
POOL_LABEL = "llp"  # the bounded `pool` label of adlmon_insurance_fund_usd

DELEVERAGE = "deleverage"
LIQUIDATION_TYPE = "liquidation"
TRADE = "trade"
MARKET_SETTLEMENT = "market-settlement"
TRADE_TYPES = (TRADE, LIQUIDATION_TYPE, DELEVERAGE, MARKET_SETTLEMENT)
NO_POSITION_DIR = " (position before not public)"

TRADE_CHANNEL = "trade"
MARKET_STATS_CHANNEL = "market_stats"
CHANNELS = (TRADE_CHANNEL, MARKET_STATS_CHANNEL)
# Frame types that carry no data (acks are the `subscribed/...` frames, which do).
CONTROL_TYPES = frozenset({"connected", "pong", "ping", "error", "unsubscribed"})
MAX_MARKS_PER_MARKET = 4096  # mark history kept for M(t) lookups (bounded memory)


# ----------------------------------------------------------------------------- fields

def _int(value: Any, field: str) -> int:
    """An integer from a JSON number or a digit string (``*_str`` twins)."""
    if value.__class__ is int:
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is None:
        raise ParseError("missing_field", f"{field} is missing")
    raise ParseError("bad_number", f"{field}: {value!r:.40} is not an integer")


def _opt(obj: dict, key: str) -> float | None:
    v = obj.get(key)
    return None if v is None or v == "" else number(v, key)


def _req(obj: dict, key: str) -> Any:
    v = obj.get(key)
    if v is None:
        raise ParseError("missing_field", f"trade: {key!r} is missing")
    return v


class Trade(NamedTuple):
    """One Lighter trade as the parser needs it (venues-wire §2.2 table). A named tuple:
    a replay builds one per trade (a frozen dataclass costs several times more)."""

    trade_id: int
    type: str
    market_id: int
    size: float
    price: float
    ask_account: int
    bid_account: int
    is_maker_ask: bool
    time_ms: int
    tx_hash: str
    taker_position_before: float | None = None
    maker_position_before: float | None = None
    taker_entry_quote_before: float | None = None
    maker_entry_quote_before: float | None = None
    taker_fee: float | None = None
    maker_fee: float | None = None

    @property
    def taker(self) -> int:
        return self.bid_account if self.is_maker_ask else self.ask_account

    @property
    def maker(self) -> int:
        return self.ask_account if self.is_maker_ask else self.bid_account

    @property
    def taker_side(self) -> str:
        return BUY if self.is_maker_ask else SELL


_OPTIONAL = ("taker_position_size_before", "maker_position_size_before",
             "taker_entry_quote_before", "maker_entry_quote_before", "taker_fee", "maker_fee")
_TYPE_SET = frozenset(TRADE_TYPES)


def _fast_trade(obj: Any) -> Trade | None:
    """The common wire shape (ids and times as ints, decimals as strings or ints) without
    per-field calls; None sends anything else through :func:`decode_trade`'s checks, so
    both give the same trades and the same errors."""
    try:
        kind, tid, m, a, b = (obj["type"], obj["trade_id"], obj["market_id"],
                              obj["ask_account_id"], obj["bid_account_id"])
        s, p, mk, ts = obj["size"], obj["price"], obj["is_maker_ask"], obj["timestamp"]
    except (KeyError, TypeError):
        return None
    if kind.__class__ is not str or kind not in _TYPE_SET or s.__class__ is not str \
            or p.__class__ is not str \
            or (mk is not True and mk is not False) or tid.__class__ is not int \
            or m.__class__ is not int or a.__class__ is not int or b.__class__ is not int \
            or ts.__class__ is not int:
        return None
    try:
        size, price = float(s), float(p)
        opt = []
        get = obj.get
        for key in _OPTIONAL:
            v = get(key)
            cls = v.__class__
            if v is None or v == "":
                opt.append(None)
            elif cls is str or cls is int:
                x = float(v)
                if not -MAX_ABS <= x <= MAX_ABS:  # also nan
                    return None
                opt.append(x)
            else:
                return None
    except (ValueError, OverflowError):
        return None
    if not (0.0 < size <= MAX_ABS and 0.0 < price <= MAX_ABS):
        return None
    tx = obj.get("tx_hash")
    return Trade(tid, kind, m, size, price, a, b, mk, ts, tx if tx.__class__ is str else "", *opt)


def decode_trade(obj: Any) -> Trade:
    """One trade object -> :class:`Trade`. Raises ``ParseError`` on anything malformed."""
    fast = _fast_trade(obj)
    return fast if fast is not None else _checked_trade(obj)


def _checked_trade(obj: Any) -> Trade:
    """decode_trade, field by field (every accepted shape; the errors)."""
    if not isinstance(obj, dict):
        raise ParseError("bad_value", f"trade: {obj!r:.60} is not an object")
    kind = _req(obj, "type")
    if kind not in TRADE_TYPES:
        raise ParseError("unknown_variant", f"trade type {kind!r:.40}")
    tid = obj.get("trade_id")
    trade_id = _int(tid if tid is not None else obj.get("trade_id_str"), "trade_id")
    size = number(_req(obj, "size"), "size")
    price = number(_req(obj, "price"), "price")
    if size <= 0.0 or price <= 0.0:
        raise ParseError("bad_value", f"trade {trade_id}: size {size} and price {price} must be > 0")
    maker_ask = _req(obj, "is_maker_ask")
    if maker_ask is not True and maker_ask is not False:
        raise ParseError("bad_value", f"trade {trade_id}: is_maker_ask = {maker_ask!r:.20}")
    ts = _int(_req(obj, "timestamp"), "timestamp")
    tx = obj.get("tx_hash")
    return Trade(
        trade_id=trade_id, type=kind, market_id=_int(_req(obj, "market_id"), "market_id"),
        size=size, price=price,
        ask_account=_int(_req(obj, "ask_account_id"), "ask_account_id"),
        bid_account=_int(_req(obj, "bid_account_id"), "bid_account_id"),
        is_maker_ask=maker_ask, time_ms=ts, tx_hash=tx if isinstance(tx, str) else "",
        taker_position_before=_opt(obj, "taker_position_size_before"),
        maker_position_before=_opt(obj, "maker_position_size_before"),
        taker_entry_quote_before=_opt(obj, "taker_entry_quote_before"),
        maker_entry_quote_before=_opt(obj, "maker_entry_quote_before"),
        taker_fee=_opt(obj, "taker_fee"), maker_fee=_opt(obj, "maker_fee"),
    )


def closed_pnl(start: float, entry_quote: float | None, side: str, px: float, sz: float) -> float:
    """Realized PnL of a fill on the part it closes, from the position before it
    (signed ``start``, entry notional ``entry_quote``): q·(px − entry)·sign(start)."""
    if entry_quote is None or start == 0.0 or (start > 0.0) == (side == BUY):
        return 0.0
    entry = abs(entry_quote) / abs(start)
    q = min(sz, abs(start))
    return q * (px - entry) * (1.0 if start > 0.0 else -1.0)


def _position_kind(start: float, side: str) -> str:
    return OPEN if start == 0.0 or (start > 0.0) == (side == BUY) else CLOSE


def trade_fills(tr: Trade, coin: str, mark_px: float | None, stats: Counter | None = None) -> list[Fill]:
    """The ``Fill`` events of one trade (module docstring: which sides, which kinds)."""
    stats = stats if stats is not None else Counter()
    taker_side = tr.taker_side
    maker_side = SELL if taker_side == BUY else BUY
    px, sz = tr.price, tr.size
    notional = px * sz
    special = tr.type in (DELEVERAGE, LIQUIDATION_TYPE)
    m = mark_px if mark_px is not None else math.nan
    out = []
    # Taker first (the liquidated / deleveraged account), as the venue lists the aggressor.
    for user, side, start, quote, fee_rate, taker in (
            (tr.taker, taker_side, tr.taker_position_before, tr.taker_entry_quote_before,
             tr.taker_fee, True),
            (tr.maker, maker_side, tr.maker_position_before, tr.maker_entry_quote_before,
             tr.maker_fee, False)):
        winner = tr.type == DELEVERAGE and not taker
        liquidated = tr.type == LIQUIDATION_TYPE and taker
        label = tr.type
        if start is None:
            if not (winner or liquidated):
                stats["position_unknown"] += 1
                continue
            # The closing convention: the fill closes exactly sz (capacity not public).
            start = sz if side == SELL else -sz
            pnl = 0.0
            label += NO_POSITION_DIR
            pnl_known = False
            if winner:
                stats["capacity_unknown"] += 1
        else:
            pnl = closed_pnl(start, quote, side, px, sz)
            pnl_known = True
        kind = ADL if winner else LIQUIDATION if liquidated else _position_kind(start, side)
        liq = None
        if special:
            entry = abs(quote) / abs(start) if quote is not None and start != 0.0 and pnl_known \
                else None
            liq = Liquidation(str(tr.taker), m, tr.type, entry)
        fee = notional * fee_rate / 1e6 if fee_rate is not None else 0.0
        out.append(Fill(VENUE, coin, str(user), side, px, sz, tr.time_ms, start, kind, pnl,
                        fee, tr.trade_id, tr.tx_hash, liq, label))
    if tr.type == DELEVERAGE and mark_px is None:
        stats["adl_without_mark"] += 1
    return out


# ----------------------------------------------------------------------------- frames

def decode_frame(raw: bytes | str) -> dict:
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ParseError("bad_json", f"not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ParseError("bad_value", "frame is not a JSON object")
    return obj


def frame_family(obj: dict) -> tuple[str, str]:
    """(``subscribed``|``update``|control type, family) of a frame: ``update/trade`` ->
    ("update", "trade"). Raises ``ParseError`` for a frame without a string ``type``."""
    kind = obj.get("type")
    if not isinstance(kind, str):
        raise ParseError("missing_field", "frame has no 'type'")
    head, sep, family = kind.partition("/")
    if sep:
        return head, family
    return kind, ""


def market_stats_entries(obj: dict) -> list[dict]:
    """The market objects of a ``market_stats`` frame: one (``market_stats/{id}``) or a
    map keyed by the market id as a string (``market_stats/all``, venues-wire §2.4)."""
    ms = obj.get("market_stats")
    if not isinstance(ms, dict):
        raise ParseError("missing_field", "market_stats frame: 'market_stats' is not an object")
    if "market_id" in ms or "mark_price" in ms:
        return [ms]
    out = []
    for key, v in ms.items():
        if not isinstance(v, dict):
            raise ParseError("bad_value", f"market_stats[{key!r:.20}] is not an object")
        if "market_id" not in v:
            v = {**v, "market_id": key}
        out.append(v)
    return out


def _rest_path(req: str) -> tuple[str, dict[str, list[str]]]:
    parts = urlsplit(req)
    return parts.path.rstrip("/"), parse_qs(parts.query)


# ----------------------------------------------------------------------------- parser

class LighterParser:
    """Capture records (or decoded live frames) -> events, in arrival order (module docstring).

    ``parse(record)`` is the ``CaptureParser`` of the venue face; the collectors
    call :meth:`ws_frame` / :meth:`rest_answer` with what they received and
    :meth:`feed` with the events, so live and replay share every rule.

    Time order: trades come sharded over connections and marks on one of them,
    in no fixed order between sockets; with ``hold_ms`` (``[venues.lighter]
    merge_hold_ms``) the events pass through a :class:`~adlmon.venues.merge.TimeMerge`
    on their receive time, live and in replay alike (``finish()`` releases the
    rest); ``hold_ms=None`` passes them through as parsed. ``rejected`` counts
    trades and markets skipped inside otherwise good frames, by reason; ``stats``
    the rest (duplicates, adl_without_mark, capacity_unknown, position_unknown).
    """

    def __init__(self, cfg: Any = None, *, pool_index: int | None = None,
                 names: dict[int, str] | None = None, max_trades: int = 200_000,
                 hold_ms: int | None = None):
        if hold_ms is None:
            hold_ms = getattr(cfg, "merge_hold_ms", None)
        self.merge = TimeMerge(hold_ms) if hold_ms is not None else None
        self.fund: InsuranceFund | None = None  # the pool's last balance read
        if pool_index is None:
            pool_index = getattr(cfg, "pool_index", None)
        # -1 in [venues.lighter] means "read systemConfig": unknown until its answer is seen.
        self.pool_index = pool_index if pool_index is not None and pool_index >= 0 else None
        self.names: dict[int, str] = dict(names or {})
        self._named: set[int] = set()  # ids whose name an event already used: fixed for good
        self._market_of: dict[str, int] = {}  # event coin name -> market id
        self.seen = SeenSet(max_trades)
        self._marks: dict[int, tuple[list[int], list[float]]] = {}
        self.rejected: Counter = Counter()
        self.stats: Counter = Counter()
        self._last_seen: dict[str, int] = {}  # src -> receive time of its last frame
        self._down: dict[str, int] = {}  # src -> receive time it closed

    # ---- names and marks
    def coin(self, market_id: int) -> str:
        """The market's name in events: its symbol when known before first use, else the id."""
        if market_id not in self._named:
            self._named.add(market_id)
            self.names.setdefault(market_id, str(market_id))
            self._market_of[self.names[market_id]] = market_id
        return self.names[market_id]

    def learn_symbol(self, market_id: int, symbol: Any) -> None:
        if isinstance(symbol, str) and symbol and market_id not in self._named:
            self.names[market_id] = symbol

    def mark_at(self, market_id: int, t_ms: int) -> float | None:
        """M(t): the last mark of the market with time ≤ t, or None."""
        hist = self._marks.get(market_id)
        if hist is None:
            return None
        times, pxs = hist
        i = bisect.bisect_right(times, t_ms) - 1
        return pxs[i] if i >= 0 else None

    def _add_mark(self, market_id: int, t_ms: int, px: float) -> None:
        times, pxs = self._marks.setdefault(market_id, ([], []))
        if not times or t_ms >= times[-1]:
            times.append(t_ms)
            pxs.append(px)
        else:
            i = bisect.bisect_right(times, t_ms)
            times.insert(i, t_ms)
            pxs.insert(i, px)
        if len(times) > MAX_MARKS_PER_MARKET:
            del times[:len(times) - MAX_MARKS_PER_MARKET]
            del pxs[:len(pxs) - MAX_MARKS_PER_MARKET]

    # ---- capture records
    def parse(self, record: Any) -> list[Event]:
        """One ``adlmon.io.capture.CaptureRecord`` -> events (``ParseError`` on a bad frame)."""
        return self.feed(self._record(record), record.t_ms)

    def feed(self, events: list[Event], t_ms: int) -> list[Event]:
        """Events parsed from an input received at ``t_ms`` -> the events released now."""
        return self._marked(self.merge.add(events, t_ms)) if self.merge is not None else events

    def tick(self, now_ms: int) -> list[Event]:
        """Live, between inputs: what the merge may release by now."""
        return self._marked(self.merge.tick(now_ms)) if self.merge is not None else []

    def finish(self) -> list[Event]:
        """The input ended: every event still held, in order."""
        return self._marked(self.merge.flush()) if self.merge is not None else []

    def _marked(self, events: list[Event]) -> list[Event]:
        """Released ADL and liquidation fills take M(t) again: a mark ≤ t that came on
        another connection after the trade (within the hold) is in the history now."""
        for i, e in enumerate(events):
            liq = e.liquidation if e.__class__ is Fill else None
            if liq is None:
                continue
            m = self.mark_at(self._market_of.get(e.coin, -1), e.time_ms)
            if m is not None and m != liq.mark_px:
                if liq.mark_px != liq.mark_px and e.kind == ADL:  # was NaN: now known
                    self.stats["adl_without_mark"] -= 1
                events[i] = replace(e, liquidation=replace(liq, mark_px=m))
        return events

    def _record(self, record: Any) -> list[Event]:
        kind = record.kind
        if kind == WS:
            return self.ws_frame(decode_frame(record.frame), record.t_ms, record.src)
        if kind == REST:
            req = record.extra.get("req")
            if not isinstance(req, str):
                raise ParseError("missing_field", "rest record without 'req'")
            return self.rest_answer(req, decode_frame(record.frame), record.t_ms)
        if kind in (CAPTURE_OPEN, CAPTURE_CLOSE):
            return self.connection(kind == CAPTURE_OPEN, record.src, record.t_ms)
        raise ParseError("unknown_kind", f"capture kind {kind!r:.20}")

    def connection(self, up: bool, src: str, t_ms: int) -> list[Event]:
        """A connection mark. After a close, the next open of the same source gives one
        ``FeedGap`` per channel from its last frame to the reopening (WsSession's rule)."""
        if not up:
            self._down[src] = self._last_seen.get(src, t_ms)
            return []
        since = self._down.pop(src, None)
        if since is None:
            return []
        return [FeedGap(VENUE, ch, since, t_ms, "reconnect") for ch in CHANNELS]

    def ws_frame(self, obj: dict, t_ms: int, src: str = "") -> list[Event]:
        """One decoded websocket frame received at ``t_ms`` (local ms)."""
        self._last_seen[src] = t_ms
        head, family = frame_family(obj)
        if head in CONTROL_TYPES and not family:
            return []
        if head not in ("subscribed", "update"):
            raise ParseError("unknown_variant", f"frame type {obj.get('type')!r:.40}")
        if family == TRADE_CHANNEL:
            trades = []
            for key in ("trades", "liquidation_trades"):
                arr = obj.get(key)
                if arr is None:
                    continue
                if not isinstance(arr, list):
                    raise ParseError("bad_value", f"trade frame: {key!r} is not an array")
                trades += arr
            return self._trades(trades)
        if family == MARKET_STATS_CHANNEL:
            return self._market_stats(obj, t_ms)
        if head == "subscribed":
            return []  # the ack of a channel adlmon does not read
        raise ParseError("unknown_variant", f"frame type {obj.get('type')!r:.40}")

    def rest_answer(self, req: str, obj: dict, t_ms: int) -> list[Event]:
        """One REST answer (``req`` = path and query) received at ``t_ms``."""
        path, query = _rest_path(req)
        name = path.rsplit("/", 1)[-1]
        if name in ("recentTrades", "trades"):
            arr = obj.get("trades")
            if not isinstance(arr, list):
                raise ParseError("missing_field", f"{name}: 'trades' is not an array")
            # Newest first on the wire; the engine wants time order.
            return self._trades(sorted(arr, key=_trade_time))
        if name in ("orderBooks", "orderBookDetails"):
            books = obj.get("order_books") if name == "orderBooks" else obj.get("order_book_details")
            if not isinstance(books, list):
                raise ParseError("missing_field", f"{name}: order books are not an array")
            for b in books:
                if isinstance(b, dict):
                    try:
                        self.learn_symbol(_int(b.get("market_id"), "market_id"), b.get("symbol"))
                    except ParseError as exc:
                        self.rejected[exc.reason] += 1
            return []
        if name == "systemConfig":
            idx = obj.get("liquidity_pool_index")
            if idx is None:
                raise ParseError("missing_field", "systemConfig: 'liquidity_pool_index' is missing")
            self.pool_index = _int(idx, "liquidity_pool_index")
            return []
        if name == "account":
            return self._accounts(obj, t_ms)
        raise ParseError("unknown_variant", f"REST answer of {path!r:.60}")

    # ---- pieces
    def _trades(self, arr: list) -> list[Event]:
        out: list[Event] = []
        for obj in arr:
            try:
                tr = decode_trade(obj)
            except ParseError as exc:
                self.rejected[exc.reason] += 1
                continue
            if not self.seen.add(tr.trade_id):
                self.stats["duplicates"] += 1
                continue
            mark = self.mark_at(tr.market_id, tr.time_ms) if tr.type in (
                DELEVERAGE, LIQUIDATION_TYPE) else None
            out += trade_fills(tr, self.coin(tr.market_id), mark, self.stats)
        return out

    def _market_stats(self, obj: dict, t_ms: int) -> list[Event]:
        ts = obj.get("timestamp")
        if ts is None:
            self.stats["marks_at_receive_time"] += 1
            t = t_ms
        else:
            t = _int(ts, "timestamp")
        out: list[Event] = []
        for ms in market_stats_entries(obj):
            try:
                mid = _int(ms.get("market_id"), "market_id")
                mark = ms.get("mark_price")
                if mark is None or mark == "":
                    raise ParseError("missing_field", "market_stats: 'mark_price' is missing")
                px = number(mark, "mark_price")
                if px <= 0.0:
                    raise ParseError("bad_value", f"market_stats: mark_price {px} must be > 0")
                index = _opt(ms, "index_price")
            except ParseError as exc:
                self.rejected[exc.reason] += 1
                continue
            self.learn_symbol(mid, ms.get("symbol"))
            self._add_mark(mid, t, px)
            out.append(Mark(VENUE, self.coin(mid), px, index, t))
        return out

    def _accounts(self, obj: dict, t_ms: int) -> list[Event]:
        accts = obj.get("accounts")
        if not isinstance(accts, list):
            raise ParseError("missing_field", "account: 'accounts' is not an array")
        out: list[Event] = []
        for a in accts:
            try:
                out += self._account(a, t_ms)
            except ParseError as exc:
                self.rejected[exc.reason] += 1
        return out

    def _account(self, a: Any, t_ms: int) -> list[Event]:
        if not isinstance(a, dict):
            raise ParseError("bad_value", "account is not an object")
        idx = a.get("index", a.get("account_index"))
        index = _int(idx, "account index")
        value = _opt(a, "total_asset_value")
        positions = []
        for p in a.get("positions") or ():
            if not isinstance(p, dict):
                raise ParseError("bad_value", "account position is not an object")
            size = number(_req(p, "position"), "position")
            if size == 0.0:
                continue
            sign = number(_req(p, "sign"), "sign")  # 1 long, -1 short
            signed = abs(size) * (-1.0 if sign < 0 else 1.0)
            entry = number(_req(p, "avg_entry_price"), "avg_entry_price")
            pv = _opt(p, "position_value")
            mid = _int(_req(p, "market_id"), "market_id")
            self.learn_symbol(mid, p.get("symbol"))
            positions.append(PositionSnapshot(self.coin(mid), signed, entry,
                                              abs(pv) / abs(size) if pv else None))
        out: list[Event] = [AccountSnapshot(VENUE, str(index), value, tuple(positions), t_ms)]
        if self.pool_index is not None and index == self.pool_index and value is not None:
            self.fund = InsuranceFund(VENUE, POOL_LABEL, value, t_ms)
            out.append(self.fund)
        return out


def _trade_time(obj: Any) -> int:
    if isinstance(obj, dict):
        ts = obj.get("timestamp")
        if ts.__class__ is int:
            return ts
        if isinstance(ts, str) and ts.isdigit():
            return int(ts)
    return 0

