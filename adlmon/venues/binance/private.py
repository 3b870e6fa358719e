"""Binance's user data stream, your own ADL (venues.md §2 "ADL announcement"; issue 11).

- ``ORDER_TRADE_UPDATE``: an execution (``x == "TRADE"``, ``l > 0``) is a fill of
  yours at ``L`` for ``l``; client id ``c == "adl_autoclose"`` marks an ADL fill,
  ``autoclose-…`` a liquidation; ``rp`` is its realised profit, ``n`` the fee.
  The mark (B) is the last public ``markPrice`` of the symbol.
- ``ACCOUNT_UPDATE``: positions ``a.P[] {s, pa, ep}`` (signed size, entry).
- REST ``/fapi/v1/adlQuantile`` (USER_DATA): ``adlQuantile`` per symbol and side,
  kept as your rank (0-4, low -> high).
"""

from __future__ import annotations

from typing import Any

from adlmon.events import BUY, SELL, Event, ParseError
from adlmon.venues.fields import choice, lst, ms, number, obj, opt_number, positive, req, text
from adlmon.venues.ownfills import OwnPositions

EVENTS = ("ORDER_TRADE_UPDATE", "ACCOUNT_UPDATE")
_SIDES = {"BUY": BUY, "SELL": SELL}


def parse_private(own: OwnPositions, o: dict) -> list[Event]:
    e = o.get("e")
    if e == "ACCOUNT_UPDATE":
        for p in lst(req(obj(req(o, "a", e), "a"), "P", e), "a.P"):
            p = obj(p, "position")
            s = text(req(p, "s", "position"), "position s")
            own.set_position(s, number(req(p, "pa", s), f"{s} pa"), opt_number(p.get("ep"), f"{s} ep"))
        return []
    if e == "ORDER_TRADE_UPDATE":
        od = obj(req(o, "o", e), "o")
        s = text(req(od, "s", e), "order s")
        qty = opt_number(od.get("l"), f"{s} l") or 0.0
        if od.get("x") != "TRADE" or qty <= 0:
            return []  # NEW / CANCELED / EXPIRED ... : no execution
        side = choice(req(od, "S", s), _SIDES, f"order {s} S")
        cid = str(od.get("c", ""))
        return [own.fill(s, side, positive(req(od, "L", s), f"{s} L"), positive(qty, f"{s} l"),
                         ms(od.get("T", o.get("E")), f"{s} T"), f"{od.get('i', '')}-{od.get('t', '')}",
                         adl=cid.startswith("adl_autoclose"), liquidation=cid.startswith("autoclose-"),
                         closed_pnl=opt_number(od.get("rp"), f"{s} rp"),
                         fee=opt_number(od.get("n"), f"{s} n") or 0.0, label=cid)]
    raise ParseError("unknown_channel", f"user data event {e!r:.40}")


def parse_adl_quantile(own: OwnPositions, items: Any, t_ms: int) -> list[Event]:
    for r in lst(items, "adlQuantile"):
        r = obj(r, "adlQuantile item")
        s = text(req(r, "symbol", "adlQuantile"), "adlQuantile symbol")
        own.set_rank(s, dict(obj(req(r, "adlQuantile", s), f"{s} adlQuantile")), t_ms)
    return []
