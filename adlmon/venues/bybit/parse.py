"""Bybit v5 frames and REST answers -> adlmon events (pure; venues.md §3, venues-wire.md §3).

Public topics:
- ``adlAlert.{USDT|USDC|inverse}`` (1 s snapshot; ``data`` or ``list``; numbers or
  strings alike) -> one ``AdlSignal(state="alert")`` per symbol, ``time_ms`` the
  push's ``ts``, ``details`` the trigger inputs as floats (``b, pr, i_pr, adl_tt,
  adl_sr``; ``mb`` is retired, ``""``). The trigger itself is :mod:`.rules`.
- ``insurance.{coin}`` (isolated pools only) and REST ``/v5/market/insurance``
  -> ``InsuranceFund`` per pool: pool ``coin`` for a shared pool (several
  symbols), ``coin:SYMBOL`` for an isolated one. USD: the REST ``value``; on the
  websocket the balance itself for USDT/USDC pools, balance × the coin's last
  ``{coin}USD`` mark for inverse ones (skipped until a mark is known).
- ``allLiquidation.{symbol}`` -> ``LiquidationOrder``: ``S`` is the *position*
  side (``Buy`` = a long was liquidated, so the order is a ``sell``), ``p`` the
  bankruptcy price, ``v`` the size; no fill price and no loss figure.
- ``tickers.{symbol}`` (snapshot then deltas) -> ``Mark`` when ``markPrice`` is in.
- REST ``/v5/market/adlAlert`` (camelCase, strings) -> the same ``AdlSignal`` s.

Private topics (``execution``, ``position``: your own ADL) go to :mod:`.private`,
with the same parser's marks. Control frames (pong,
subscribe acks) give no events; ``success: false`` is ``ParseError("venue_error")``.
"""

from __future__ import annotations

from typing import Any

from adlmon.events import BUY, SELL, AdlSignal, Event, InsuranceFund, LiquidationOrder, Mark, ParseError
from adlmon.venues.bybit.private import CHANNELS as PRIVATE_CHANNELS
from adlmon.venues.bybit.private import parse_private
from adlmon.venues.fields import RecordParser, choice, loads, lst, ms, number, obj, opt_number, req, text
from adlmon.venues.ownfills import OwnPositions

VENUE = "bybit"
CHANNELS = ("adlAlert", "insurance", "allLiquidation", "tickers")
_STABLE = ("USDT", "USDC")
_ALERT_KEYS = (("b", "balance"), ("pr", "pnlRatio"), ("i_pr", "insurancePnlRatio"),
               ("adl_tt", "adlTriggerThreshold"), ("adl_sr", "adlStopRatio"))
_POS_SIDE_TO_ORDER = {"Buy": SELL, "Sell": BUY}  # a long (Buy) is closed by a sell


def channel_of(topic: str) -> str:
    return topic.split(".", 1)[0]


def pool_name(coin: str, symbols: tuple[str, ...]) -> str:
    return f"{coin}:{symbols[0]}" if len(symbols) == 1 else coin


def _symbols(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(text(s, where) for s in value)
    if not isinstance(value, str):
        raise ParseError("bad_value", f"{where}: symbols {value!r:.40}")
    return tuple(s for s in value.split(",") if s)


def alert_signal(row: Any, t: int, rest: bool = False) -> AdlSignal:
    """One symbol of ``adlAlert`` (websocket short keys, or REST camelCase)."""
    row = obj(row, "adlAlert item")
    where = f"adlAlert {row.get('symbol' if rest else 's')!r:.30}"
    symbol = text(req(row, "symbol" if rest else "s", where), f"{where} symbol")
    details = {k: number(req(row, r if rest else k, where), f"{where} {k}") for k, r in _ALERT_KEYS}
    details["c"] = str(row.get("coin" if rest else "c", ""))
    return AdlSignal(VENUE, symbol, "alert", t, details)


class BybitParser(RecordParser):
    """Frames and REST answers of one Bybit connection set -> events.

    Keeps the last mark per symbol (inverse pool balances to USD); otherwise pure.
    ``parse(record)`` is the face's ``CaptureParser``.
    """

    def __init__(self):
        self.marks: dict[str, float] = {}
        self.own = OwnPositions(VENUE)
        self.own.marks = self.marks

    # -------------------------------------------------------------- websocket
    def parse_frame(self, raw: bytes | str) -> list[Event]:
        return self.parse_obj(loads(raw))

    def parse_obj(self, o: Any) -> list[Event]:
        o = obj(o, "frame")
        if "topic" not in o:
            if o.get("success") is False:
                raise ParseError("venue_error", f"venue error: {str(o.get('ret_msg'))[:200]}")
            if "op" in o:
                return []  # pong / subscribe ack
            raise ParseError("unknown_format", "frame has neither topic nor op")
        topic = text(o["topic"], "topic")
        ch = channel_of(topic)
        if ch in PRIVATE_CHANNELS:
            return parse_private(self.own, o)
        t = ms(req(o, "ts", topic), f"{topic} ts")
        if ch == "adlAlert":
            items = o.get("data") if o.get("data") is not None else o.get("list")
            return [alert_signal(r, t) for r in lst(items, f"{topic} data")]
        if ch == "insurance":
            return [e for r in lst(req(o, "data", topic), f"{topic} data")
                    if (e := self._fund(r, t, None)) is not None]
        if ch == "allLiquidation":
            return [self._liquidation(r) for r in lst(req(o, "data", topic), f"{topic} data")]
        if ch == "tickers":
            d = obj(req(o, "data", topic), f"{topic} data")
            symbol = text(d.get("symbol") or topic.partition(".")[2], f"{topic} symbol")
            mark = opt_number(d.get("markPrice"), f"{topic} markPrice")
            if mark is None:
                return []
            self.marks[symbol] = mark
            return [Mark(VENUE, symbol, mark, opt_number(d.get("indexPrice"), f"{topic} indexPrice"), t)]
        raise ParseError("unknown_channel", f"topic {topic!r:.60}")

    def _fund(self, r: Any, t: int, value: float | None) -> InsuranceFund | None:
        r = obj(r, "insurance item")
        coin = text(req(r, "coin", "insurance"), "insurance coin")
        symbols = _symbols(req(r, "symbols", "insurance"), "insurance")
        balance = number(req(r, "balance", "insurance"), "insurance balance")
        when = ms(r["updateTime"], "insurance updateTime") if r.get("updateTime") else t
        if value is None:
            if coin in _STABLE:
                value = balance
            elif (px := self.marks.get(f"{coin}USD")) is not None:
                value = number(balance * px, f"insurance {coin} balance in USD")
            else:
                return None  # an inverse pool before its coin's first mark
        return InsuranceFund(VENUE, text(pool_name(coin, symbols), "insurance pool"), value, when, symbols)

    @staticmethod
    def _liquidation(r: Any) -> LiquidationOrder:
        r = obj(r, "allLiquidation item")
        side = choice(req(r, "S", "allLiquidation"), _POS_SIDE_TO_ORDER, "allLiquidation S")
        return LiquidationOrder(
            VENUE, text(req(r, "s", "allLiquidation"), "allLiquidation s"), side,
            number(req(r, "v", "allLiquidation"), "allLiquidation v"),
            number(req(r, "p", "allLiquidation"), "allLiquidation p"), None,
            ms(req(r, "T", "allLiquidation"), "allLiquidation T"))

    # ------------------------------------------------------------------- REST
    def parse_rest(self, req_path: str, body: bytes | str) -> list[Event]:
        o = obj(loads(body), "REST answer")
        if o.get("retCode") not in (0, "0"):
            raise ParseError("venue_error", f"{req_path}: retCode {o.get('retCode')!r:.20} "
                             f"{str(o.get('retMsg'))[:200]}")
        res = obj(req(o, "result", req_path), f"{req_path} result")
        stamp = res.get("updatedTime") or res.get("updateTime") or o.get("time")
        t = ms(stamp, f"{req_path} updatedTime")
        items = lst(req(res, "list", req_path), f"{req_path} list")
        path = req_path.partition("?")[0]
        if path.endswith("/v5/market/adlAlert"):
            return [alert_signal(r, t, rest=True) for r in items]
        if path.endswith("/v5/market/insurance"):
            return [e for r in items
                    if (e := self._fund(r, t, opt_number(obj(r, "insurance item").get("value"),
                                                         "insurance value"))) is not None]
        raise ParseError("unknown_channel", f"REST path {path!r:.60}")
