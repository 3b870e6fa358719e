"""Bybit's private stream, your own ADL (venues.md §3 "ADL rank (private)"; issue 11).

- ``execution``: every fill; ``execType: "AdlTrade"`` is an ADL fill of yours
  (``BustTrade`` a takeover liquidation); ``side`` is the fill's side,
  ``markPrice`` the mark at the fill (B), ``execPnl`` its realised PnL when sent.
- ``position``: size (``side`` Buy = long), ``avgPrice`` and ``adlRankIndicator``
  (0 = no position, 1-5 low -> high).
- ``auth`` answers: ``success: false`` is ``ParseError("venue_error")``.
"""

from __future__ import annotations

from adlmon.events import BUY, SELL, Event, ParseError
from adlmon.venues.fields import choice, lst, ms, number, obj, opt_number, positive, req, text
from adlmon.venues.ownfills import OwnPositions

CHANNELS = ("execution", "position")
_SIDES = {"Buy": BUY, "Sell": SELL}


def parse_private(own: OwnPositions, o: dict) -> list[Event]:
    topic = o["topic"]
    ch = str(topic).split(".", 1)[0]
    items = lst(req(o, "data", ch), f"{ch} data")
    if ch == "position":
        for p in items:
            p = obj(p, "position")
            s = text(req(p, "symbol", "position"), "position symbol")
            size = number(req(p, "size", s), f"{s} size")
            own.set_position(s, -size if p.get("side") == "Sell" else size,
                             opt_number(p.get("avgPrice"), f"{s} avgPrice"))
            if p.get("adlRankIndicator") is not None:
                own.set_rank(s, int(number(p["adlRankIndicator"], f"{s} adlRankIndicator")),
                             ms(p.get("updatedTime") or o.get("creationTime") or 0, f"{s} updatedTime"))
        return []
    if ch == "execution":
        out: list[Event] = []
        for x in items:
            x = obj(x, "execution")
            s = text(req(x, "symbol", "execution"), "execution symbol")
            side = choice(req(x, "side", s), _SIDES, f"execution {s} side")
            et = str(x.get("execType", ""))
            if et == "Funding":
                continue  # a funding settlement, not a trade
            out.append(own.fill(
                s, side, positive(req(x, "execPrice", s), f"{s} execPrice"),
                positive(req(x, "execQty", s), f"{s} execQty"), ms(req(x, "execTime", s), f"{s} execTime"),
                text(req(x, "execId", s), f"{s} execId"), adl=et == "AdlTrade", liquidation=et == "BustTrade",
                closed_pnl=opt_number(x.get("execPnl"), f"{s} execPnl"),
                fee=opt_number(x.get("execFee"), f"{s} execFee") or 0.0,
                mark_px=opt_number(x.get("markPrice"), f"{s} markPrice"), label=et))
        return out
    raise ParseError("unknown_channel", f"private topic {topic!r:.40}")
