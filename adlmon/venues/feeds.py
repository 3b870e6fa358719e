"""A venue's live sources from its pure parser: websockets and REST polls (issue 11 "Collectors").

Generic (names no venue): a venue's ``ws.py`` declares its connections
(:class:`Connection`: URL, subscriptions, ping, how to classify a frame) and its
REST polls (:class:`RestPoll`), and :class:`VenueFeeds` runs them on the shared
``adlmon.net`` session and REST client:

* every websocket frame is written to the capture (``kind: "ws"``) before it is
  parsed, every REST answer (``kind: "rest"``, ``req`` = path and query) before
  it is parsed, so a capture replayed through the venue's parser gives the live
  run's events in the same order (one event loop: capture order = parse order);
* ``first`` polls (e.g. the instrument list whose contract sizes the liquidation
  frames need) run once before the websockets start, bounded by
  ``first_timeout_s`` (a REST outage never holds the sockets back);
* REST polls share one :class:`~adlmon.net.rest.WeightLimiter` (the venue's
  weight budget); a failing poll is logged once, counted, and retried at its
  next interval; an answer that does not parse is counted as a parse error of
  its poll's channel and quarantined, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

from adlmon.events import Event, ParseError, PartialParseError
from adlmon.metrics import SourceMetrics
from adlmon.net.backoff import Backoff, RepeatedFailure
from adlmon.net.quarantine import Quarantine
from adlmon.net.rest import RestClient, RestError, WeightLimiter
from adlmon.net.session import ChannelPolicy, NullMetrics, WsSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestPoll:
    channel: str  # the metrics channel of its answers (e.g. "insurance")
    path: str
    params: tuple[tuple[str, str], ...] = ()
    interval_s: float = 60.0
    weight: float = 1.0

    @property
    def req(self) -> str:
        """Path and query, as the capture's ``req`` records it."""
        return self.path + ("?" + urllib.parse.urlencode(self.params) if self.params else "")


@dataclass
class FrameAdapter:
    """A ``WsSession`` adapter over a venue's frame rules and pure parser (adlmon.net.session)."""

    venue: str
    channels: Sequence[ChannelPolicy]
    subs: Any  # the subscribe messages, or a callable returning them
    classify: Callable[[Any], tuple[str, str]]
    parse_obj: Callable[[Any], list[Event]]
    ping: Any = None  # JSON message, or bytes for a literal text frame
    pong_text: bytes | None = None
    control_pings: bool = False
    subscribe_interval_s: float = 0.0  # > 0: messages after the first paced (a login's answer first)
    fatal: Callable[[Any], bool] = lambda obj: True
    capture: Any = None
    src: str = ""

    def subscriptions(self) -> list:
        # a callable: messages built at each connect (a private stream's signed auth)
        return list(self.subs() if callable(self.subs) else self.subs)

    def ping_message(self) -> Any:
        return self.ping

    def error_is_fatal(self, obj: Any) -> bool:
        return self.fatal(obj)

    def ignore_text(self, raw: bytes) -> bool:
        return False

    def guess_channel(self, raw: bytes) -> str | None:
        return None

    def on_raw(self, raw: bytes | str) -> None:
        if self.capture is not None:
            self.capture.write("ws", self.src, raw)

    def parse(self, channel: str, obj: Any) -> list[Event]:
        return self.parse_obj(obj)


@dataclass(frozen=True)
class Connection:
    name: str  # the source (e.g. "linear"), also the session's metrics source
    url: str
    adapter: FrameAdapter


@dataclass
class PollState:
    ok: int = 0
    errors: int = 0
    parse_errors: int = 0
    last_error: str = ""
    last_ok_wall: float | None = None
    failures: RepeatedFailure = field(default_factory=lambda: RepeatedFailure(log))


class VenueFeeds:
    """Runs a venue's connections and REST polls (module docstring); ``VenueSources``."""

    def __init__(self, venue: str, connections: list[Connection], *, rest_url: str,
                 polls: list[RestPoll], parse_rest: Callable[[str, str], list[Event]],
                 publish: Callable[[list[Event]], Awaitable[None]], first: list[RestPoll] = (),
                 metrics: Any = None, capture: Any = None, weight_per_min: float = 1200,
                 weight_burst: float | None = None, ping_interval_s: float = 20.0,
                 liveness_timeout_s: float = 10.0, backoff_initial_s: float = 1.0,
                 backoff_max_s: float = 60.0, quarantine: Quarantine | None = None,
                 first_timeout_s: float = 10.0, rng: Any = None,
                 now_ms: Callable[[], int] | None = None):
        self.venue = venue
        self.connections = connections
        self.polls = list(polls)
        self.first = list(first)
        self.parse_rest = parse_rest
        self.publish = publish
        self.metrics = metrics or NullMetrics()
        self.capture = capture
        self.quarantine = quarantine or Quarantine(None, 0)
        self.first_timeout_s = first_timeout_s
        self.now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.rest_url = rest_url
        self.rest = RestClient(rest_url, WeightLimiter(weight_per_min, burst=weight_burst),
                               backoff=Backoff(backoff_initial_s, backoff_max_s, rng=rng))
        self.poll_state: dict[str, PollState] = {p.req: PollState() for p in (*self.first, *self.polls)}
        self.sessions: list[WsSession] = []
        for c in connections:
            c.adapter.capture = capture
            c.adapter.src = c.url
            m = self._declare(c.name, [p.name for p in c.adapter.channels])
            self.sessions.append(WsSession(
                f"{venue}.{c.name}", c.url, c.adapter, publish, ping_interval_s=ping_interval_s,
                liveness_timeout_s=liveness_timeout_s,
                backoff=Backoff(backoff_initial_s, backoff_max_s, rng=rng), metrics=m,
                quarantine=self.quarantine, now_ms=self.now_ms))
        self._rest_metrics = self._declare("rest", sorted({p.channel for p in (*self.first, *self.polls)}))
        self._tasks: list[asyncio.Task] = []
        self.stage = ""

    def _declare(self, source: str, channels: list[str]) -> Any:
        metrics = SourceMetrics(self.metrics, source) if not isinstance(self.metrics, NullMetrics) \
            else self.metrics
        for ch in channels:
            metrics.declare_feed(self.venue, ch)
        return metrics

    # ------------------------------------------------------------------ life
    async def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._startup(), name=f"{self.venue}.startup"))

    async def _startup(self) -> None:
        if self.first:
            self.stage = "first REST reads"
            try:
                async with asyncio.timeout(self.first_timeout_s):
                    for p in self.first:
                        await self.poll_once(p)
            except asyncio.TimeoutError:
                log.warning("%s: first REST reads took over %.0f s; starting the sockets anyway",
                            self.venue, self.first_timeout_s)
        for s in self.sessions:
            self._tasks.append(asyncio.create_task(s.run(), name=s.name))
        for p in self.polls:
            self._tasks.append(asyncio.create_task(self._poll_forever(p), name=f"{self.venue}.{p.req}"))
        self.stage = ""

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.rest.close()

    async def _poll_forever(self, p: RestPoll) -> None:
        while True:
            await self.poll_once(p)
            await asyncio.sleep(p.interval_s)

    async def poll_once(self, p: RestPoll) -> list[Event]:
        """One REST read: capture, parse, publish. Never raises (but cancellation)."""
        st = self.poll_state[p.req]
        try:
            _obj, body = await self.rest.get_text(p.path, dict(p.params), p.weight)
        except RestError as exc:
            st.errors += 1
            st.last_error = f"{exc.reason}: {exc}"[:300]
            st.failures.failed(f"{self.venue} REST {p.req}", exc.reason, str(exc)[:200], p.interval_s)
            return []
        if self.capture is not None:
            self.capture.write("rest", self.rest_url, body, req=p.req)
        st.failures.recovered()
        try:
            events = self.parse_rest(p.req, body)
        except ParseError as exc:
            st.parse_errors += 1
            st.last_error = f"{exc.reason}: {exc}"[:300]
            self._rest_metrics.parse_error(self.venue, p.channel, exc.reason)
            self.quarantine.add(self.venue, p.channel, exc.reason, str(exc), body)
            events = exc.events if isinstance(exc, PartialParseError) else []
        st.ok += 1
        st.last_ok_wall = time.time()
        self._rest_metrics.message(self.venue, p.channel, now=st.last_ok_wall)
        if events:
            await self.publish(events)
        return events

    # ---------------------------------------------------------------- status
    def status(self) -> dict[str, dict]:
        """Source name -> ``ServerState.update_source`` fields (one reason line each)."""
        out = {}
        for c, s in zip(self.connections, self.sessions):
            st = s.status()
            up = bool(st["connected"])
            out[f"{self.venue}.{c.name}"] = {
                "healthy": up, "connected": up, "session": st, "parse_errors": dict(s.parse_errors),
                "detail": "" if up else (st["last_error"] or self.stage or "connecting")}
        for req, st in self.poll_state.items():
            up = st.ok > 0 and st.failures.count == 0
            out[f"{self.venue}.rest{req.partition('?')[0]}"] = {
                "healthy": up, "connected": up,
                "detail": "" if up else (st.last_error or "not read yet"),
                "rest": {"url": self.rest_url, "req": req, "ok": st.ok, "errors": st.errors,
                         "parse_errors": st.parse_errors, "failures_in_a_row": st.failures.count}}
        return out
