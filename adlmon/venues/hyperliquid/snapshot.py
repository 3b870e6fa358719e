"""Hyperliquid account snapshots (clearinghouse exports) -> AccountSnapshot events.

The exports used for the 10 Oct 2025 replays (venues.md §6.2) are not publicly
documented; this reader is lenient and accepts:

``account_value_snapshot_<block>_<time_ms>.json``
    a list of ``{user, account_value, …}`` (extra keys such as
    ``total_long_notional`` ignored); or an object holding such a list under any
    key (``accounts``, ``data``, …); or an object ``{user: account_value}`` /
    ``{user: {account_value, …}}``.

``perp_positions_by_market_<block>_<time_ms>.json``
    a list of markets ``{market_name: "hyperliquid:JUP", positions: [...]}``
    (``market``/``coin`` also accepted for the name); or an object
    ``{market_name: [positions]}`` / ``{market_name: {positions: [...]}}``. A
    position is ``{user, size, entry_price, notional_size, account_value?, …}``
    (``szi``/``entryPx``/``notional``/``positionValue`` also accepted). ``size``
    is signed; when it is unsigned and a ``side`` is given (long/short, B/A),
    the side signs it. The ``hyperliquid:`` prefix is dropped from the market
    name; builder-dex names (``dex:COIN``) are kept as the fills spell them.

Each position's snapshot mark is ``|notional_size| / |size|`` (paper §4.4
"cash-only baseline": cash = account_value − Σ size·(mark − entry), done by the
ledger). An account missing from the account-value file takes the
``account_value`` of its positions, else ``None`` (the ledger then keeps the
positions but does not call the account known). Snapshot time comes from the
file name (``…_<block>_<time_ms>.json``), else 0 (before every other event).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Iterable

import orjson

from adlmon import validate
from adlmon.events import AccountSnapshot, ParseError, PositionSnapshot
from adlmon.io.archive import read_whole
from adlmon.venues.hyperliquid.parse import VENUE

number = validate.number
_name = validate.name

ACCOUNT_VALUES_PREFIX = "account_value_snapshot"
POSITIONS_PREFIX = "perp_positions_by_market"
_NAME = re.compile(r"(account_value_snapshot|perp_positions_by_market)(?:_(\d+))?(?:_(\d+))?\.json(?:\.lz4)?$")
_LISTS = ("accounts", "data", "snapshot", "users", "markets", "positions", "items")


def snapshot_kind(path: str | Path) -> str | None:
    """``account_value_snapshot`` | ``perp_positions_by_market`` | None, from the file name."""
    m = _NAME.search(Path(path).name)
    return m.group(1) if m else None


def snapshot_time_ms(path: str | Path) -> int | None:
    """The time in the file name ``…_<block>_<time_ms>.json`` (None if absent)."""
    m = _NAME.search(Path(path).name)
    if not m or not m.group(3):
        return None
    return int(m.group(3))


def find_snapshot_files(directory: str | Path) -> list[Path]:
    return sorted(p for p in Path(directory).iterdir() if p.is_file() and snapshot_kind(p))


def _records(obj: Any, what: str) -> list:
    if isinstance(obj, list):
        return obj
    if isinstance(obj, dict):
        for key in _LISTS:
            if isinstance(obj.get(key), list):
                return obj[key]
    raise ParseError("unknown_format", f"{what}: expected a list of records")


def parse_account_values(obj: Any) -> dict[str, float]:
    """Decoded account-value snapshot -> {user: account_value}."""
    if isinstance(obj, dict) and not any(isinstance(obj.get(k), list) for k in _LISTS):
        out = {}
        for user, v in obj.items():
            if isinstance(v, dict):
                v = v.get("account_value", v.get("accountValue"))
            out[validate.user(user, "account_value user")] = number(v, f"account_value[{user:.60}]")
        return out
    out = {}
    for i, rec in enumerate(_records(obj, ACCOUNT_VALUES_PREFIX)):
        try:
            user = rec["user"]
            v = rec["account_value"]
            x = float(v)
            if (not -validate.MAX_ABS <= x <= validate.MAX_ABS or v.__class__ is bool
                    or user.__class__ is not str or not user):
                raise ValueError
        except Exception:  # noqa: BLE001 - the lenient path says what is wrong
            where = f"{ACCOUNT_VALUES_PREFIX}[{i}]"
            rec = validate.obj(rec, where)
            user = validate.user(rec.get("user"), f"{where}.user")
            v = rec.get("account_value", rec.get("accountValue"))
            if v is None:
                raise ParseError("missing_field", f"{where}: 'account_value' is missing") from None
            x = number(v, f"{where}.account_value")
        out[user] = x
    return out


def _coin(market: str) -> str:
    return market[len("hyperliquid:"):] if market.startswith("hyperliquid:") else market


def _markets(obj: Any) -> Iterable[tuple[str, list]]:
    if isinstance(obj, dict) and not any(isinstance(obj.get(k), list) for k in _LISTS):
        for name, v in obj.items():
            plist = v.get("positions", []) if isinstance(v, dict) else v
            yield _name(name, "market name"), validate.array(plist, f"{POSITIONS_PREFIX}[{name:.60}]")
        return
    for i, m in enumerate(_records(obj, POSITIONS_PREFIX)):
        m = validate.obj(m, f"{POSITIONS_PREFIX}[{i}]")
        name = m.get("market_name") or m.get("market") or m.get("coin")
        yield (_name(name, f"{POSITIONS_PREFIX}[{i}].market_name"),
               validate.array(m.get("positions") or [], f"{POSITIONS_PREFIX}[{i}].positions"))


_SHORT = frozenset({"short", "s", "a", "sell"})


def _position(p: Any, coin: str, where: str) -> tuple[str, PositionSnapshot | None, float | None]:
    """One position record, leniently: (user, position or None when flat, account value)."""
    p = validate.obj(p, where)
    user = validate.user(p.get("user"), f"{where}.user")
    raw_size = p.get("size", p.get("szi"))
    if raw_size is None:
        raise ParseError("missing_field", f"{where}: 'size' is missing")
    size = number(raw_size, f"{where}.size")
    side = validate.text(p.get("side"), f"{where}.side").lower()
    if side and size > 0 and side in _SHORT:
        size = -size
    av = p.get("account_value")
    av = number(av, f"{where}.account_value") if av is not None else None
    if size == 0.0:
        return user, None, av
    entry_raw = p.get("entry_price", p.get("entryPx"))
    if entry_raw is None:
        raise ParseError("missing_field", f"{where}: 'entry_price' is missing")
    entry = number(entry_raw, f"{where}.entry_price")
    notional = p.get("notional_size", p.get("notional", p.get("positionValue")))
    # the derived mark passes the same range check (a huge notional over a tiny size)
    mark = number(abs(number(notional, f"{where}.notional_size") / size), f"{where} mark notional/|size|") \
        if notional is not None else None
    return user, PositionSnapshot(coin, size, entry, mark), av


def parse_positions_by_market(obj: Any) -> tuple[dict[str, list[PositionSnapshot]], dict[str, float]]:
    """Decoded positions-by-market snapshot -> ({user: positions}, {user: account_value})."""
    positions: dict[str, list[PositionSnapshot]] = {}
    values: dict[str, float] = {}
    max_abs = validate.MAX_ABS
    for market, plist in _markets(obj):
        coin = _name(_coin(market), f"{POSITIONS_PREFIX} market")
        for j, p in enumerate(plist):
            try:
                # Fast path (437k accounts on 10 Oct): the documented keys, plain numbers.
                user = p["user"]
                rs, re_, rn, ra = p["size"], p["entry_price"], p["notional_size"], p["account_value"]
                size, entry, notional, av = float(rs), float(re_), float(rn), float(ra)
                mark = abs(notional / size)
                if (not (-max_abs <= size <= max_abs and -max_abs <= entry <= max_abs
                         and mark <= max_abs and -max_abs <= av <= max_abs)
                        or user.__class__ is not str or not user or "side" in p
                        or rs.__class__ is bool or re_.__class__ is bool or rn.__class__ is bool
                        or ra.__class__ is bool):
                    raise ValueError
                pos = PositionSnapshot(coin, size, entry, mark)
            except Exception:  # noqa: BLE001 - the lenient path says what is wrong
                user, pos, av = _position(p, coin, f"{POSITIONS_PREFIX}[{market}][{j}]")
            if pos is not None:
                plist_ = positions.get(user)
                if plist_ is None:
                    positions[user] = [pos]
                else:
                    plist_.append(pos)
            if av is not None and user not in values:
                values[user] = av
    return positions, values


def snapshot_events(account_values: dict[str, float], positions: dict[str, list[PositionSnapshot]],
                    time_ms: int, venue: str = VENUE,
                    position_values: dict[str, float] | None = None) -> list[AccountSnapshot]:
    """Join both files into one AccountSnapshot per account (account-value file order,
    then accounts found only in the positions file)."""
    position_values = position_values or {}
    out = []
    for user, av in account_values.items():
        out.append(AccountSnapshot(venue, user, av, tuple(positions.get(user, ())), time_ms))
    for user, plist in positions.items():
        if user not in account_values:
            out.append(AccountSnapshot(venue, user, position_values.get(user), tuple(plist), time_ms))
    return out


def _read_json(path: Path) -> Any:
    try:
        return orjson.loads(read_whole(path))
    except orjson.JSONDecodeError as exc:
        raise ParseError("bad_json", f"{path}: not JSON: {exc}") from None


def load_snapshot(paths: Iterable[str | Path], venue: str = VENUE) -> tuple[list[AccountSnapshot], int]:
    """Read the snapshot files given (either or both kinds) -> (events, time_ms).

    Errors name the file: ``ParseError`` with the path in its message.
    """
    values: dict[str, float] = {}
    positions: dict[str, list[PositionSnapshot]] = {}
    position_values: dict[str, float] = {}
    times = []
    for p in map(Path, paths):
        kind = snapshot_kind(p)
        try:
            obj = _read_json(p)
            if kind == ACCOUNT_VALUES_PREFIX:
                values.update(parse_account_values(obj))
            elif kind == POSITIONS_PREFIX:
                pos, pv = parse_positions_by_market(obj)
                for user, plist in pos.items():
                    positions.setdefault(user, []).extend(plist)
                for user, v in pv.items():
                    position_values.setdefault(user, v)
            else:
                raise ParseError("unknown_format", "not an account_value_snapshot_* or perp_positions_by_market_* file")
        except ParseError as exc:
            raise ParseError(exc.reason, f"{p}: {exc}") from None
        t = snapshot_time_ms(p)
        if t is not None:
            times.append(t)
    time_ms = min(times) if times else 0
    return snapshot_events(values, positions, time_ms, venue, position_values), time_ms
