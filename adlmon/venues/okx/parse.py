"""OKX v5 frames and REST answers -> adlmon events (pure; venues.md §4, venues-wire.md §4).

- ``adl-warning``: two dated parser versions (style.md "dated versions"), picked
  by the push's ``ts``: :func:`adl_warning_v1` until :data:`CUTOVER_MS`
  (2026-06-09 00:00 UTC: ``normal`` pushed every minute, ``maxBal``, ``adlBal``,
  ``adlRecBal``, ``decRate``, ``adlRate``, ``adlRecRate``, ``adlType`` populated)
  and :func:`adl_warning_v2` from then on (pushed only in ``warning``/``adl``;
  the retired fields are ``""`` and not read). Both give one
  ``AdlSignal(symbol=instFamily, state)`` per item and an ``InsuranceFund``
  (pool = instFamily) from ``bal``, the only live OKX fund balance.
- ``liquidation-orders`` -> ``LiquidationOrder`` per detail: ``sz`` is in
  contracts, times ``ctVal`` of the instrument (REST ``/api/v5/public/instruments``
  answers, which this parser keeps); ``side`` is the order side; ``bkLoss`` is
  the fund's direct draw, in ``ccy`` (USD for ``""``/USDT/USDC, else × ``bkPx``);
  ``pool`` = instFamily.
- ``mark-price`` -> ``Mark``.
- REST ``/api/v5/public/insurance-fund`` -> ``InsuranceFund`` (``total``, USD).
- Private ``orders`` / ``positions`` (your own ADL) go to :mod:`.private`.
- Control: the text ``pong``, ``event: subscribe``; ``event: error`` is
  ``ParseError("venue_error")``.
"""

from __future__ import annotations

from typing import Any, Callable

from adlmon.events import BUY, SELL, AdlSignal, Event, InsuranceFund, LiquidationOrder, Mark, ParseError
from adlmon.venues.fields import RecordParser, choice, loads, lst, ms, number, obj, opt_number, req, text
from adlmon.venues.okx.private import CHANNELS as PRIVATE_CHANNELS
from adlmon.venues.okx.private import parse_private
from adlmon.venues.ownfills import OwnPositions

VENUE = "okx"
CUTOVER_MS = 1780963200000  # 2026-06-09T00:00:00Z: the current adl-warning shape
CHANNELS = ("adl-warning", "liquidation-orders", "mark-price")
_STATES_V1 = ("normal", "warning", "adl")
_STATES_V2 = ("warning", "adl")
_V1_NUMBERS = ("maxBal", "adlBal", "adlRecBal", "decRate", "adlRate", "adlRecRate")
_USD = ("", "USD", "USDT", "USDC")
_SIDES = {"buy": BUY, "sell": SELL}


def _adl_common(item: dict, states: tuple[str, ...]) -> tuple[str, str, float | None, int]:
    fam = text(req(item, "instFamily", "adl-warning"), "adl-warning instFamily")
    state = req(item, "state", "adl-warning")
    if state not in states:
        raise ParseError("bad_value", f"adl-warning {fam}: state {state!r:.20}")
    return fam, state, opt_number(item.get("bal"), "adl-warning bal"), ms(req(item, "ts", fam), f"{fam} ts")


def adl_warning_v1(item: dict) -> list[Event]:
    """The shape before 2026-06-09 (venues.md §4): every field populated."""
    fam, state, bal, t = _adl_common(item, _STATES_V1)
    details = {k: opt_number(item.get(k), f"adl-warning {k}") for k in _V1_NUMBERS}
    details.update(adlType=str(item.get("adlType") or ""), ccy=str(item.get("ccy") or ""),
                   bal=bal, shape="v1")
    return _adl_events(fam, state, bal, t, details)


def adl_warning_v2(item: dict) -> list[Event]:
    """The current shape (venues-wire.md §4.2): live ``instType, instFamily, state,
    bal, ts``; every other key ``""`` and ignored."""
    fam, state, bal, t = _adl_common(item, _STATES_V2)
    return _adl_events(fam, state, bal, t, {"bal": bal, "shape": "v2"})


def _adl_events(fam: str, state: str, bal: float | None, t: int, details: dict) -> list[Event]:
    out: list[Event] = [AdlSignal(VENUE, fam, state, t, details)]
    if bal is not None:
        out.append(InsuranceFund(VENUE, fam, bal, t, (fam,)))
    return out


# (until ms, version): the first whose bound lies after the push's ts.
ADL_WARNING_VERSIONS: tuple[tuple[int | None, Callable[[dict], list[Event]]], ...] = (
    (CUTOVER_MS, adl_warning_v1), (None, adl_warning_v2))


def adl_warning_version(t_ms: int) -> Callable[[dict], list[Event]]:
    for until, fn in ADL_WARNING_VERSIONS:
        if until is None or t_ms < until:
            return fn
    raise AssertionError("the last version has no end")


class OkxParser(RecordParser):
    """OKX frames and REST answers -> events; keeps ``ctVal`` per instrument.
    ``parse(record)`` is the face's ``CaptureParser``."""

    def __init__(self, ct_val: dict[str, float] | None = None):
        self.ct_val: dict[str, float] = dict(ct_val or {})
        self.own = OwnPositions(VENUE)

    def parse_frame(self, raw: bytes | str) -> list[Event]:
        if raw in (b"pong", "pong"):
            return []
        return self.parse_obj(loads(raw))

    def parse_obj(self, o: Any) -> list[Event]:
        o = obj(o, "frame")
        if "event" in o:
            if o["event"] == "error":
                raise ParseError("venue_error", f"venue error {o.get('code')}: {str(o.get('msg'))[:200]}")
            return []  # subscribe / unsubscribe / login ack, notice
        arg = obj(req(o, "arg", "frame"), "arg")
        ch = arg.get("channel")
        data = lst(req(o, "data", str(ch)), f"{ch} data")
        if ch == "adl-warning":
            out: list[Event] = []
            for item in data:
                item = obj(item, "adl-warning item")
                out += adl_warning_version(ms(req(item, "ts", "adl-warning"), "adl-warning ts"))(item)
            return out
        if ch == "liquidation-orders":
            return [e for item in data for e in self._liquidations(obj(item, "liquidation item"))]
        if ch == "mark-price":
            marks = [self._mark(obj(item, "mark-price item")) for item in data]
            self.own.marks.update((m.coin, m.mark_px) for m in marks)
            return marks
        if ch in PRIVATE_CHANNELS:
            return parse_private(self.own, self.ct_val, ch, data)
        raise ParseError("unknown_channel", f"channel {ch!r:.60}")

    def _liquidations(self, item: dict) -> list[LiquidationOrder]:
        inst = text(req(item, "instId", "liquidation-orders"), "liquidation instId")
        fam = str(item.get("instFamily") or item.get("uly") or "") or None
        ct = self.ct_val.get(inst)
        if ct is None:
            raise ParseError("missing_field", f"liquidation-orders {inst}: no ctVal known yet")
        out = []
        for d in lst(req(item, "details", inst), f"{inst} details"):
            d = obj(d, f"{inst} detail")
            side = choice(req(d, "side", inst), _SIDES, f"{inst} side")
            bk = number(req(d, "bkPx", inst), f"{inst} bkPx")
            loss = opt_number(d.get("bkLoss"), f"{inst} bkLoss")
            if loss is not None and str(d.get("ccy") or "") not in _USD:
                loss = number(loss * bk, f"{inst} bkLoss in USD")  # a coin-margined loss, in the coin
            qty = number(number(req(d, "sz", inst), f"{inst} sz") * ct, f"{inst} sz x ctVal")
            out.append(LiquidationOrder(VENUE, inst, side, qty,
                                        bk, None, ms(req(d, "ts", inst), f"{inst} ts"), loss, fam))
        return out

    @staticmethod
    def _mark(item: dict) -> Mark:
        inst = text(req(item, "instId", "mark-price"), "mark-price instId")
        return Mark(VENUE, inst, number(req(item, "markPx", inst), f"{inst} markPx"), None,
                    ms(req(item, "ts", inst), f"{inst} ts"))

    # ------------------------------------------------------------------- REST
    def parse_rest(self, req_path: str, body: bytes | str) -> list[Event]:
        o = obj(loads(body), "REST answer")
        if o.get("code") not in ("0", 0):
            raise ParseError("venue_error", f"{req_path}: code {o.get('code')!r:.20} {str(o.get('msg'))[:200]}")
        data = lst(req(o, "data", req_path), f"{req_path} data")
        path = req_path.partition("?")[0]
        if path.endswith("/api/v5/public/instruments"):
            for it in data:
                it = obj(it, "instrument")
                inst = text(req(it, "instId", "instrument"), "instrument instId")
                ct = opt_number(it.get("ctVal"), f"{inst} ctVal")
                if ct is not None and ct > 0:
                    self.ct_val[inst] = ct
            return []
        if path.endswith("/api/v5/public/insurance-fund"):
            out: list[Event] = []
            for it in data:
                it = obj(it, "insurance-fund item")
                fam = text(req(it, "instFamily", "insurance-fund"), "insurance-fund instFamily")
                details = [obj(d, f"{fam} detail") for d in lst(it.get("details") or [], f"{fam} details")]
                stamps = [ms(req(d, "ts", fam), f"{fam} ts") for d in details]
                if not stamps:
                    continue  # no dated row: nothing to place in time
                out.append(InsuranceFund(VENUE, fam, number(req(it, "total", fam), f"{fam} total"),
                                         max(stamps), (fam,)))
            return out
        raise ParseError("unknown_channel", f"REST path {path!r:.60}")
