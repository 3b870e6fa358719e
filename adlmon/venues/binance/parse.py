"""Binance USDⓈ-M frames and REST answers -> adlmon events (pure; venues.md §2,
venues-wire.md §5).

- Raw (``/market/ws/<stream>``) and combined (``/market/stream?streams=…``, each
  frame ``{"stream", "data"}``) frames alike.
- ``forceOrder`` (``!forceOrder@arr``: one object per frame; a list is accepted
  too) -> ``LiquidationOrder``: ``S`` is the order side (``SELL`` = a long was
  liquidated), ``p`` the order (bankruptcy) price, ``ap`` the average fill, qty the
  filled ``z`` (``q`` when nothing filled yet). At most one order per symbol per
  second is pushed: every figure built on this flow is a **lower bound**.
- ``markPriceUpdate`` (``!markPrice@arr@1s``: a JSON array of all symbols) -> ``Mark``.
- REST ``/fapi/v1/insuranceBalance`` (one pool object, or a list of them) ->
  ``InsuranceFund`` per USD-like asset (:data:`USD_ASSETS`) of each pool; the pool
  is ``ASSET:<first symbol of the sorted group>``; other assets (BTC, …) are not
  USD and are skipped.
- REST ``/fapi/v1/symbolAdlRisk`` (object or list) -> ``AdlSignal(state=adlRisk)``.
- The user data stream (``ORDER_TRADE_UPDATE``, ``ACCOUNT_UPDATE``: your own ADL)
  goes to :mod:`.private` with this parser's marks; ``/fapi/v1/adlQuantile`` too.
- Control ``{"result": null, "id": …}`` gives nothing; ``{"code": <0, "msg"}`` is
  ``ParseError("venue_error")``.
"""

from __future__ import annotations

from typing import Any

from adlmon.events import BUY, SELL, AdlSignal, Event, InsuranceFund, LiquidationOrder, Mark, ParseError
from adlmon.venues.binance.private import EVENTS as PRIVATE_EVENTS
from adlmon.venues.binance.private import parse_adl_quantile, parse_private
from adlmon.venues.fields import RecordParser, choice, loads, lst, ms, number, obj, opt_number, req, text
from adlmon.venues.ownfills import OwnPositions

VENUE = "binance"
CHANNELS = ("forceOrder", "markPrice")
USD_ASSETS = ("USDT", "USDC", "FDUSD", "BNFCR")
RISKS = ("high", "medium", "low")
_SIDES = {"BUY": BUY, "SELL": SELL}


def pool_name(asset: str, symbols: tuple[str, ...]) -> str:
    return f"{asset}:{symbols[0]}" if symbols else asset


def _venue_error(o: Any, where: str) -> None:
    if isinstance(o, dict) and "code" in o and "msg" in o and o.get("code") not in (0, 200):
        raise ParseError("venue_error", f"{where}: code {o.get('code')!r:.20} {str(o.get('msg'))[:200]}")


def force_order(o: dict) -> LiquidationOrder:
    od = obj(req(o, "o", "forceOrder"), "forceOrder o")
    s = text(req(od, "s", "forceOrder"), "forceOrder s")
    side = choice(req(od, "S", s), _SIDES, f"forceOrder {s} S")
    filled = opt_number(od.get("z"), f"{s} z")
    qty = filled if filled else number(req(od, "q", s), f"{s} q")
    return LiquidationOrder(VENUE, s, side, qty, number(req(od, "p", s), f"{s} p"),
                            opt_number(od.get("ap"), f"{s} ap") or None,
                            ms(od.get("T", o.get("E")), f"{s} T"))


def mark(o: dict) -> Mark:
    o = obj(o, "markPriceUpdate")
    s = text(req(o, "s", "markPriceUpdate"), "markPriceUpdate s")
    return Mark(VENUE, s, number(req(o, "p", s), f"{s} p"), opt_number(o.get("i"), f"{s} i"),
                ms(req(o, "E", s), f"{s} E"))


def parse_obj(o: Any) -> list[Event]:
    if isinstance(o, dict) and "stream" in o and "data" in o:
        o = o["data"]  # combined stream
    if isinstance(o, list):
        items = o
    elif isinstance(o, dict):
        if "result" in o and "id" in o:
            return []  # SUBSCRIBE answer
        _venue_error(o, "frame")
        items = [o]
    else:
        raise ParseError("bad_value", f"frame: expected an object or a list, got {type(o).__name__}")
    out: list[Event] = []
    for it in items:
        it = obj(it, "frame item")
        e = it.get("e")
        if e == "forceOrder":
            out.append(force_order(it))
        elif e == "markPriceUpdate":
            out.append(mark(it))
        else:
            raise ParseError("unknown_channel", f"event type {e!r:.40}")
    return out


def parse_frame(raw: bytes | str) -> list[Event]:
    return parse_obj(loads(raw))


def channel_of(o: Any) -> str:
    """The data channel of a decoded frame (``forceOrder``/``markPrice``), or ""."""
    if isinstance(o, dict) and "data" in o and "stream" in o:
        o = o["data"]
    first = o[0] if isinstance(o, list) and o else o
    e = first.get("e") if isinstance(first, dict) else None
    return {"forceOrder": "forceOrder", "markPriceUpdate": "markPrice"}.get(e, "")


def parse_rest(req_path: str, body: bytes | str) -> list[Event]:
    o = loads(body)
    _venue_error(o, req_path)
    items = o if isinstance(o, list) else [obj(o, req_path)]
    path = req_path.partition("?")[0]
    out: list[Event] = []
    if path.endswith("/fapi/v1/insuranceBalance"):
        for g in items:
            g = obj(g, "insuranceBalance pool")
            symbols = tuple(sorted(text(s, "insuranceBalance symbol")
                                   for s in lst(req(g, "symbols", "insuranceBalance"), "symbols")))
            for a in lst(req(g, "assets", "insuranceBalance"), "insuranceBalance assets"):
                a = obj(a, "insuranceBalance asset")
                asset = text(req(a, "asset", "insuranceBalance"), "insuranceBalance asset")
                if asset not in USD_ASSETS:
                    continue
                out.append(InsuranceFund(
                    VENUE, text(pool_name(asset, symbols), "insuranceBalance pool"),
                    number(req(a, "marginBalance", asset), f"{asset} marginBalance"),
                    ms(req(a, "updateTime", asset), f"{asset} updateTime"), symbols))
        return out
    if path.endswith("/fapi/v1/symbolAdlRisk"):
        for r in items:
            r = obj(r, "symbolAdlRisk item")
            s = text(req(r, "symbol", "symbolAdlRisk"), "symbolAdlRisk symbol")
            risk = req(r, "adlRisk", s)
            if risk not in RISKS:
                raise ParseError("bad_value", f"symbolAdlRisk {s}: adlRisk {risk!r:.20}")
            out.append(AdlSignal(VENUE, s, risk, ms(req(r, "updateTime", s), f"{s} updateTime")))
        return out
    raise ParseError("unknown_channel", f"REST path {path!r:.60}")


class BinanceParser(RecordParser):
    """Public and user-data frames -> events; keeps the marks and your positions (the
    private stream's fills need both). ``parse(record)`` is the face's ``CaptureParser``."""

    def __init__(self):
        self.own = OwnPositions(VENUE)

    def parse_obj(self, o: Any) -> list[Event]:
        if isinstance(o, dict) and o.get("e") in PRIVATE_EVENTS:
            return parse_private(self.own, o)
        events = parse_obj(o)
        for e in events:
            if e.__class__ is Mark:
                self.own.marks[e.coin] = e.mark_px
        return events

    def parse_frame(self, raw: bytes | str) -> list[Event]:
        return self.parse_obj(loads(raw))

    def parse_rest(self, req_path: str, body: bytes | str) -> list[Event]:
        if req_path.partition("?")[0].endswith("/fapi/v1/adlQuantile"):
            return parse_adl_quantile(self.own, loads(body), 0)
        return parse_rest(req_path, body)
