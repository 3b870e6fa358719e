"""dYdX v4 REST: market discovery, trade backfill by height, insurance-fund balance (venues-wire §1.8, §1.9).

Every answer is written to the capture (kind ``rest``, ``req`` = path and
query) and parsed by the venue's one :class:`~adlmon.venues.dydx.parse.DydxParser`
in the same step (:class:`~adlmon.venues.dydx.parse.DydxStream`), so a replay
of the capture sees it where the live run did.
The indexer allows 100 points per 10 s per IP (``RATE_LIMIT_GET_POINTS``): one
:class:`~adlmon.net.rest.WeightLimiter` with that burst serves every request.
"""

from __future__ import annotations

import logging
from typing import Any, Callable
from urllib.parse import urlencode

from adlmon.events import Event, ParseError
from adlmon.io.capture import REST
from adlmon.net.rest import RestClient, RestError, WeightLimiter
from adlmon.venues.dydx.parse import BLOCK_TXS_PATH, DydxStream

log = logging.getLogger(__name__)

class IndexerRest:
    """GETs against the indexer (and optionally a node's Cosmos REST), captured and parsed.

    ``capture(kind, src, frame, t_ms, **extra)`` is the venue's CaptureWriter.write
    or None; ``now_ms`` the venue clock (the receive time of each answer).
    """

    def __init__(self, rest_url: str, parser: DydxStream, *, points_per_10s: int,
                 now_ms: Callable[[], int], capture: Any = None, lcd_url: str = "",
                 node_rest_url: str = "",
                 on_result: Callable[[str], None] | None = None, timeout_s: float = 10.0):
        limiter = WeightLimiter(points_per_10s * 6, burst=points_per_10s)
        self.indexer = RestClient(rest_url.rstrip("/"), limiter, timeout_s=timeout_s,
                                  on_result=on_result)
        self.lcd = RestClient(lcd_url.rstrip("/"), WeightLimiter(60), timeout_s=timeout_s,
                              on_result=on_result) if lcd_url else None
        self.node = RestClient(node_rest_url.rstrip("/"), WeightLimiter(600, burst=20),
                               timeout_s=timeout_s, on_result=on_result) if node_rest_url else None
        self.parser = parser
        self.now_ms = now_ms
        self.capture = capture
        self.requests = 0
        self.parse_errors = 0
        self.last_error = ""

    async def _get(self, client: RestClient, path: str, params: dict | None = None) -> list[Event]:
        obj, text = await client.get_text(path, params)
        self.requests += 1
        req = path + ("?" + urlencode(params) if params else "")
        t = self.now_ms()
        if self.capture is not None:
            self.capture.write(REST, client.url, text, t, req=req)
        try:
            return self.parser.rest(req, obj, t)
        except ParseError as exc:
            self.parse_errors += 1
            self.last_error = f"{req}: {exc}"
            log.warning("dydx: unparsable REST answer of %s (%s)", req, exc)
            return list(getattr(exc, "events", ()))

    async def markets(self) -> list[Event]:
        """``/v4/perpetualMarkets``: statuses and oracle prices (the parser keeps the tickers)."""
        return await self._get(self.indexer, "/v4/perpetualMarkets")

    async def trades_page(self, ticker: str, limit: int, before_height: int | None) -> list[Event]:
        params: dict = {"limit": limit}
        if before_height is not None:
            params["createdBeforeOrAtHeight"] = before_height
        return await self._get(self.indexer, f"/v4/trades/perpetualMarket/{ticker}", params)

    async def backfill(self, ticker: str, last_seen_height: int, limit: int, max_pages: int,
                       emit: Callable[[list[Event]], None]) -> tuple[int, bool, int | None]:
        """Trades of ``ticker`` newer than ``last_seen_height`` (venues-wire §1.8 loop);
        each page's released events go to ``emit`` as soon as it is parsed.

        Returns (events emitted, complete, the lowest height fetched). The parser
        dedupes on id, so pages overlapping the re-sent snapshot add nothing.
        """
        emitted = 0
        h: int | None = None
        lowest: int | None = None
        for _ in range(max_pages):
            events = await self.trades_page(ticker, limit, h)
            emit(events)
            emitted += len(events)
            n, low = self.parser.page_size, self.parser.page_low_height
            if n == 0 or low is None:
                return emitted, True, lowest
            lowest = low if lowest is None else min(lowest, low)
            if low <= last_seen_height or n < limit:
                return emitted, True, lowest
            h = low if low != h else low - 1  # one block with > limit trades: accept the loss
        return emitted, False, lowest

    async def insurance_fund(self, address: str) -> list[Event]:
        if self.lcd is None:
            return []
        return await self._get(self.lcd, f"/cosmos/bank/v1beta1/balances/{address}")

    async def block(self, height: int) -> list[Event]:
        """A node's decoded block (block decode, venues-wire §1.7 A): names the winners of
        the ADL fills of that height that wait in the stream."""
        if self.node is None:
            return []
        return await self._get(self.node, f"{BLOCK_TXS_PATH}{height}")

    async def close(self) -> None:
        for client in (self.indexer, self.lcd, self.node):
            if client is not None:
                await client.close()


__all__ = ["IndexerRest", "RestError"]
