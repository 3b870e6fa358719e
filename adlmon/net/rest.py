"""A small JSON-over-HTTP client with a weight-based token bucket and 429 handling.

Venues price REST requests in *weight* per minute per IP (Hyperliquid: 1200/min,
venues.md §1.1). The bucket holds ``weight_per_min`` and refills continuously at
``weight_per_min / 60`` per second, so a burst can spend a full minute's budget
and then waits. A 429 empties the bucket until ``Retry-After`` has passed; the
request is retried (bounded). Which request costs what is venue knowledge and
lives in ``venues/<venue>/rest.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable

import aiohttp
import orjson

from adlmon.net.backoff import Backoff, parse_retry_after

log = logging.getLogger(__name__)


class RestError(Exception):
    """A request that failed for good (after retries); ``reason`` is a stable label."""

    def __init__(self, reason: str, message: str, status: int | None = None):
        super().__init__(message)
        self.reason = reason
        self.status = status


class WeightLimiter:
    """Token bucket in request weight; FIFO among waiters. ``burst``: the bucket's size
    when the venue's window is shorter than a minute (dYdX: 100 points per 10 s is
    ``WeightLimiter(600, burst=100)``); default a full minute's weight."""

    def __init__(self, weight_per_min: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 burst: float | None = None):
        if weight_per_min <= 0:
            raise ValueError("weight_per_min must be positive")
        if burst is not None and burst <= 0:
            raise ValueError("burst must be positive")
        self.capacity = float(weight_per_min if burst is None else burst)
        self.rate = weight_per_min / 60.0
        self.clock = clock
        self.sleep = sleep
        self._tokens = self.capacity
        self._stamp = clock()
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()
        self.waited_s = 0.0  # total time requests spent waiting for budget

    def _refill(self) -> None:
        now = self.clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def available(self) -> float:
        self._refill()
        return self._tokens

    async def acquire(self, weight: float) -> None:
        """Wait until ``weight`` can be spent, then spend it."""
        weight = min(float(weight), self.capacity)  # one request never needs more than a full bucket
        async with self._lock:
            while True:
                now = self.clock()
                if now < self._blocked_until:
                    wait = self._blocked_until - now
                else:
                    self._refill()
                    if self._tokens >= weight:
                        self._tokens -= weight
                        return
                    wait = (weight - self._tokens) / self.rate
                self.waited_s += wait
                await self.sleep(wait)

    def charge(self, weight: float) -> None:
        """Spend weight after the fact (e.g. per-item costs known from the response); may go negative."""
        self._refill()
        self._tokens -= weight

    def block_for(self, seconds: float) -> None:
        """After a 429: spend nothing until ``seconds`` from now, then start from an empty bucket."""
        self._refill()
        self._blocked_until = max(self._blocked_until, self.clock() + seconds)
        self._tokens = 0.0
        self._stamp = self._blocked_until


class RestClient:
    """POST JSON bodies to one endpoint (or GET paths below it) under a WeightLimiter.

    ``post(body, weight)`` and ``get(path, params, weight)`` return the decoded
    JSON (``get_text`` also the body text, for captures). Transient failures (429,
    5xx, connection errors, timeouts) are retried up to ``max_attempts`` with
    jittered backoff; 429 honours ``Retry-After``. Everything else raises
    ``RestError`` at once. ``on_result(reason)`` is called once per attempt
    ("ok", "http_429", "http_5xx", "http_4xx", "connect_error", "timeout",
    "bad_json") for metrics.
    """

    def __init__(self, url: str, limiter: WeightLimiter, *, timeout_s: float = 10.0,
                 max_attempts: int = 3, backoff: Backoff | None = None,
                 on_result: Callable[[str], None] | None = None,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep):
        self.url = url
        self.limiter = limiter
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff = backoff or Backoff(0.5, 10.0)
        self.on_result = on_result or (lambda reason: None)
        self.sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    async def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                json_serialize=lambda o: orjson.dumps(o).decode())
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    async def post(self, body: dict, weight: float) -> Any:
        return (await self._request("POST", self.url, body, None, weight, body.get("type", body)))[0]

    async def get(self, path: str = "", params: dict | None = None, weight: float = 1.0) -> Any:
        return (await self.get_text(path, params, weight))[0]

    async def get_text(self, path: str = "", params: dict | None = None,
                       weight: float = 1.0) -> tuple[Any, str]:
        """(decoded JSON, body text) of ``GET url + path`` with query ``params``."""
        return await self._request("GET", self.url + path, None, params, weight, path)

    async def _request(self, method: str, url: str, body: dict | None, params: dict | None,
                       weight: float, what: Any) -> tuple[Any, str]:
        last: RestError | None = None
        for attempt in range(self.max_attempts):
            await self.limiter.acquire(weight)
            try:
                http = await self._http()
                if method == "POST":
                    ctx = http.post(url, data=orjson.dumps(body),
                                    headers={"Content-Type": "application/json"})
                else:
                    ctx = http.get(url, params=params)
                async with ctx as resp:
                    raw = await resp.read()
                    status = resp.status
                    if status == 429:
                        retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                        self.limiter.block_for(retry_after if retry_after is not None
                                               else self.backoff.ceiling())
                        last = RestError("http_429", f"{self.url}: 429 rate limited", status)
                    elif status >= 500:
                        last = RestError("http_5xx", f"{self.url}: HTTP {status}", status)
                    elif status >= 400:
                        self.on_result("http_4xx")
                        raise RestError("http_4xx", f"{self.url}: HTTP {status} for "
                                        f"{what}: {raw[:200]!r}", status)
                    else:
                        try:
                            obj = orjson.loads(raw)
                        except orjson.JSONDecodeError as exc:
                            self.on_result("bad_json")
                            raise RestError("bad_json", f"{self.url}: response is not JSON: {exc}",
                                            status) from None
                        self.on_result("ok")
                        self.backoff.reset()
                        return obj, raw.decode("utf-8", "replace")
            except asyncio.TimeoutError:
                last = RestError("timeout", f"{self.url}: no response in {self.timeout_s}s")
            except aiohttp.ClientError as exc:
                last = RestError("connect_error", f"{self.url}: {exc.__class__.__name__}: {exc}")
            except OSError as exc:
                last = RestError("connect_error", f"{self.url}: {exc}")
            self.on_result(last.reason)
            # After a 429 the limiter itself holds the next attempt back until Retry-After.
            if attempt + 1 < self.max_attempts and last.reason != "http_429":
                await self.sleep(self.backoff.next_delay())
        assert last is not None
        raise last
