"""dYdX v4 indexer frames and REST answers -> adlmon events (pure: no I/O, no clock).

Shapes: venues-wire.md §1.2 (envelope), §1.3 (``v4_trades``), §1.4
(``v4_markets``), §1.5 (``v4_subaccounts``), §1.8 (REST), §1.9 (bank balance).

Definitions (issue 10, DESIGN §4 otherwise):

- **ADL fill**: a trade of ``type == "DELEVERAGED"``, deduplicated on its ``id``,
  except in a market whose status is ``FINAL_SETTLEMENT`` (a delisting close at
  the oracle price, venues-wire §1.6): that one is counted
  (``stats["final_settlement"]``), not a wave fill. ``LIQUIDATED`` trades are
  liquidation fills (the liquidation counters). ``LIMIT`` and
  ``TWAP_SUBORDER`` carry nothing the engine uses (counted in ``stats``).
- **Time**: the trade's ``createdAt`` (ISO-8601, ms).
- **Mark** M(t): the last oracle price with time ≤ t: ``v4_markets``
  ``oraclePrices[m].oraclePrice`` at its ``effectiveAt``, and a snapshot's
  (``subscribed`` or REST ``/v4/perpetualMarkets``) ``oraclePrice`` at the
  frame's receive time. Every one is also a ``Mark`` event.
- **Loser and winner**: the trade's ``side`` is the taker's, i.e. the
  deleveraged (loser's) side: ``BUY`` means a short was deleveraged, so the
  winner's long was closed (the winner's fill is a ``SELL``, s = +1). The
  public trade names no account: the winner is ``winner:<id>`` (every fill its
  own winner, so H is an upper bound of the per-winner figure) and the loser is
  unknown (``liquidated_user`` None: the wave's deficit is unknown, not 0),
  unless a watched subaccount's ``OFFSETTING`` / ``DELEVERAGED`` fill of the
  same ``eventId`` arrived first (venues-wire §1.7 C): then the winner is
  ``<address>/<number>`` with its ``positionSizeBefore`` when given, and the
  loser likewise. The winner's fill has ``closed_pnl`` 0 (not public) and, when
  its position before is unknown, a start position of exactly ``sz`` on the
  closed side (the position is closed to flat: no residue in the ledger).
- The ADL fill's ``liquidation.mark_px`` is M(t_k), so the engine's
  B = Σ|M(t_k) − px_k|·sz_k. With no mark of the market known yet it is NaN
  (counted in ``stats["no_mark"]``): the fill adds nothing to B and the
  engine reports the wave's B as a lower bound (``needed_complete`` false).

The trade ``id`` is 12 bytes big-endian: height, tx index + 2, event index
(§1.3, :func:`decode_trade_id`); a frame's trades are emitted in that order
(REST and snapshots come newest first). ``Fill.tid`` packs them into int64:
``height·2^32 + (tx+2 mod 2^8)·2^24 + (event mod 2^24)``; ``Fill.hash`` keeps the
hex id (the dedupe key).

:class:`DydxParser` holds what frames need across frames (seen ids, market
status, mark history, subaccount fills). :class:`DydxStream` adds the
time-ordered merge of the venue's connections (``adlmon.venues.merge``): it is
the capture parser, and the live sources feed the same class in the same
order (every frame and REST answer at its receive time), so both give the
same events.
Bad input raises ``ParseError`` (reasons ``bad_json``, ``bad_number``,
``bad_value``, ``missing_field``, ``unknown_format``); a frame with some bad
trades among good ones raises :class:`adlmon.events.PartialParseError`
carrying the good ones' events (published, and the frame counted as an error).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import re
from datetime import datetime, timezone
from typing import Any

import orjson

from adlmon.events import (
    ADL, BUY, LIQUIDATION, SELL, AccountSnapshot, Event, Fill, InsuranceFund, Liquidation, Mark,
    ParseError, PartialParseError, PositionSnapshot,
)
from adlmon.validate import number, positive
from adlmon.venues.dedupe import SeenSet
from adlmon.venues.dydx.address import module_address
from adlmon.venues.merge import TimeMerge

VENUE = "dydx"
DELEVERAGED, LIQUIDATED = "DELEVERAGED", "LIQUIDATED"
OTHER_TRADE_TYPES = ("LIMIT", "TWAP_SUBORDER")
TRADE_TYPES = (DELEVERAGED, LIQUIDATED, *OTHER_TRADE_TYPES)
FINAL_SETTLEMENT = "FINAL_SETTLEMENT"
MARKET_STATUSES = ("ACTIVE", "PAUSED", "CANCEL_ONLY", "POST_ONLY", "INITIALIZING", FINAL_SETTLEMENT)
MESSAGE_TYPES = ("connected", "subscribed", "unsubscribed", "channel_data", "channel_batch_data",
                 "pong", "error")
CHANNELS = ("v4_trades", "v4_markets", "v4_subaccounts", "v4_block_height")
WINNER_PREFIX = "winner:"
USDC_DENOM = "ibc/8E27BA2D5493AF5636760E354E46004562C46AB7EC0CC4C1CA14E9E20E2545B5"
BLOCK_TXS_PATH = "/cosmos/tx/v1beta1/txs/block/"  # a node's decoded block (venues-wire §1.7 A)
_PROPOSED_OPERATIONS = re.compile(r"(^|[./])MsgProposedOperations$")
MARK_HISTORY = 4096  # oracle prices kept per market for M(t) lookups
_SIDES = {"BUY": BUY, "SELL": SELL}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


# ----------------------------------------------------------------------------- values

def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def iso_ms(value: Any, field: str = "createdAt") -> int:
    """``"2023-04-04T00:29:19.353Z"`` -> ms since the epoch (UTC; exact, no float)."""
    if value is None:
        raise ParseError("missing_field", f"{field} is missing")
    if not isinstance(value, str) or not 20 <= len(value) <= 40 or not value.isascii():
        raise ParseError("bad_value", f"{field}: {_show(value)} is not an ISO-8601 time")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise ParseError("bad_value", f"{field}: {_show(value)} is not an ISO-8601 time") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    ms = (dt - _EPOCH) // _MS
    if ms < 0:
        raise ParseError("bad_value", f"{field}: {_show(value)} is before 1970")
    return ms


_MS = datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=timezone.utc) - _EPOCH


def ms_iso(ms: int) -> str:
    """The inverse of :func:`iso_ms`: ``"2026-03-04T12:00:01.123Z"``."""
    dt = _EPOCH + ms * _MS
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def decode_trade_id(tid: Any) -> tuple[int, int, int]:
    """(height, tx_index, event_index) of a trade id (venues-wire §1.3)."""
    if not isinstance(tid, str):
        raise ParseError("bad_value" if tid is not None else "missing_field",
                         f"id: {_show(tid)} is not a trade id")
    if len(tid) != 24:
        raise ParseError("unknown_format", f"id: {_show(tid)} is not 24 hex chars (a stale UUID id?)")
    try:
        b = bytes.fromhex(tid)
    except ValueError:
        raise ParseError("bad_value", f"id: {_show(tid)} is not hex") from None
    return (int.from_bytes(b[0:4], "big"), int.from_bytes(b[4:8], "big") - 2,
            int.from_bytes(b[8:12], "big"))


def encode_trade_id(height: int, tx_index: int, event_index: int) -> str:
    return (height.to_bytes(4, "big") + (tx_index + 2).to_bytes(4, "big")
            + event_index.to_bytes(4, "big")).hex()


def packed_tid(height: int, tx_index: int, event_index: int) -> int:
    """The trade id as one int64 (module docstring)."""
    return (height << 32) | (((tx_index + 2) & 0xFF) << 24) | (event_index & 0xFFFFFF)


def event_id_hex(value: Any) -> str:
    """A subaccount fill's ``eventId``: a hex string, or the older ``{"type": "Buffer",
    "data": [bytes]}`` form (venues-wire §1.5)."""
    if isinstance(value, str):
        decode_trade_id(value)
        return value.lower()
    if isinstance(value, dict) and value.get("type") == "Buffer" and isinstance(value.get("data"), list):
        data = value["data"]
        if len(data) != 12 or not all(isinstance(x, int) and not isinstance(x, bool)
                                      and 0 <= x < 256 for x in data):
            raise ParseError("bad_value", f"eventId: {_show(value)} is not 12 bytes")
        return bytes(data).hex()
    raise ParseError("bad_value" if value is not None else "missing_field",
                     f"eventId: {_show(value)} is neither hex nor a Buffer")


def _typed(value: Any, field: str, kind: type, name: str):
    if value is None:
        raise ParseError("missing_field", f"{field} is missing")
    if not isinstance(value, kind):
        raise ParseError("bad_value", f"{field}: {_show(value)} is not {name}")
    return value


def _obj(value: Any, field: str) -> dict:
    return _typed(value, field, dict, "an object")


def _list(value: Any, field: str) -> list:
    return _typed(value, field, list, "an array")


def _ticker(value: Any, field: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 40:
        raise ParseError("bad_value" if value is not None else "missing_field",
                         f"{field}: {_show(value)} is not a market ticker")
    return value


def _subaccount(value: Any, field: str) -> str:
    """``{owner, number}`` -> ``"owner/number"`` (the v4_subaccounts id form)."""
    v = _obj(value, field)
    owner = v.get("owner")
    if not isinstance(owner, str) or not owner:
        raise ParseError("missing_field" if owner is None else "bad_value", f"{field}.owner")
    return f"{owner}/{int(number(v.get('number', 0), field + '.number'))}"


def loads(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ParseError("bad_json", f"not JSON: {exc}") from None


# ----------------------------------------------------------------------------- trades

class Trade:
    """One public trade, validated (``createdAtHeight`` only on REST/snapshots).

    A ``LIMIT`` / ``TWAP_SUBORDER`` trade gives no event: only its id (dedupe, the
    backfill's heights) and type are read, the bulk of a feed at little cost.
    """

    __slots__ = ("id", "height", "tx", "event", "side", "size", "price", "type", "time_ms")

    def __init__(self, obj: Any):
        t = _obj(obj, "trade")
        self.id = t.get("id")
        self.height, self.tx, self.event = decode_trade_id(self.id)
        self.id = self.id.lower()
        kind = t.get("type")
        if kind.__class__ is str and kind in OTHER_TRADE_TYPES:
            self.type = kind
            return
        side = t.get("side")
        if not isinstance(side, str) or side not in _SIDES:
            raise ParseError("bad_value" if side is not None else "missing_field",
                             f"side: {_show(side)} is not BUY or SELL")
        self.side = _SIDES[side]
        self.size = positive(t.get("size"), "size")
        self.price = positive(t.get("price"), "price")
        if kind not in TRADE_TYPES:
            raise ParseError("unknown_format" if isinstance(kind, str) else "missing_field"
                             if kind is None else "bad_value",
                             f"type: {_show(kind)} is not one of {', '.join(TRADE_TYPES)}")
        self.type = kind
        self.time_ms = iso_ms(t.get("createdAt"))
        h = t.get("createdAtHeight")
        if h is not None and number(h, "createdAtHeight") != self.height:
            raise ParseError("bad_value", f"createdAtHeight {_show(h)} disagrees with id {self.id}")

    @property
    def order(self) -> tuple[int, int, int]:
        return (self.height, self.tx, self.event)


# ----------------------------------------------------------------------------- parser

class DydxParser:
    """Frames and REST answers of one dYdX v4 indexer -> events (module docstring).

    ``parse_frame(obj, recv_ms)`` for a decoded websocket frame, ``parse_rest(req,
    obj, recv_ms)`` for a decoded REST answer (``req``: path and query).
    ``stats`` counts what was seen and not turned into events.
    """

    def __init__(self, *, max_seen: int = 500_000, history_of_first_snapshot: bool = False,
                 pools: dict[str, str] | None = None):
        self.pools = dict(pools or {})  # bank address -> pool name (the metric label)
        self.seen = SeenSet(max_seen)
        self.status: dict[str, str] = {}
        self._mark_t: dict[str, list[int]] = {}
        self._mark_p: dict[str, list[float]] = {}
        self.clob_pair: dict[str, str] = {}  # clobPairId -> ticker
        self.atomic_resolution: dict[str, int] = {}
        self.snapshotted: set[str] = set()  # markets whose first trades snapshot was seen
        self.history_of_first_snapshot = history_of_first_snapshot
        self.last_height: dict[str, int] = {}  # ticker -> highest trade height seen
        self.head_height: int | None = None
        self.page_size = 0
        self.page_low_height: int | None = None
        self.offsetting: dict[str, tuple[str, float | None]] = {}  # eventId -> (winner, size before)
        self.deleveraged: dict[str, str] = {}  # eventId -> loser subaccount
        self.blocks: dict[int, list] = {}  # height -> decoded deleveraging fills (block decode)
        self.stats: dict[str, int] = {k: 0 for k in (
            "trades", "adl", "liquidations", "other_trades", "duplicates", "history",
            "final_settlement", "no_mark", "marks", "errors_from_venue", "named_winners")}

    # ------------------------------------------------------------------ marks
    def _mark(self, ticker: str, t: int, px: float) -> Mark:
        ts = self._mark_t.setdefault(ticker, [])
        ps = self._mark_p.setdefault(ticker, [])
        if not ts or t >= ts[-1]:
            ts.append(t)
            ps.append(px)
        else:  # an older price (another connection was faster): keep the history sorted
            i = bisect.bisect_right(ts, t)
            ts.insert(i, t)
            ps.insert(i, px)
        if len(ts) > MARK_HISTORY:
            del ts[: len(ts) - MARK_HISTORY]
            del ps[: len(ps) - MARK_HISTORY]
        self.stats["marks"] += 1
        return Mark(VENUE, ticker, px, px, t)

    def mark_at(self, ticker: str, t: int) -> float | None:
        """M(t): the last oracle price with time ≤ t (None when none is known)."""
        ts = self._mark_t.get(ticker)
        if not ts:
            return None
        i = bisect.bisect_right(ts, t) - 1
        return self._mark_p[ticker][i] if i >= 0 else None

    # ------------------------------------------------------------------ entry points
    def parse_frame(self, obj: Any, recv_ms: int) -> list[Event]:
        msg = _obj(obj, "frame")
        mtype = msg.get("type")
        if mtype in ("connected", "unsubscribed", "pong"):
            return []
        if mtype == "error":
            self.stats["errors_from_venue"] += 1
            return []
        if mtype not in ("subscribed", "channel_data", "channel_batch_data"):
            raise ParseError("unknown_format" if isinstance(mtype, str) else "missing_field",
                             f"type: {_show(mtype)} is not a dYdX message type")
        channel = msg.get("channel")
        if channel not in CHANNELS:
            raise ParseError("unknown_channel" if isinstance(channel, str) else "missing_field",
                             f"channel: {_show(channel)}")
        snapshot = mtype == "subscribed"
        if mtype == "channel_batch_data":
            parts = _list(msg.get("contents"), "contents")
        else:
            parts = [msg.get("contents")]
        ident = msg.get("id")
        out: list[Event] = []
        errors: list[ParseError] = []
        for contents in parts:
            try:
                if channel == "v4_trades":
                    out += self.trades(_ticker(ident, "id"), contents, recv_ms, snapshot)
                elif channel == "v4_markets":
                    out += self.markets(contents, recv_ms, snapshot)
                elif channel == "v4_subaccounts":
                    out += self.subaccount(ident, contents, recv_ms, snapshot)
                else:
                    self._height(contents)
            except PartialParseError as exc:
                out += exc.events
                errors.append(exc)
            except ParseError as exc:
                errors.append(exc)
        return self._finish(out, errors)

    def parse_rest(self, req: str, obj: Any, recv_ms: int) -> list[Event]:
        path = req.partition("?")[0].rstrip("/")
        if path.startswith("/v4/trades/perpetualMarket/"):
            return self.trades(path.rsplit("/", 1)[1], obj, recv_ms, snapshot=True, rest=True)
        if path == "/v4/perpetualMarkets":
            return self.markets(obj, recv_ms, snapshot=True)
        if path == "/v4/height":
            self._height(obj)
            return []
        if path.startswith(BLOCK_TXS_PATH):
            return self.block(path.rsplit("/", 1)[1], obj)
        if path.startswith("/cosmos/bank/v1beta1/balances/"):
            return self.bank_balance(path.rsplit("/", 1)[1], obj, recv_ms)
        raise ParseError("unknown_format", f"REST answer of {_show(req)}: not a dYdX request adlmon makes")

    @staticmethod
    def _finish(out: list[Event], errors: list[ParseError]) -> list[Event]:
        if not errors:
            return out
        first = errors[0]
        if out:
            raise PartialParseError(first.reason, f"{first} ({len(errors)} bad part(s); "
                                    f"{len(out)} events kept)", out)
        raise first

    # ------------------------------------------------------------------ v4_trades
    def trades(self, ticker: str, contents: Any, recv_ms: int, snapshot: bool,
               rest: bool = False) -> list[Event]:
        """``{"trades": [...]}`` of one market (update, snapshot or REST page)."""
        rows = _list(_obj(contents, "contents").get("trades"), "trades")
        good: list[Trade] = []
        errors: list[ParseError] = []
        for raw in rows:
            try:
                good.append(Trade(raw))
            except ParseError as exc:
                errors.append(exc)
        good.sort(key=Trade.order.fget)
        self.page_size = len(rows)  # for the REST backfill loop (rest.py)
        self.page_low_height = good[0].height if good else None
        # The first snapshot of a market is history from before this run (not ours to
        # apply: its marks are unknown); later snapshots and REST pages are backfill.
        history = (snapshot and not rest and ticker not in self.snapshotted
                   and not self.history_of_first_snapshot)
        if snapshot and not rest:
            self.snapshotted.add(ticker)
        out: list[Event] = []
        stats = self.stats
        for tr in good:
            if not self.seen.add(tr.id):
                stats["duplicates"] += 1
                continue
            if tr.height > self.last_height.get(ticker, -1):
                self.last_height[ticker] = tr.height
            stats["trades"] += 1
            if history:
                stats["history"] += 1
                continue
            fill = self._fill(ticker, tr)
            if fill is not None:
                out.append(fill)
        return self._finish(out, errors)

    def _fill(self, ticker: str, tr: Trade) -> Fill | None:
        stats = self.stats
        if tr.type in OTHER_TRADE_TYPES:
            stats["other_trades"] += 1
            return None
        mark = self.mark_at(ticker, tr.time_ms)
        if mark is None:
            stats["no_mark"] += 1
            mark = math.nan  # kept: the engine counts it and marks the wave's B a lower bound
        tid = packed_tid(tr.height, tr.tx, tr.event)
        # The taker (side) is the liquidated / deleveraged account.
        loser_start = tr.size if tr.side == SELL else -tr.size
        if tr.type == LIQUIDATED:
            stats["liquidations"] += 1
            loser = f"liquidated:{ticker}"  # one ledger account per market, not per fill
            return Fill(VENUE, ticker, loser, tr.side, tr.price, tr.size, tr.time_ms, loser_start,
                        LIQUIDATION, 0.0, 0.0, tid, tr.id, Liquidation(loser, mark, "market"),
                        LIQUIDATED)
        if self.status.get(ticker) == FINAL_SETTLEMENT:
            stats["final_settlement"] += 1
            return None
        stats["adl"] += 1
        side = SELL if tr.side == BUY else BUY  # the winner's side
        start = tr.size if side == SELL else -tr.size
        named = self.offsetting.get(tr.id)
        if named is not None:
            stats["named_winners"] += 1
            winner, before = named
            if before is not None and before != 0.0 and (before > 0) == (side == SELL):
                start = before
        else:
            winner = WINNER_PREFIX + tr.id
        loser = self.deleveraged.get(tr.id)
        return Fill(VENUE, ticker, winner, side, tr.price, tr.size, tr.time_ms, start, ADL, 0.0, 0.0,
                    tid, tr.id, Liquidation(loser, mark, "deleveraged"), DELEVERAGED)

    # ------------------------------------------------------------------ v4_markets
    def markets(self, contents: Any, recv_ms: int, snapshot: bool) -> list[Event]:
        """Snapshot ``{"markets": {ticker: market}}`` or update ``{"trading"?, "oraclePrices"?}``."""
        c = _obj(contents, "contents")
        out: list[Event] = []
        errors: list[ParseError] = []
        if snapshot:
            markets = _obj(c.get("markets"), "markets")
            for key, m in markets.items():
                try:
                    out += self._market(key, _obj(m, f"markets.{key}"), recv_ms, with_price=True)
                except ParseError as exc:
                    errors.append(exc)
            return self._finish(out, errors)
        known = False
        trading = c.get("trading")
        if trading is not None:
            known = True
            for key, m in _obj(trading, "trading").items():
                try:
                    out += self._market(key, _obj(m, f"trading.{key}"), recv_ms, with_price=False)
                except ParseError as exc:
                    errors.append(exc)
        prices = c.get("oraclePrices")
        if prices is not None:
            known = True
            for key, p in _obj(prices, "oraclePrices").items():
                try:
                    p = _obj(p, f"oraclePrices.{key}")
                    px = positive(p.get("oraclePrice"), f"oraclePrices.{key}.oraclePrice")
                    t = iso_ms(p.get("effectiveAt"), f"oraclePrices.{key}.effectiveAt")
                    out.append(self._mark(_ticker(key, "oraclePrices key"), t, px))
                except ParseError as exc:
                    errors.append(exc)
        if not known and not errors:
            raise ParseError("unknown_format", "v4_markets update has neither trading nor oraclePrices")
        return self._finish(out, errors)

    def _market(self, key: str, m: dict, recv_ms: int, with_price: bool) -> list[Event]:
        ticker = _ticker(m.get("ticker", key), f"{key}.ticker")
        status = m.get("status")
        if status is not None:
            if status not in MARKET_STATUSES:
                raise ParseError("unknown_format", f"{ticker}.status: {_show(status)}")
            self.status[ticker] = status
        pair = m.get("clobPairId")
        if pair is not None:
            self.clob_pair[str(pair)] = ticker
        res = m.get("atomicResolution")
        if res is not None:
            self.atomic_resolution[ticker] = int(number(res, f"{ticker}.atomicResolution"))
        px = m.get("oraclePrice")
        if with_price and px is not None:
            return [self._mark(ticker, recv_ms, positive(px, f"{ticker}.oraclePrice"))]
        if with_price:
            raise ParseError("missing_field", f"{ticker}.oraclePrice is missing")
        return []

    def _height(self, contents: Any) -> None:
        c = _obj(contents, "contents")
        h = c.get("height", c.get("blockHeight"))
        self.head_height = int(number(h, "height"))

    # ------------------------------------------------------------------ v4_subaccounts
    def subaccount(self, ident: Any, contents: Any, recv_ms: int, snapshot: bool) -> list[Event]:
        """A watched subaccount (venues-wire §1.5): its snapshot -> AccountSnapshot; its
        ``OFFSETTING`` / ``DELEVERAGED`` fills name the winner / loser of that trade id."""
        if not isinstance(ident, str) or "/" not in ident:
            raise ParseError("bad_value", f"id: {_show(ident)} is not address/number")
        c = _obj(contents, "contents")
        out: list[Event] = []
        if snapshot:
            sub = c.get("subaccount")
            if sub is None:
                return []  # a 404: the subaccount does not exist (yet)
            sub = _obj(sub, "subaccount")
            equity = number(sub.get("equity"), "subaccount.equity")
            positions = []
            for ticker, p in _obj(sub.get("openPerpetualPositions", {}),
                                  "openPerpetualPositions").items():
                p = _obj(p, f"openPerpetualPositions.{ticker}")
                size = number(p.get("size"), f"{ticker}.size")
                side = p.get("side")
                if side not in ("LONG", "SHORT"):
                    raise ParseError("bad_value", f"{ticker}.side: {_show(side)}")
                if side == "SHORT" and size > 0:
                    size = -size
                positions.append(PositionSnapshot(_ticker(p.get("market", ticker), "market"), size,
                                                  number(p.get("entryPrice"), f"{ticker}.entryPrice")))
            out.append(AccountSnapshot(VENUE, ident, equity, tuple(positions), recv_ms))
            return out
        errors: list[ParseError] = []
        for f in _list(c.get("fills", []), "fills"):
            try:
                f = _obj(f, "fill")
                eid = event_id_hex(f.get("eventId"))
                kind = f.get("type")
                if kind == "OFFSETTING":
                    before = f.get("positionSizeBefore")
                    size_before = None if before is None else number(before, "positionSizeBefore")
                    if size_before is not None and f.get("positionSideBefore") == "SHORT" and size_before > 0:
                        size_before = -size_before
                    self.offsetting[eid] = (ident, size_before)
                elif kind == DELEVERAGED:
                    self.deleveraged[eid] = ident
            except ParseError as exc:
                errors.append(exc)
        return self._finish(out, errors)

    # ------------------------------------------------------------------ block decode
    def block(self, height: str, obj: Any) -> list[Event]:
        """A node's ``/cosmos/tx/v1beta1/txs/block/{h}`` -> the deleveraging matches of the
        block (venues-wire §1.7 A), kept by height for :class:`DydxStream` to name the
        winner and loser of that block's DELEVERAGED trades. No events of its own."""
        if not height.isdigit():
            raise ParseError("bad_value", f"block height {_show(height)}")
        ops = []
        for tx in _list(_obj(obj, "block answer").get("txs"), "txs"):
            body = _obj(_obj(tx, "tx").get("body"), "tx.body")
            for msg in _list(body.get("messages"), "messages"):
                msg = _obj(msg, "message")
                if not _PROPOSED_OPERATIONS.search(str(msg.get("@type", ""))):
                    continue
                for op in _list(msg.get("operations_queue"), "operations_queue"):
                    m = _obj(op, "operation").get("match")
                    d = m.get("match_perpetual_deleveraging") if isinstance(m, dict) else None
                    if d is None:
                        continue
                    d = _obj(d, "match_perpetual_deleveraging")
                    loser = _subaccount(d.get("liquidated"), "liquidated")
                    pid = str(int(number(d.get("perpetual_id", 0), "perpetual_id")))
                    for f in _list(d.get("fills"), "fills"):
                        f = _obj(f, "fill")
                        ops.append([pid, int(number(f.get("fill_amount"), "fill_amount")),
                                    _subaccount(f.get("offsetting_subaccount_id"), "offsetting"),
                                    loser, False])
        self.blocks[int(height)] = ops
        return []

    def _name_from_block(self, fill: Fill, ops: list) -> Fill:
        """The block's first unused deleveraging fill of the same perpetual and amount."""
        res = self.atomic_resolution.get(fill.coin)
        pids = {p for p, t in self.clob_pair.items() if t == fill.coin}
        if res is None or not pids:
            return fill
        for op in ops:
            if op[4] or op[0] not in pids:
                continue
            if abs(op[1] * 10.0 ** res - fill.sz) <= 1e-9 * fill.sz:
                op[4] = True
                self.stats["named_winners"] += 1
                liq = dataclasses.replace(fill.liquidation, liquidated_user=op[3])
                return dataclasses.replace(fill, user=op[2], liquidation=liq)
        return fill

    # ------------------------------------------------------------------ insurance fund
    def bank_balance(self, address: str, obj: Any, recv_ms: int) -> list[Event]:
        """``/cosmos/bank/v1beta1/balances/{addr}`` -> the USDC balance (micro-USDC, §1.9)."""
        balances = _list(_obj(obj, "bank answer").get("balances"), "balances")
        amount = 0.0
        for b in balances:
            b = _obj(b, "balance")
            if b.get("denom") == USDC_DENOM:
                amount = number(b.get("amount"), "amount") * 1e-6
        return [InsuranceFund(VENUE, self.pools.get(address, address), amount, recv_ms)]


class DydxStream(DydxParser):
    """The venue's frames in arrival order -> events in time order (module docstring).

    ``frame(obj, t)`` / ``rest(req, obj, t)`` live, ``parse(record)`` for a capture
    record (the ``CaptureParser`` of the face), ``tick(now)`` between inputs and
    ``finish()`` at the end. Each returns the events the merge releases; a bad
    input raises ``ParseError``, or ``PartialParseError`` carrying what was
    released (never lost).
    """

    def __init__(self, *, hold_ms: int = 2000, decode_blocks: bool = False,
                 decode_wait_ms: int = 3000, **kw):
        super().__init__(**kw)
        self.merge = TimeMerge(hold_ms)
        # Block decode (venues-wire §1.7 A): an unnamed ADL fill waits (receive time) for its
        # block's answer, at most decode_wait_ms, then goes on unnamed.
        self.decode_blocks = decode_blocks
        self.decode_wait_ms = decode_wait_ms
        self.pending: dict[int, list[tuple[int, Fill]]] = {}  # height -> (received, fill)
        self.wanted: list[int] = []  # heights whose block the sources should fetch
        self.stats["decode_timeouts"] = 0

    def frame(self, obj: Any, t_ms: int) -> list[Event]:
        return self._merged(self.parse_frame, (obj, t_ms), t_ms)

    def rest(self, req: str, obj: Any, t_ms: int) -> list[Event]:
        return self._merged(self.parse_rest, (req, obj, t_ms), t_ms)

    def parse(self, record: Any) -> list[Event]:
        """One capture record (``adlmon.io.capture.CaptureRecord``) -> released events."""
        kind, t = record.kind, record.t_ms
        if kind == "ws":
            return self._merged(lambda: self.parse_frame(loads(record.frame), t), (), t)
        if kind == "rest":
            req = record.extra.get("req", "")
            req = req if isinstance(req, str) else ""
            return self._merged(self._rest_text, (req, record.frame, t), t)
        return self._merged(lambda: [], (), t)  # open / close marks

    def _rest_text(self, req: str, text: str, t_ms: int) -> list[Event]:
        return self.parse_rest(req, loads(text), t_ms)

    def tick(self, now_ms: int) -> list[Event]:
        return self.merge.add(self._expired(now_ms), now_ms)

    def finish(self) -> list[Event]:
        rest = [f for h in self.pending for _t, f in self.pending[h]]
        self.pending.clear()
        return self.merge.add(rest, self.merge.released_until or 0) + self.merge.flush()

    def _expired(self, t_ms: int) -> list[Event]:
        if not self.pending:
            return []
        out = []
        for h in list(self.pending):  # first-arrival order: what expires is a prefix
            waiting = self.pending[h]
            if t_ms - waiting[0][0] >= self.decode_wait_ms:
                out += [f for _t, f in waiting]
                self.stats["decode_timeouts"] += len(waiting)
                del self.pending[h]
        return out

    def _hold_for_block(self, events: list[Event], t_ms: int) -> list[Event]:
        """Unnamed ADL fills wait for their block; fills of a block already decoded are named."""
        out = []
        for e in events:
            if e.__class__ is Fill and e.kind == ADL and e.user.startswith(WINNER_PREFIX):
                h = e.tid >> 32
                ops = self.blocks.get(h)
                if ops is not None:
                    out.append(self._name_from_block(e, ops))
                    continue
                if h not in self.pending:
                    self.pending[h] = []
                    self.wanted.append(h)
                self.pending[h].append((t_ms, e))
            else:
                out.append(e)
        return out

    def _after_block(self, req: str) -> list[Event]:
        path = req.partition("?")[0].rstrip("/")
        if not path.startswith(BLOCK_TXS_PATH):
            return []
        h = int(path.rsplit("/", 1)[1])
        ops = self.blocks.get(h, [])
        return [self._name_from_block(f, ops) for _t, f in self.pending.pop(h, [])]

    def _merged(self, fn, args: tuple, t_ms: int) -> list[Event]:
        before = self._expired(t_ms)  # what a live tick would have released before this input
        try:
            events = fn(*args)
        except PartialParseError as exc:
            events = before + self._held(exc.events, t_ms)
            raise PartialParseError(exc.reason, str(exc), self.merge.add(events, t_ms)) from None
        except ParseError as exc:
            released = self.merge.add(before, t_ms)
            if released:
                raise PartialParseError(exc.reason, str(exc), released) from None
            raise
        if self.decode_blocks and fn in (self.parse_rest, self._rest_text):
            events = events + self._after_block(args[0])
        return self.merge.add(before + self._held(events, t_ms), t_ms)

    def _held(self, events: list[Event], t_ms: int) -> list[Event]:
        return self._hold_for_block(events, t_ms) if self.decode_blocks else events


def stream(cfg: Any) -> DydxStream:
    """A fresh stream for a ``[venues.dydx]`` section (the face's capture parser; the live
    sources use the same): its merge hold and insurance-fund pool names. With block decode
    the merge also holds the decode wait, so a fill released by its block is not late."""
    decode = bool(cfg.node_rest_url)
    return DydxStream(hold_ms=cfg.merge_hold_ms + (cfg.decode_wait_ms if decode else 0),
                      decode_blocks=decode,
                      decode_wait_ms=cfg.decode_wait_ms,
                      pools={module_address(n): n for n in cfg.insurance_funds})
