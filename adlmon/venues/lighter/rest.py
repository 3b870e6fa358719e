"""Lighter's public REST (venues-wire.md §2.5, §2.6): discovery, the LLP pool, trade backfill.

Every answer is written to the capture (kind ``rest``, ``req`` = path and
query) before it is parsed, by the same :class:`~adlmon.venues.lighter.parse.LighterParser`
the websockets use, so a replayed capture sees what the live run saw.

Weights (config.py): ``recentTrades``/``trades`` cost ``rest_weight_trades``,
everything else ``rest_weight_other``, out of ``rest_weight_per_min``.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from adlmon.events import Event, ParseError
from adlmon.net.backoff import Backoff
from adlmon.net.rest import RestClient, WeightLimiter
from adlmon.venues.lighter.parse import LighterParser

log = logging.getLogger(__name__)


class LighterRest:
    """The REST calls the collector makes; each returns the events of its answer."""

    def __init__(self, cfg, parser: LighterParser, *, now_ms: Callable[[], int], capture=None,
                 on_parse_error: Callable[[str], None] | None = None, timeout_s: float = 10.0):
        self.cfg = cfg
        self.parser = parser
        self.now_ms = now_ms
        self.capture = capture
        self.on_parse_error = on_parse_error or (lambda reason: None)
        self.results: dict[str, int] = {}
        self.last_parsed: list[Event] = []  # the last answer's events, before the time merge
        self.client = RestClient(cfg.rest_url, WeightLimiter(cfg.rest_weight_per_min),
                                 timeout_s=timeout_s, on_result=self._count,
                                 backoff=Backoff(cfg.backoff_initial_s, cfg.backoff_max_s))

    def _count(self, reason: str) -> None:
        self.results[reason] = self.results.get(reason, 0) + 1

    async def close(self) -> None:
        await self.client.close()

    async def fetch(self, path: str, weight: int | None = None) -> tuple[list[Event], Any]:
        """GET ``path`` -> (events, decoded answer). Raises ``RestError``; a malformed
        answer is counted (``on_parse_error``) and gives no events."""
        obj, raw = await self.client.get_text(path, None, weight or self.cfg.rest_weight_other)
        t = self.now_ms()
        if self.capture is not None:
            self.capture.write("rest", self.cfg.rest_url, raw, t_ms=t, req=path)
        if not isinstance(obj, dict):
            self.on_parse_error("bad_value")
            return [], obj
        try:
            parsed = self.parser.rest_answer(path, obj, t)
        except ParseError as exc:
            log.warning("lighter: unparsable answer of %s (%s: %s)", path, exc.reason, exc)
            self.on_parse_error(exc.reason)
            return [], obj
        self.last_parsed = parsed
        return self.parser.feed(parsed, t), obj

    async def markets(self) -> list[int]:
        """Every market id listed by ``orderBooks`` (names learnt on the way)."""
        _events, obj = await self.fetch("/api/v1/orderBooks")
        ids = []
        for b in (obj.get("order_books") or ()) if isinstance(obj, dict) else ():
            m = b.get("market_id") if isinstance(b, dict) else None
            if isinstance(m, int) and not isinstance(m, bool) and m >= 0:
                ids.append(m)
        return sorted(set(ids))

    async def pool_index(self) -> int | None:
        await self.fetch("/api/v1/systemConfig")
        return self.parser.pool_index

    async def pool_account(self) -> list[Event]:
        idx = self.parser.pool_index
        if idx is None:
            return []
        events, _ = await self.fetch(f"/api/v1/account?by=index&value={idx}")
        return events

    async def recent_trades(self, market_id: int) -> tuple[list[Event], int | None, int]:
        """(events released, time of the oldest trade returned, trades returned) of one
        market; the new fills it brought are in ``last_parsed``."""
        self.last_parsed = []
        path = f"/api/v1/recentTrades?market_id={market_id}&limit={self.cfg.backfill_limit}"
        events, obj = await self.fetch(path, self.cfg.rest_weight_trades)
        trades = obj.get("trades") if isinstance(obj, dict) else None
        times = [t["timestamp"] for t in trades or () if isinstance(t, dict)
                 and isinstance(t.get("timestamp"), int)]
        return events, (min(times) if times else None), len(trades or ())
