"""Reading venue JSON fields: the small checks every CEX parser needs (pure).

Each raises ``ParseError`` with a stable reason (``bad_json``, ``bad_number``,
``missing_field``, ``bad_value``, ``out_of_range``), so a malformed frame is
counted, never fatal. Values pass the typed boundary (:mod:`adlmon.validate`):
``number``/``positive`` are its finite, bounded floats, ``text`` its bounded
names, ``ms`` its times.
"""

from __future__ import annotations

from typing import Any

import orjson

from adlmon.events import ParseError
from adlmon.validate import name as text  # noqa: F401  (re-exported)
from adlmon.validate import number, positive, time_ms  # noqa: F401  (re-exported)


def loads(data: bytes | str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ParseError("bad_json", f"not JSON: {exc}") from None


def obj(value: Any, field: str) -> dict:
    if not isinstance(value, dict):
        raise ParseError("bad_value", f"{field}: expected an object, got {type(value).__name__}")
    return value


def lst(value: Any, field: str) -> list:
    if not isinstance(value, list):
        raise ParseError("bad_value", f"{field}: expected a list, got {type(value).__name__}")
    return value


def req(o: dict, key: str, where: str) -> Any:
    try:
        return o[key]
    except KeyError:
        raise ParseError("missing_field", f"{where}: no {key!r}") from None
    except TypeError:
        raise ParseError("bad_value", f"{where}: not an object") from None


def choice(value: Any, allowed: dict, field: str) -> Any:
    """``allowed[value]`` for a known string, else ``ParseError("bad_value")`` (a list or
    object there must not raise a TypeError)."""
    if isinstance(value, str) and value in allowed:
        return allowed[value]
    raise ParseError("bad_value", f"{field} = {value!r:.30}: expected one of {', '.join(allowed)}")


def opt_number(value: Any, field: str) -> float | None:
    """A number, or None for the venues' ``""`` / null (retired or absent fields)."""
    return None if value is None or value == "" else number(value, field)


def ms(value: Any, field: str) -> int:
    """Milliseconds from an int or a digit string (the CEX venues send both), in range."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ParseError("bad_number", f"{field}: {value!r:.40} is not a time in ms")
    return time_ms(value, field)


class RecordParser:
    """The face's ``CaptureParser`` for a parser with ``parse_frame(raw)`` and
    ``parse_rest(req, body)``: ``ws`` records are frames, ``rest`` records answers
    (``req`` the path and query), ``open``/``close`` marks give nothing."""

    def parse(self, record: Any) -> list:
        if record.kind == "ws":
            return self.parse_frame(record.frame)
        if record.kind == "rest":
            return self.parse_rest(str(record.extra.get("req", "")), record.frame)
        return []
