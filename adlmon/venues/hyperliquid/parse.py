"""Hyperliquid frames and node-file lines -> adlmon events (pure: no I/O, no clock).

Shapes (docs/venues.md): ``WsFill`` §1.3; websocket channels §1.1-1.2; info
responses §1.5; node files §1.8 (``node_fills_by_block``, the older per-fill
``node_fills``, ``misc_events``).

Classification (DESIGN §3, venues.md §1.3):
- ``dir == "Auto-Deleveraging"`` -> ``adl`` (the winner side of an ADL fill);
- ``dir`` starts with ``"Liquidated"`` and ``user == liquidation.liquidatedUser``
  -> ``liquidation``. A counterparty fill carries the same ``liquidation``
  object, so the user is compared, never the presence of the object; a
  ``Liquidated …`` fill of someone else is a ``close``;
- ``Open …``/``Buy`` -> ``open``, ``Close …``/``Sell`` -> ``close``, the flips
  ``Long > Short``/``Short > Long`` -> ``close`` (they close first);
- anything else -> ``other`` (kept and applied to positions; the engine counts it).

Every value passes the typed boundary (``adlmon/validate.py``): numbers are read
with ``float()`` and rejected unless finite (``nan``/``inf`` and non-numbers ->
``ParseError("bad_number")``) and within ±1e18, prices and sizes >= 1e-12
(``out_of_range``); times and
tids must fit int64 (``out_of_range``); users and coins are non-empty strings;
a missing required key -> ``ParseError("missing_field")``. ``float`` also
accepts ``"1_000"`` and surrounding blanks; those are unambiguous numbers and pass.
The fast paths below test the same rules inline, so both paths agree.

Speed: replaying an archive hour means millions of fills, so the fill path builds
plain tuples laid out exactly as ``Fill``'s fields (:func:`fill_rows`);
``Fill(*row)`` is the event. ``Engine.apply_fill_rows`` consumes rows directly,
every other caller gets ``Fill`` objects from the same code. A node block is read
as a whole (:func:`_block_rows`): its five numbers per fill are decoded by one
``orjson.loads`` and fields are looked up with the decoder's own key objects;
anything unusual in the block sends it through the fill-by-fill path instead,
so both give the same rows and the same errors.
"""

from __future__ import annotations

import dataclasses
from itertools import chain
from math import hypot
from operator import itemgetter
from typing import Any, Iterable

import orjson

from adlmon import validate
from adlmon.events import (
    ADL, BUY, CLOSE, LIQUIDATION, OPEN, OTHER, SELL,
    AccountSnapshot, Event, Fill, Funding, LedgerUpdate, Liquidation, Mark,
    ParseError, PositionSnapshot,
)

VENUE = "hyperliquid"

# A fill row is a tuple in Fill's field order; the engine indexes it.
ROW_FIELDS = ("venue", "coin", "user", "side", "px", "sz", "time_ms", "start_position",
              "kind", "closed_pnl", "fee", "tid", "hash", "liquidation", "dir")
if tuple(f.name for f in dataclasses.fields(Fill)) != ROW_FIELDS:  # pragma: no cover
    raise ImportError("adlmon.events.Fill changed its field order; update ROW_FIELDS and the row users")

_SIDES = {"B": BUY, "A": SELL}
_DIR_KIND = {
    "Open Long": OPEN, "Open Short": OPEN, "Buy": OPEN,
    "Close Long": CLOSE, "Close Short": CLOSE, "Sell": CLOSE,
    "Long > Short": CLOSE, "Short > Long": CLOSE,
    "Auto-Deleveraging": ADL,
}
_REQUIRED_FILL_KEYS = ("coin", "px", "sz", "side", "time", "startPosition", "dir", "closedPnl", "fee")

# Websocket channels that carry nothing the engine uses (no events, no error).
_IGNORED_CHANNELS = frozenset({
    "pong", "subscriptionResponse", "l2Book", "bbo", "candle", "notification",
    "orderUpdates", "openOrders", "twapStates", "userTwapSliceFills", "userTwapHistory",
    "activeSpotAssetCtx", "activeAssetData", "webData2", "webData3", "post",
})


# ----------------------------------------------------------------------------- numbers

# The boundary's vocabulary (adlmon/validate.py), under the names callers know.
number = validate.number
_opt_number = validate.opt_number
time_ms = validate.time_ms
_field = validate.field
_name = validate.name
_user = validate.user
_MAX_T = validate.MAX_TIME_MS
_MAX_ID = validate.INT64_MAX
_MAX_ABS = validate.MAX_ABS
_MIN_POS = validate.MIN_POSITIVE


def _loads(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ParseError("bad_json", f"not JSON: {exc}") from None


# ----------------------------------------------------------------------------- fills

def _liquidation(f: dict) -> Liquidation | None:
    lq = f.get("liquidation")
    if lq is not None:
        lq = validate.obj(lq, "liquidation")
        user = lq.get("liquidatedUser")
        # A liquidatedUser that is not a user name cannot be this fill's user: no
        # liquidation of it, the fill stays (its position effect is kept). Without a usable
        # markPx the fill still moves positions: keep it, with mark NaN (the engine counts it
        # as missing_mark_px and the wave's B as incomplete).
        try:
            mark = number(lq["markPx"], "liquidation.markPx")
        except (KeyError, ParseError):
            mark = float("nan")
        return Liquidation(user if user.__class__ is str else None, mark,
                           validate.text(lq.get("method"), "liquidation.method"))
    old = f.get("liquidationMarkPx")  # early-2024 fills (venues.md §1.3)
    if old is not None:
        return Liquidation(None, number(old, "liquidationMarkPx"), "")
    return None


def _classify(d: str, user: str, liq: Liquidation | None) -> str:
    if d.startswith("Liquidated"):
        return LIQUIDATION if liq is not None and liq.liquidated_user == user else CLOSE
    return OTHER


# Coins that passed validate.name: the fast paths test a coin by one lookup here
# (filled by the precise path, bounded: cleared when full).
_OK_COINS: dict[str, None] = {}
_OK_COINS_MAX = 100_000


def _coin(value: Any) -> str:
    coin = _name(value, "fill coin")
    if len(_OK_COINS) >= _OK_COINS_MAX:
        _OK_COINS.clear()
    _OK_COINS[coin] = None
    return coin


def _fill_row_checked(user: Any, f: Any, venue: str) -> tuple:
    """The slow, precise path: says which field is wrong."""
    f = validate.obj(f, "fill")
    user = _user(user, "fill user")
    for key in _REQUIRED_FILL_KEYS:
        _field(f, key, "fill")
    coin = _coin(f["coin"])
    side = _SIDES.get(f["side"]) if isinstance(f["side"], str) else None
    if side is None:
        raise ParseError("bad_value", f"fill side: {f['side']!r:.40} (expected 'B' or 'A')")
    px = validate.positive(f["px"], "fill px")
    sz = validate.positive(f["sz"], "fill sz")
    start = number(f["startPosition"], "startPosition")
    pnl = number(f["closedPnl"], "closedPnl")
    fee = number(f["fee"], "fee")
    t = time_ms(f["time"])
    d = validate.text(f["dir"], "fill dir")
    liq = _liquidation(f)
    kind = _DIR_KIND.get(d) or _classify(d, user, liq)
    tid = validate.ident(f.get("tid") or 0, "tid")
    return (venue, coin, user, side, px, sz, t, start, kind, pnl, fee,
            tid, validate.text(f.get("hash"), "hash"), liq, d)


def fill_rows(pairs: Iterable, venue: str = VENUE, errors: list | None = None) -> list[tuple]:
    """(user, WsFill dict) pairs -> fill rows (tuples in ``Fill`` field order).

    A bad fill raises ``ParseError``; when ``errors`` is a list it is appended as
    ``(index, ParseError)`` instead and the other fills are kept (one bad fill
    must not drop an 11k-fill block).
    """
    if pairs.__class__ is list and len(pairs) >= _BLOCK_MIN_FILLS:
        try:
            rows = _block_rows(pairs, venue)
        except Exception:  # noqa: BLE001 - anything unusual: fill by fill, precisely
            rows = None
        if rows is not None:
            return rows
    return _fill_rows_each(pairs, venue, errors)


# Below about this many fills the setup of _block_rows (~2 µs) costs more than it saves.
_BLOCK_MIN_FILLS = 12
_second = itemgetter(1)
_concat = chain.from_iterable


def _block_rows(pairs: list, venue: str) -> list[tuple] | None:
    """A block of (user, fill) pairs -> rows, or None when any fill is unusual.

    Gives exactly the rows of :func:`_fill_rows_each`'s fast path (None wherever
    that path would take its precise branch; ``str`` subclasses, which no JSON
    decoder returns, are read like ``str``), in two steps:

    - the five numbers of every fill are joined into one JSON array, each with
      ``e0`` appended, and decoded by one ``orjson.loads`` (correctly rounded,
      as ``float()``; the exponent makes every element a float). The array has
      5 elements per fill only if each string is one plain JSON number: a
      string holding a comma adds an element, and without quotes, brackets or
      braces nothing can take one away. What ``float()`` reads but a JSON
      number may not be (``nan``, ``1_000``, ``+1``, ``.5``, a trailing blank)
      fails to decode;
    - fields are looked up with the key objects of the block's first fill: the
      decoder shares one key object per name across a line, and a dict lookup
      by the identical object skips the string comparison.
    """
    f0 = pairs[0][1]
    k = dict(zip(f0, f0)).get
    numbers = itemgetter(k("px", "px"), k("sz", "sz"), k("startPosition", "startPosition"),
                         k("closedPnl", "closedPnl"), k("fee", "fee"))
    fills = list(map(_second, pairs))
    text = "e0,".join(_concat(map(numbers, fills)))
    if '"' in text or "[" in text or "{" in text:
        return None
    values = orjson.loads("[" + text + "e0]")
    if len(values) != 5 * len(pairs):
        return None
    # |x| <= ‖values‖ <= MAX_ABS for each (and ±inf fails); a block beyond it (never a
    # real one) goes fill by fill, which tells the numbers apart
    if hypot(*values) > _MAX_ABS:
        return None
    # times and tids: their ranges in bulk (C loops), their types per fill below
    times = list(map(itemgetter(k("time", "time")), fills))
    tids = list(map(itemgetter(k("tid", "tid")), fills))
    if min(times) < 0 or max(times) > _MAX_T or min(tids) < 0 or max(tids) > _MAX_ID:
        return None
    k_coin, k_dir = k("coin", "coin"), k("dir", "dir")
    k_liq, k_side, k_hash = k("liquidation", "liquidation"), k("side", "side"), k("hash", "hash")
    k_old_mark = k("liquidationMarkPx", "liquidationMarkPx")
    sides = _SIDES
    dir_kind = _DIR_KIND
    min_pos, ok_coins = _MIN_POS, _OK_COINS
    rows = []
    append = rows.append
    it = iter(values)
    for (user, f), t, tid, px, sz, start, pnl, fee in zip(pairs, times, tids, it, it, it, it, it):
        coin = f[k_coin]
        h = f[k_hash]
        if (t.__class__ is not int or tid.__class__ is not int
                or sz < min_pos or px < min_pos
                or coin not in ok_coins or user.__class__ is not str or not user
                or h.__class__ is not str):
            return None
        d = f[k_dir]
        lq = f.get(k_liq)
        if lq is None:
            if k_old_mark in f:
                return None
            liq = None
            kind = dir_kind.get(d)
            if kind is None:
                kind = _classify(d, user, None)
        else:
            mark = float(lq["markPx"])
            lu = lq.get("liquidatedUser")
            method = lq.get("method") or ""
            if (not -_MAX_ABS <= mark <= _MAX_ABS or (lu is not None and lu.__class__ is not str)
                    or method.__class__ is not str):
                return None
            liq = Liquidation(lu, mark, method)
            kind = dir_kind.get(d)
            if kind is None:
                kind = _classify(d, user, liq)
        append((venue, coin, user, sides[f[k_side]], px, sz, t, start, kind, pnl, fee,
                tid, h, liq, d))
    return rows


def _fill_rows_each(pairs: Iterable, venue: str, errors: list | None) -> list[tuple]:
    """Fill by fill: a fast path for the usual fill, the precise one for the rest."""
    rows = []
    append = rows.append
    sides = _SIDES
    dir_kind = _DIR_KIND
    max_abs, min_pos, ok_coins, max_t, max_id = _MAX_ABS, _MIN_POS, _OK_COINS, _MAX_T, _MAX_ID
    n_errors = 0
    for pair in pairs:
        try:
            user, f = pair
            # Hot path: every venue number is a string; float() raises on garbage,
            # and the sum of (x - x) is 0.0 only when every value is finite.
            # (JSON numbers and booleans take the precise path: float(True) is 1.0.)
            p_ = f["px"]
            s_ = f["sz"]
            a_ = f["startPosition"]
            c_ = f["closedPnl"]
            e_ = f["fee"]
            px = float(p_)
            sz = float(s_)
            start = float(a_)
            pnl = float(c_)
            fee = float(e_)
            t = f["time"]
            coin = f["coin"]
            tid = f["tid"]
            h = f["hash"]
            if ((px - px) + (sz - sz) + (start - start) + (pnl - pnl) + (fee - fee) != 0.0
                    or p_.__class__ is not str or s_.__class__ is not str or a_.__class__ is not str
                    or c_.__class__ is not str or e_.__class__ is not str
                    or t.__class__ is not int or tid.__class__ is not int or t > max_t or tid > max_id or (t | tid) < 0
                    or sz < min_pos or px < min_pos
                    or coin not in ok_coins or user.__class__ is not str or not user
                    or h.__class__ is not str
                    or px > max_abs or sz > max_abs or not -max_abs <= start <= max_abs
                    or not -max_abs <= pnl <= max_abs or not -max_abs <= fee <= max_abs):
                raise ValueError  # rare: let the precise path say what is wrong
            d = f["dir"]
            lq = f.get("liquidation")
            if lq is None:
                if "liquidationMarkPx" in f:
                    raise ValueError  # early-2024 shape, handled by the precise path
                liq = None
                kind = dir_kind.get(d)
                if kind is None:
                    kind = _classify(d, user, None)
            else:
                mark = float(lq["markPx"])
                lu = lq.get("liquidatedUser")
                method = lq.get("method") or ""
                if (not -max_abs <= mark <= max_abs or (lu is not None and lu.__class__ is not str)
                        or method.__class__ is not str):
                    raise ValueError
                liq = Liquidation(lu, mark, method)
                kind = dir_kind.get(d)
                if kind is None:
                    kind = _classify(d, user, liq)
            append((venue, coin, user, sides[f["side"]], px, sz, t, start, kind, pnl, fee,
                    tid, h, liq, d))
        except Exception:  # noqa: BLE001 - re-parsed precisely below
            try:
                append(_fill_row_checked(*_pair(pair), venue))
            except ParseError as exc:
                if errors is None:
                    raise
                errors.append((len(rows) + n_errors, exc))
                n_errors += 1
    return rows


def _pair(pair: Any) -> tuple[Any, Any]:
    if isinstance(pair, (list, tuple)) and len(pair) == 2:
        return pair[0], pair[1]
    raise ParseError("bad_value", f"fill event: {pair!r:.80} is not [user, fill]")


def block_fill_rows(obj: dict, venue: str = VENUE, errors: list | None = None) -> list[tuple]:
    """One decoded ``node_fills_by_block`` line -> fill rows."""
    events = obj.get("events") if isinstance(obj, dict) else None
    if events is None:
        raise ParseError("missing_field", "node_fills_by_block line: 'events' is missing")
    if not isinstance(events, list):
        raise ParseError("bad_value", f"node_fills_by_block line: 'events' is {type(events).__name__}, not a list")
    return fill_rows(events, venue, errors)


def node_fill_row(obj: Any, venue: str = VENUE) -> tuple:
    """One decoded older ``node_fills`` line: ``[user, fill]`` or a fill with ``user``."""
    if isinstance(obj, list):
        return fill_rows((obj,), venue)[0]
    if isinstance(obj, dict):
        return fill_rows(((obj.get("user"), obj),), venue)[0]
    raise ParseError("bad_value", f"node_fills line: {obj!r:.80}")


def parse_node_fills_by_block(line: bytes | str, venue: str = VENUE,
                              errors: list | None = None) -> list[Fill]:
    """One ``node_fills_by_block`` line -> its fills (both sides of every trade)."""
    return [Fill(*r) for r in block_fill_rows(_loads(line), venue, errors)]


def parse_node_fill(line: bytes | str, venue: str = VENUE) -> Fill:
    """One line of the older per-fill ``node_fills`` format."""
    return Fill(*node_fill_row(_loads(line), venue))


def parse_ws_fill(user: str, fill: dict, venue: str = VENUE) -> Fill:
    """A websocket/info ``WsFill`` of ``user`` -> Fill."""
    return Fill(*fill_rows(((user, fill),), venue)[0])


# ----------------------------------------------------------------------------- misc_events

# Ledger delta types -> how they move perp cash (venues.md §1.8; API ledger updates).
_TRANSFERS = ("internalTransfer", "subAccountTransfer")
_KNOWN_NO_CASH = frozenset({"spotTransfer", "spotGenesis", "rewardsClaim", "cStakingTransfer",
                            "borrowLend", "send"})


def ledger_delta_events(delta: dict, users: list | tuple, t: int,
                        venue: str = VENUE) -> list[Event]:
    """One ledger ``delta`` (``{type, …}``) -> events.

    Cash effects: deposit +usdc; withdraw −(usdc+fee); internal/sub-account
    transfer −(usdc+fee) from ``user``, +usdc to ``destination``;
    accountClassTransfer ±usdc (toPerp); vaultDeposit/vaultCreate −usdc from the
    depositor, +usdc to the vault; vaultWithdraw +netWithdrawnUsd to the user,
    −requestedUsd from the vault; vaultDistribution/vaultLeaderCommission +usdc;
    funding -> ``Funding``; ``liquidation`` -> no cash change, ``account_value``
    = the pre-liquidation ``accountValue``. Spot/staking types move no perp cash.
    Unknown types -> ``LedgerUpdate(known=False)`` with no cash change.
    """
    delta = validate.obj(delta, "ledger delta")
    kind = validate.text(_field(delta, "type", "ledger delta"), "ledger delta type")
    users = [_user(u, f"users[{i}]") for i, u in enumerate(validate.array(users, "users"))]
    user = validate.opt_user(delta.get("user"), "ledger delta user") or (users[0] if users else None)
    if kind == "funding":
        u = user if user else _field(delta, "user", "funding")
        return [Funding(venue, u, _name(_field(delta, "coin", "funding"), "funding coin"),
                        number(_field(delta, "usdc", "funding"), "usdc"), t)]
    if not user and kind not in ("vaultDistribution",):
        raise ParseError("missing_field", f"ledger delta {kind!r}: no user")

    def upd(u: str, k: str, amount: float, account_value: float | None = None) -> LedgerUpdate:
        return LedgerUpdate(venue, u, k, amount, t, account_value)

    if kind == "deposit":
        return [upd(user, kind, number(_field(delta, "usdc", kind), "usdc"))]
    if kind == "withdraw":
        amount = number(_field(delta, "usdc", kind), "usdc")
        fee = number(delta.get("fee") or 0, "fee")
        return [upd(user, kind, -(amount + fee))]
    if kind in _TRANSFERS:
        amount = number(_field(delta, "usdc", kind), "usdc")
        fee = number(delta.get("fee") or 0, "fee")
        dest = validate.opt_name(delta.get("destination"), f"{kind} destination") or (
            users[1] if len(users) > 1 else None)
        out = [upd(user, kind, -(amount + fee))]
        if dest:
            out.append(upd(dest, kind, amount))
        return out
    if kind == "accountClassTransfer":
        amount = number(_field(delta, "usdc", kind), "usdc")
        return [upd(user, kind, amount if delta.get("toPerp") else -amount)]
    if kind in ("vaultDeposit", "vaultCreate"):
        amount = number(_field(delta, "usdc", kind), "usdc")
        vault = validate.opt_name(delta.get("vault"), f"{kind} vault")
        out = [upd(user, kind, -amount)]
        if vault:
            out.append(upd(vault, kind, amount))
        return out
    if kind == "vaultWithdraw":
        net = number(delta.get("netWithdrawnUsd", delta.get("usdc", 0)), "netWithdrawnUsd")
        out = [upd(user, kind, net)]
        vault = validate.opt_name(delta.get("vault"), f"{kind} vault")
        if vault:
            out.append(upd(vault, kind, -number(delta.get("requestedUsd", net), "requestedUsd")))
        return out
    if kind in ("vaultDistribution", "vaultLeaderCommission"):
        target = user or validate.opt_name(delta.get("vault"), f"{kind} vault")
        if not target:
            raise ParseError("missing_field", f"ledger delta {kind!r}: no user")
        return [upd(target, kind, number(_field(delta, "usdc", kind), "usdc"))]
    if kind == "liquidation":
        av = number(_field(delta, "accountValue", kind), "accountValue")
        return [upd(user, kind, 0.0, av)]
    if kind in _KNOWN_NO_CASH:
        return [upd(user, kind, 0.0)]
    return [LedgerUpdate(venue, user, kind, 0.0, t, None, False)]


def misc_events(obj: dict, venue: str = VENUE) -> list[Event]:
    """One decoded ``misc_events`` line ``{time, hash, inner}`` -> events.

    ``inner`` forms accepted: ``{"LedgerUpdate": {users, delta}}``,
    ``{"Funding": {deltas: [{user, coin, funding_amount}]}}``,
    ``{"CDeposit": {user, amount}}``, ``{"CWithdrawal": {user, amount}}``;
    staking variants (``Delegation``, ``ValidatorRewards``) and unknown variants
    become ``LedgerUpdate(known=False)``. The API form ``{time, hash, delta}``
    (with ``user`` in the delta or the line) is accepted too.
    """
    obj = validate.obj(obj, "misc_events line")
    t = time_ms(_field(obj, "time", "misc_events"))
    inner = obj.get("inner")
    if inner is None:
        if "delta" in obj:
            user = validate.opt_user(obj.get("user"), "misc_events user")
            return ledger_delta_events(obj["delta"], [user] if user else [], t, venue)
        raise ParseError("missing_field", "misc_events line: 'inner' is missing")
    if not isinstance(inner, dict) or len(inner) != 1:
        raise ParseError("bad_value", f"misc_events inner: {inner!r:.80}")
    (variant, body), = inner.items()
    if not isinstance(body, dict):
        body = {"value": body}
    if variant == "LedgerUpdate":
        users = body.get("users")
        return ledger_delta_events(_field(body, "delta", "LedgerUpdate"),
                                   [] if users is None else users, t, venue)
    if variant == "Funding":
        out: list[Event] = []
        for d in validate.array(_field(body, "deltas", "Funding"), "Funding deltas"):
            d = validate.obj(d, "Funding delta")
            key = "funding_amount" if "funding_amount" in d else "usdc"
            out.append(Funding(venue, _user(_field(d, "user", "Funding delta"), "Funding delta user"),
                               _name(_field(d, "coin", "Funding delta"), "Funding delta coin"),
                               number(_field(d, key, "Funding delta"), key), t))
        return out
    if variant in ("CDeposit", "CWithdrawal"):
        user = _user(_field(body, "user", variant), f"{variant} user")
        key = "usdc" if "usdc" in body else "amount"
        amount = number(_field(body, key, variant), key)
        kind = "deposit" if variant == "CDeposit" else "withdraw"
        return [LedgerUpdate(venue, user, kind, amount if kind == "deposit" else -amount, t)]
    user = validate.opt_user(body.get("user"), f"{variant} user") or ""
    return [LedgerUpdate(venue, user, variant, 0.0, t, None, False)]


def parse_misc_event(line: bytes | str, venue: str = VENUE) -> list[Event]:
    """One ``misc_events`` line -> events."""
    return misc_events(_loads(line), venue)


# ----------------------------------------------------------------------------- any node line

NODE_FILLS_BY_BLOCK = "node_fills_by_block"
NODE_FILLS = "node_fills"
MISC_EVENTS = "misc_events"
MISC_EVENTS_BY_BLOCK = "misc_events_by_block"


def misc_block_events(obj: dict, venue: str = VENUE, errors: list | None = None) -> list[Event]:
    """A ``misc_events`` line written ``--batch-by-block``: ``{…, events: [{time, hash, inner}]}``.

    A bad event raises, or with ``errors`` given is appended as ``(index, ParseError)``."""
    out: list[Event] = []
    for i, e in enumerate(validate.array(_field(obj, "events", "misc_events block"),
                                         "misc_events block events")):
        try:
            out.extend(misc_events(e, venue))
        except ParseError as exc:
            if errors is None:
                raise
            errors.append((i, exc))
    return out


def line_kind(obj: Any) -> str | None:
    """Which node format a decoded line is, from its keys (None: not recognised)."""
    if isinstance(obj, dict):
        if "events" in obj:
            events = obj["events"]
            if isinstance(events, list) and events and isinstance(events[0], dict):
                return MISC_EVENTS_BY_BLOCK
            return NODE_FILLS_BY_BLOCK
        if "inner" in obj or "delta" in obj:
            return MISC_EVENTS
        if "coin" in obj and "px" in obj:
            return NODE_FILLS
    elif isinstance(obj, list) and len(obj) == 2 and isinstance(obj[1], dict) and "px" in obj[1]:
        return NODE_FILLS
    return None


def parse_node_line(line: bytes | str, venue: str = VENUE,
                    errors: list | None = None) -> list[Event]:
    """Any node-file line (kind detected from its keys) -> events."""
    obj = _loads(line)
    kind = line_kind(obj)
    if kind == NODE_FILLS_BY_BLOCK:
        return [Fill(*r) for r in block_fill_rows(obj, venue, errors)]
    if kind == MISC_EVENTS:
        return misc_events(obj, venue)
    if kind == MISC_EVENTS_BY_BLOCK:
        return misc_block_events(obj, venue, errors)
    if kind == NODE_FILLS:
        return [Fill(*node_fill_row(obj, venue))]
    raise ParseError("unknown_format", f"not a node_fills_by_block, node_fills or misc_events line: {str(line)[:80]}")


# ----------------------------------------------------------------------------- websocket / info

def parse_ws_message(obj: Any, user: str | None = None, recv_ms: int = 0,
                     venue: str = VENUE) -> list[Event]:
    """One decoded websocket message ``{channel, data}`` -> events.

    ``user`` is the subscribed user (``userEvents`` data does not name it);
    ``recv_ms`` is the local receive time, used where the venue sends none
    (asset contexts, mids, ``WsLiquidation``).

    - ``userFills`` -> fills (snapshot fills included, oldest first; deduplicate
      on ``tid`` after a reconnect in the collector);
    - ``user`` (userEvents) -> fills | Funding | LedgerUpdate(kind "liquidation",
      ``account_value`` = ``liquidated_account_value``) of ``liquidated_user``;
    - ``userFundings`` / ``userNonFundingLedgerUpdates`` -> Funding / ledger events;
    - ``activeAssetCtx`` -> Mark(markPx, oraclePx); ``allMids`` -> one Mark per
      perp (spot ``@n`` keys skipped), oracle unknown;
    - ``trades`` -> one Mark per coin at the message's last trade price
      (oracle unknown). This is the paper's mark rule (last traded price,
      §4.4 step 4) for coins whose fills we do not see; when both ``trades``
      and ``activeAssetCtx`` are subscribed, the latest observation wins;
    - ``clearinghouseState`` -> AccountSnapshot;
    - ``pong``, ``subscriptionResponse`` and channels we do not model -> [];
    - ``error`` -> ParseError("venue_error"); an unknown channel ->
      ParseError("unknown_channel").
    """
    obj = validate.obj(obj, "websocket message")
    channel = obj.get("channel")
    data = obj.get("data")
    if channel.__class__ is not str:
        raise ParseError("bad_value", f"websocket message: channel {channel!r:.80} is not a string")
    if channel in _IGNORED_CHANNELS:
        return []
    if channel == "error":
        raise ParseError("venue_error", f"venue error: {data!r:.200}")
    if data is None:
        raise ParseError("missing_field", f"websocket message on {channel!r}: 'data' is missing")
    if channel == "trades":
        return _trade_marks(data, venue)
    data = validate.obj(data, channel)
    if channel == "userFills":
        who = _user(data.get("user") or user, "userFills user")
        fills = validate.array(_field(data, "fills", "userFills"), "userFills fills")
        rows = fill_rows([(who, f) for f in fills], venue)
        if data.get("isSnapshot"):
            rows.sort(key=lambda r: (r[6], r[11]))
        return [Fill(*r) for r in rows]
    if channel == "user":
        return _user_events(data, user, recv_ms, venue)
    if channel == "userFundings":
        who = _user(data.get("user") or user, "userFundings user")
        return [_funding(venue, who, f, None) for f in
                validate.array(_field(data, "fundings", "userFundings"), "userFundings fundings")]
    if channel == "userNonFundingLedgerUpdates":
        who = _user(data.get("user") or user, "userNonFundingLedgerUpdates user")
        out: list[Event] = []
        for u in validate.array(_field(data, "nonFundingLedgerUpdates", "userNonFundingLedgerUpdates"),
                                "nonFundingLedgerUpdates"):
            out.extend(ledger_delta_events(_field(u, "delta", "ledger update"), [who],
                                           time_ms(_field(u, "time", "ledger update")), venue))
        return out
    if channel == "activeAssetCtx":
        ctx = validate.obj(_field(data, "ctx", "activeAssetCtx"), "activeAssetCtx.ctx")
        return [Mark(venue, _name(_field(data, "coin", "activeAssetCtx"), "activeAssetCtx coin"),
                     number(_field(ctx, "markPx", "activeAssetCtx.ctx"), "markPx"),
                     _opt_number(ctx.get("oraclePx"), "oraclePx"), time_ms(recv_ms, "receive time"))]
    if channel == "allMids":
        mids = validate.obj(_field(data, "mids", "allMids"), "allMids mids")
        t = time_ms(recv_ms, "receive time")
        return [Mark(venue, _name(coin, "allMids coin"), number(px, f"mids.{coin:.40}"), None, t)
                for coin, px in mids.items() if not coin.startswith("@")]
    if channel == "clearinghouseState":
        who = _user(data.get("user") or user, "clearinghouseState user")
        state = data.get("clearinghouseState", data)
        return [parse_clearinghouse_state(who, state, recv_ms, venue)]
    raise ParseError("unknown_channel", f"unknown websocket channel {channel!r:.80}")


def _trade_marks(data: Any, venue: str) -> list[Mark]:
    last: dict[str, tuple[int, float]] = {}
    for tr in validate.array(data, "trades"):
        coin = _name(_field(tr, "coin", "trade"), "trade coin")
        t = time_ms(_field(tr, "time", "trade"))
        px = number(_field(tr, "px", "trade"), "px")
        if coin not in last or t >= last[coin][0]:
            last[coin] = (t, px)
    return [Mark(venue, coin, px, None, t) for coin, (t, px) in last.items()]


def _funding(venue: str, user: str, f: Any, default_ms: int | None) -> Funding:
    f = validate.obj(f, "funding")
    t = f.get("time", default_ms)
    return Funding(venue, user, _name(_field(f, "coin", "funding"), "funding coin"),
                   number(_field(f, "usdc", "funding"), "usdc"), time_ms(t, "funding time"))


def _user_events(data: dict, user: str | None, recv_ms: int, venue: str) -> list[Event]:
    if "fills" in data:
        who = _user(user, "userEvents user")
        fills = validate.array(data["fills"], "userEvents fills")
        return [Fill(*r) for r in fill_rows([(who, f) for f in fills], venue)]
    if "funding" in data:
        return [_funding(venue, _user(user, "userEvents user"), data["funding"], recv_ms)]
    if "liquidation" in data:
        lq = validate.obj(data["liquidation"], "userEvents liquidation")
        return [LedgerUpdate(venue, _user(_field(lq, "liquidated_user", "liquidation"),
                                          "liquidation.liquidated_user"),
                             "liquidation", 0.0, time_ms(recv_ms, "receive time"),
                             number(_field(lq, "liquidated_account_value", "liquidation"),
                                    "liquidated_account_value"))]
    return []  # nonUserCancel and future variants carry no state


def parse_clearinghouse_state(user: str, obj: Any, time_ms_: int, venue: str = VENUE) -> AccountSnapshot:
    """``clearinghouseState`` response -> AccountSnapshot of ``user``.

    account value = ``marginSummary.accountValue`` (cross + isolated); each
    position's mark = ``positionValue / |szi|`` (the venue's mark at the
    response); the response's ``time`` wins over ``time_ms_`` when present.
    """
    obj = validate.obj(obj, "clearinghouseState")
    user = _user(user, "clearinghouseState user")
    summary = obj.get("marginSummary") or obj.get("crossMarginSummary")
    av = number(_field(summary, "accountValue", "marginSummary"), "accountValue")
    positions = []
    for p in _asset_positions(obj):
        size = number(_field(p, "szi", "position"), "szi")
        if size == 0.0:
            continue
        entry = number(_field(p, "entryPx", "position"), "entryPx")
        value = p.get("positionValue")
        # the derived mark passes the same range check (a huge value over a tiny size)
        mark = number(abs(number(value, "positionValue") / size), "position mark positionValue/|szi|") \
            if value is not None else None
        positions.append(PositionSnapshot(_name(_field(p, "coin", "position"), "position coin"),
                                          size, entry, mark))
    t = obj.get("time")
    return AccountSnapshot(venue, user, av, tuple(positions),
                           time_ms(t if t is not None else time_ms_, "clearinghouseState time"))


def _asset_positions(obj: dict) -> list[dict]:
    """The ``position`` objects of ``assetPositions`` (absent: none)."""
    aps = obj.get("assetPositions")
    if aps is None:
        return []
    return [validate.obj(_field(ap, "position", "assetPositions[]"), "assetPositions[].position")
            for ap in validate.array(aps, "clearinghouseState assetPositions")]


def unrealized_pnl(obj: Any) -> float:
    """Σ ``unrealizedPnl`` over a ``clearinghouseState``'s positions (a missing one is 0)."""
    return sum(number(p.get("unrealizedPnl", 0), "unrealizedPnl")
               for p in _asset_positions(validate.obj(obj, "clearinghouseState")))


def parse_meta_and_asset_ctxs(obj: Any, time_ms_: int, venue: str = VENUE) -> list[Mark]:
    """``metaAndAssetCtxs`` response ``[meta, ctxs]`` -> one Mark per listed perp."""
    universe, ctxs = _meta_universe(obj)
    t = time_ms(time_ms_, "receive time")
    out = []
    for asset, ctx in zip(universe, validate.array(ctxs, "assetCtxs")):
        mark = ctx.get("markPx") if isinstance(ctx, dict) else None
        if mark is None:
            continue  # delisted assets carry no mark
        out.append(Mark(venue, _name(_field(asset, "name", "universe[]"), "universe[].name"),
                        number(mark, "markPx"), _opt_number(ctx.get("oraclePx"), "oraclePx"), t))
    return out


def _meta_universe(obj: Any) -> tuple[list, Any]:
    if not (isinstance(obj, list) and len(obj) == 2):
        raise ParseError("bad_value", "metaAndAssetCtxs: expected [meta, assetCtxs]")
    meta = validate.obj(obj[0], "meta")
    return validate.array(meta.get("universe") or [], "meta universe"), obj[1]


def perp_coins(meta_and_ctxs: Any) -> list[str]:
    """Listed perps of a ``metaAndAssetCtxs`` response (delisted skipped)."""
    universe, _ctxs = _meta_universe(meta_and_ctxs)
    return [_name(a["name"], "universe[].name") for a in universe
            if isinstance(a, dict) and a.get("name") and not a.get("isDelisted")]


def vault_children(details: Any) -> list[str]:
    """``vaultDetails(parent).relationship.data.childAddresses``."""
    d = validate.obj(details, "vaultDetails")
    rel = validate.obj(d.get("relationship") or {}, "vaultDetails relationship")
    data = validate.obj(rel.get("data") or {}, "vaultDetails relationship data")
    children = data.get("childAddresses")
    if not isinstance(children, list) or not children:
        raise ParseError("missing_field", "vaultDetails lists no childAddresses")
    return [_name(c, "childAddresses[]") for c in children]


def vault_name(details: Any) -> str:
    """``vaultDetails(vault).name`` ("" when absent)."""
    return validate.text(validate.obj(details, "vaultDetails").get("name"), "vaultDetails name")
