"""The typed boundary: what a parser may hand to the ledger and the engine (issue 9).

Every venue parser, REST parser, snapshot loader and the config build their
values with these checkers, so one vocabulary states what an event may hold:

- ``number``: a finite float of magnitude at most ``MAX_ABS`` (venue numbers
  are decimal strings or JSON numbers; booleans, nan and ±inf are refused;
  the bound keeps every product and square the counterfactual forms, px·sz,
  D², finite); ``positive`` (prices, sizes): that and at least ``MIN_POSITIVE``
  (so a ratio such as closedPnl·|startPosition|/sz stays finite too);
- ``time_ms``: integer milliseconds in ``[0, MAX_TIME_MS]`` (an int, an ASCII
  digit string or an ISO-8601 UTC timestamp), so a wave's ``time_ms`` array
  fits int64 and every time prints as a date;
- ``ident``: a trade id, an integer in ``[0, 2**63 - 1]`` (the wave's ``tid``
  array is int64);
- ``name``: a non-empty string of at most ``MAX_NAME_CHARS`` (coins, vaults,
  markets: metric label values); ``user``: a non-empty string (an account id,
  a ledger key);
- ``text``: any string (hashes, the venue's labels), ``None`` -> ``""``;
- ``obj`` / ``array``: a JSON object / array; ``field``: a present, non-null key.

Each refusal is a ``ParseError(reason, message)`` whose ``reason`` is one of
``REASONS`` (a bounded metric label) and whose message names the field and the
value. :func:`check_event` states the same rules for a finished event; the
fuzz harness (tests/fuzz) applies it to every event any parser returns.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

from adlmon.events import (
    BUY, FILL_KINDS, SELL, AccountSnapshot, AdlSignal, FeedGap, Fill, Funding, InsuranceFund,
    LedgerUpdate, Liquidation, LiquidationOrder, Mark, ParseError, PositionSnapshot,
)

# 2^47 - 1 ms (year 6429): within what ``datetime`` prints (year 9999), and a shift
# tests it (the parsers' fast paths: ``t >> 47 == 0``).
MAX_TIME_MS = (1 << 47) - 1
INT64_MAX = (1 << 63) - 1
# 1e18: beyond any price, size or USD amount of any venue (the largest token supplies
# are ~1e15 units); px·sz <= 1e36 and (1e18)² = 1e36 stay far from float overflow.
MAX_ABS = 1e18
# 1e-12: below any tick or lot size (Hyperliquid's finest is 1e-8); a ratio over a
# size stays below 1e18·1e18/1e-12 = 1e48.
MIN_POSITIVE = 1e-12
MAX_NAME_CHARS = 256

# The parse-error reasons parsers raise (adlmon_feed_parse_errors_total{reason}).
BAD_JSON = "bad_json"
BAD_NUMBER = "bad_number"
BAD_VALUE = "bad_value"
MISSING_FIELD = "missing_field"
OUT_OF_RANGE = "out_of_range"
UNKNOWN_FORMAT = "unknown_format"
UNKNOWN_CHANNEL = "unknown_channel"
VENUE_ERROR = "venue_error"
REASONS = (BAD_JSON, BAD_NUMBER, BAD_VALUE, MISSING_FIELD, OUT_OF_RANGE, UNKNOWN_FORMAT,
           UNKNOWN_CHANNEL, VENUE_ERROR)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def number(value: Any, field: str) -> float:
    """A finite float from a venue number (usually a decimal string)."""
    if value is True or value is False:
        raise ParseError(BAD_NUMBER, f"{field}: {_show(value)} is not a number")
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError):
        raise ParseError(BAD_NUMBER, f"{field}: {_show(value)} is not a number") from None
    if x - x != 0.0:  # nan or ±inf
        raise ParseError(BAD_NUMBER, f"{field}: {_show(value)} is not a finite number")
    if not -MAX_ABS <= x <= MAX_ABS:
        raise ParseError(OUT_OF_RANGE, f"{field}: {_show(value)} is beyond ±{MAX_ABS:g}")
    return x


def opt_number(value: Any, field: str) -> float | None:
    return None if value is None else number(value, field)


def positive(value: Any, field: str) -> float:
    x = number(value, field)
    if x <= 0.0:
        raise ParseError(BAD_VALUE, f"{field}: {_show(value)} must be > 0")
    if x < MIN_POSITIVE:
        raise ParseError(OUT_OF_RANGE, f"{field}: {_show(value)} is below {MIN_POSITIVE:g}")
    return x


def _in_time_range(t: int, field: str, value: Any) -> int:
    if 0 <= t <= MAX_TIME_MS:
        return t
    raise ParseError(OUT_OF_RANGE, f"{field}: {_show(value)} is outside 0..{MAX_TIME_MS} ms")


def time_ms(value: Any, field: str = "time") -> int:
    """Milliseconds from an int, an ASCII digit string, or an ISO-8601 UTC timestamp
    (node files write ``2025-10-10T21:16:04.831874687``: nanoseconds, no zone)."""
    cls = value.__class__
    if cls is int:
        return _in_time_range(value, field, value)
    if cls is float:
        if value - value != 0.0:
            raise ParseError(BAD_NUMBER, f"{field}: {_show(value)} is not a time")
        return _in_time_range(int(value), field, value)
    if isinstance(value, str):
        if value.isascii() and value.isdigit():
            return _in_time_range(int(value), field, value)
        return _in_time_range(_iso_ms(value, field), field, value)
    if value is None:
        raise ParseError(MISSING_FIELD, f"{field} is missing")
    raise ParseError(BAD_NUMBER, f"{field}: {_show(value)} is not a time")


def _iso_ms(text: str, field: str) -> int:
    s = text.strip()
    if s.endswith("Z"):
        s = s[:-1]
    tz = None
    if len(s) > 19 and s[-6] in "+-" and s[-3] == ":":
        tz, s = s[-6:], s[:-6]
    head, _, frac = s.partition(".")
    try:
        if frac and not (frac.isascii() and frac.isdigit()):
            raise ValueError
        dt = datetime.fromisoformat(head + (tz or ""))
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        ms = int(dt.timestamp()) * 1000
    except (ValueError, OverflowError, OSError):
        raise ParseError(BAD_NUMBER, f"{field}: {_show(text)} is not a time") from None
    return ms + (int((frac + "000")[:3]) if frac else 0)


def ident(value: Any, field: str = "tid") -> int:
    """A non-negative integer id that fits int64 (an int, an integral number or its string)."""
    if value.__class__ is int:
        x = value
    else:
        f = number(value, field)
        if f != math.floor(f):
            raise ParseError(BAD_VALUE, f"{field}: {_show(value)} is not an integer")
        x = int(f)
    if 0 <= x <= INT64_MAX:
        return x
    raise ParseError(OUT_OF_RANGE, f"{field}: {_show(value)} is outside 0..2^63-1")


def name(value: Any, field: str) -> str:
    """A non-empty string of at most MAX_NAME_CHARS (a user, coin or vault)."""
    if value.__class__ is not str and not isinstance(value, str):
        if value is None:
            raise ParseError(MISSING_FIELD, f"{field} is missing")
        raise ParseError(BAD_VALUE, f"{field}: {_show(value)} is not a string")
    if not value:
        raise ParseError(MISSING_FIELD, f"{field} is empty")
    if len(value) > MAX_NAME_CHARS:
        raise ParseError(BAD_VALUE, f"{field}: {len(value)} characters (at most {MAX_NAME_CHARS})")
    return str(value)


def user(value: Any, field: str) -> str:
    """A non-empty string (an account id: opaque, of any length the line cap allows)."""
    if isinstance(value, str):
        if value:
            return str(value)
        raise ParseError(MISSING_FIELD, f"{field} is empty")
    if value is None:
        raise ParseError(MISSING_FIELD, f"{field} is missing")
    raise ParseError(BAD_VALUE, f"{field}: {_show(value)} is not a string")


def opt_user(value: Any, field: str) -> str | None:
    """``user`` or None when absent/empty."""
    return None if value is None or value == "" else user(value, field)


def opt_name(value: Any, field: str) -> str | None:
    """``name`` or None when absent/empty."""
    return None if value is None or value == "" else name(value, field)


def text(value: Any, field: str) -> str:
    """Any string; None -> ""."""
    if value is None:
        return ""
    if isinstance(value, str):
        return str(value)
    raise ParseError(BAD_VALUE, f"{field}: {_show(value)} is not a string")


def _container(value: Any, where: str, cls: type, what: str) -> Any:
    if isinstance(value, cls):
        return value
    if value is None:
        raise ParseError(MISSING_FIELD, f"{where} is missing")
    raise ParseError(BAD_VALUE, f"{where}: {_show(value)} is not {what}")


def obj(value: Any, where: str) -> dict:
    """A JSON object."""
    return _container(value, where, dict, "an object")


def array(value: Any, where: str) -> list:
    """A JSON array."""
    return _container(value, where, list, "a list")


def field(container: Any, key: str, where: str) -> Any:
    """``container[key]``, present and not null."""
    try:
        value = container[key]
    except (KeyError, TypeError, IndexError):
        raise ParseError(MISSING_FIELD, f"{where}: {key!r} is missing") from None
    if value is None:
        raise ParseError(MISSING_FIELD, f"{where}: {key!r} is null")
    return value


# ----------------------------------------------------------------------------- finished events

def _finite(x: Any) -> bool:
    return x.__class__ is float and -MAX_ABS <= x <= MAX_ABS


def _is_name(x: Any) -> bool:
    return isinstance(x, str) and 0 < len(x) <= MAX_NAME_CHARS


def _is_user(x: Any) -> bool:
    return isinstance(x, str) and len(x) > 0


def _is_time(x: Any) -> bool:
    return x.__class__ is int and 0 <= x <= MAX_TIME_MS


def check_event(ev: Any) -> None:
    """Raise ``ParseError("bad_value")`` naming the field when ``ev`` breaks the rules.

    The rules every parser meets (module docstring): the check for events that
    arrive already built (the NATS bus), and the fuzz harness' oracle for every
    event a parser returns.
    """
    def need(ok: bool, what: str) -> None:
        if not ok:
            raise ParseError(BAD_VALUE, f"{type(ev).__name__}.{what}: {ev!r:.300}")

    cls = ev.__class__
    need(_is_name(getattr(ev, "venue", None)), "venue")
    if cls is Fill:
        need(_is_name(ev.coin), "coin")
        need(_is_user(ev.user), "user")
        need(ev.side in (BUY, SELL), "side")
        need(_finite(ev.px) and ev.px >= MIN_POSITIVE, "px")
        need(_finite(ev.sz) and ev.sz >= MIN_POSITIVE, "sz")
        need(_is_time(ev.time_ms), "time_ms")
        need(_finite(ev.start_position), "start_position")
        need(ev.kind in FILL_KINDS, "kind")
        need(_finite(ev.closed_pnl), "closed_pnl")
        need(_finite(ev.fee), "fee")
        need(ev.tid.__class__ is int and 0 <= ev.tid <= INT64_MAX, "tid")
        need(isinstance(ev.hash, str), "hash")
        need(isinstance(ev.dir, str), "dir")
        lq = ev.liquidation
        if lq is not None:
            need(lq.__class__ is Liquidation, "liquidation")
            need(lq.liquidated_user is None or isinstance(lq.liquidated_user, str), "liquidation.liquidated_user")
            # NaN = the fill carried no usable markPx (kept; counted as missing_mark_px)
            need(_finite(lq.mark_px) or lq.mark_px != lq.mark_px, "liquidation.mark_px")
            need(isinstance(lq.method, str), "liquidation.method")
            need(lq.entry_px is None or _finite(lq.entry_px), "liquidation.entry_px")
    elif cls is Mark:
        need(_is_name(ev.coin), "coin")
        need(_finite(ev.mark_px), "mark_px")
        need(ev.oracle_px is None or _finite(ev.oracle_px), "oracle_px")
        need(_is_time(ev.time_ms), "time_ms")
    elif cls is Funding:
        need(_is_user(ev.user), "user")
        need(_is_name(ev.coin), "coin")
        need(_finite(ev.amount_usd), "amount_usd")
        need(_is_time(ev.time_ms), "time_ms")
    elif cls is LedgerUpdate:
        need(_is_user(ev.user) if ev.known else isinstance(ev.user, str), "user")
        need(isinstance(ev.kind, str), "kind")
        need(_finite(ev.delta_usd), "delta_usd")
        need(_is_time(ev.time_ms), "time_ms")
        need(ev.account_value is None or _finite(ev.account_value), "account_value")
        need(ev.known is True or ev.known is False, "known")
    elif cls is AccountSnapshot:
        need(_is_user(ev.user), "user")
        need(ev.account_value is None or _finite(ev.account_value), "account_value")
        need(_is_time(ev.time_ms), "time_ms")
        need(isinstance(ev.positions, tuple), "positions")
        for p in ev.positions:
            need(p.__class__ is PositionSnapshot, "positions[]")
            need(_is_name(p.coin), "positions[].coin")
            need(_finite(p.size), "positions[].size")
            need(_finite(p.entry_px), "positions[].entry_px")
            need(p.mark_px is None or _finite(p.mark_px), "positions[].mark_px")
    elif cls is LiquidationOrder:
        need(_is_name(ev.symbol), "symbol")
        need(isinstance(ev.side, str), "side")
        need(_finite(ev.qty), "qty")
        need(_finite(ev.bankruptcy_px), "bankruptcy_px")
        need(ev.avg_px is None or _finite(ev.avg_px), "avg_px")
        need(_is_time(ev.time_ms), "time_ms")
        need(ev.bankruptcy_loss_usd is None or _finite(ev.bankruptcy_loss_usd), "bankruptcy_loss_usd")
        need(ev.pool is None or _is_name(ev.pool), "pool")
    elif cls is InsuranceFund:
        need(_is_name(ev.pool), "pool")
        need(_finite(ev.balance_usd), "balance_usd")
        need(_is_time(ev.time_ms), "time_ms")
        need(isinstance(ev.symbols, tuple) and all(_is_name(x) for x in ev.symbols), "symbols")
    elif cls is AdlSignal:
        need(_is_name(ev.symbol), "symbol")
        need(isinstance(ev.state, str), "state")
        need(_is_time(ev.time_ms), "time_ms")
    elif cls is FeedGap:
        need(isinstance(ev.channel, str), "channel")
        need(_is_time(ev.from_ms) and _is_time(ev.to_ms), "from_ms/to_ms")
    else:
        need(False, "type")
