"""OKX's private channels, your own ADL (venues.md §4 "ADL rank (private)"; issue 11).

- ``orders``: a push with a non-empty ``fillSz`` is a fill of yours at ``fillPx``;
  ``category == "adl"`` marks an ADL fill (``full_liquidation`` /
  ``partial_liquidation`` a liquidation); ``fillMarkPx`` is the mark at the fill
  (B), ``fillPnl`` its realised PnL, ``fillFee`` the fee (negative = paid). Sizes
  are contracts × ``ctVal``.
- ``positions``: ``pos`` (contracts, signed in net mode; ``posSide`` short
  negates), ``avgPx`` and ``adl`` (0-5, the newer docs; 1-5 older), kept as rank.
"""

from __future__ import annotations

from adlmon.events import BUY, SELL, Event, ParseError
from adlmon.venues.fields import choice, lst, ms, number, obj, opt_number, positive, req, text
from adlmon.venues.ownfills import OwnPositions

CHANNELS = ("orders", "positions")
_SIDES = {"buy": BUY, "sell": SELL}


def parse_private(own: OwnPositions, ct_val: dict[str, float], ch: str, data: list) -> list[Event]:
    out: list[Event] = []
    for it in lst(data, f"{ch} data"):
        it = obj(it, f"{ch} item")
        inst = text(req(it, "instId", ch), f"{ch} instId")
        ct = ct_val.get(inst)
        if ct is None:
            raise ParseError("missing_field", f"{ch} {inst}: no ctVal known yet")
        if ch == "positions":
            pos = (opt_number(it.get("pos"), f"{inst} pos") or 0.0) * ct
            own.set_position(inst, -abs(pos) if it.get("posSide") == "short" else pos,
                             opt_number(it.get("avgPx"), f"{inst} avgPx"))
            if it.get("adl") not in (None, ""):
                own.set_rank(inst, int(number(it["adl"], f"{inst} adl")),
                             ms(it.get("uTime") or 0, f"{inst} uTime"))
            continue
        sz = opt_number(it.get("fillSz"), f"{inst} fillSz")
        if not sz:
            continue  # an order state change without a fill
        side = choice(req(it, "side", inst), _SIDES, f"orders {inst} side")
        cat = str(it.get("category", ""))
        fee = opt_number(it.get("fillFee"), f"{inst} fillFee") or 0.0
        out.append(own.fill(inst, side, positive(req(it, "fillPx", inst), f"{inst} fillPx"),
                            positive(sz * ct, f"{inst} fillSz"),
                            ms(req(it, "fillTime", inst), f"{inst} fillTime"),
                            str(it.get("tradeId") or it.get("ordId") or ""), adl=cat == "adl",
                            liquidation=cat.endswith("liquidation"),
                            closed_pnl=opt_number(it.get("fillPnl"), f"{inst} fillPnl"), fee=-fee,
                            mark_px=opt_number(it.get("fillMarkPx"), f"{inst} fillMarkPx"), label=cat))
    return out
