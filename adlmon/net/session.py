"""One websocket session: connect, subscribe, ping, watch, reconnect (ecosystem.md §5.1).

Used by every venue; what differs per venue comes in through a small
:class:`Adapter` (the subscriptions, the ping message, how to tell a pong, an
ack, an error and a data frame apart, and the pure parse function).

The rules (cryptofeed's connection handler, with its issue #223 fixed):

* **Transport liveness** is the venue's application ping: one every
  ``ping_interval_s``; a ping without a pong for ``liveness_timeout_s`` is
  ``ping_timeout``; no frame of any kind for ``ping_interval_s +
  liveness_timeout_s`` (or a handshake that does not finish in
  ``liveness_timeout_s``) is ``timeout``. aiohttp's own heartbeat stays off.
* **Data liveness is per channel.** A busy channel (trades, marks) has a
  silence budget and forces a reconnect (``silence``) when it is silent that
  long while the transport is fine. A quiet channel (a vault's fills) never
  does: its age is only exported.
* **Reconnects** wait an exponential backoff with full jitter, capped; a 429
  on the HTTP upgrade waits at least its ``Retry-After``. The backoff resets
  once a connection proved healthy (a pong or a data frame).
* After every reconnect, every subscription is sent again and a ``FeedGap``
  per channel is published, from the last frame of the previous connection to
  the moment the new subscriptions went out: data in between may be missing
  until the venue's own backfill (if any) fills it.
* A frame that does not parse is counted per channel and appended to the
  quarantine file; it never drops the connection. A venue error payload the
  adapter calls fatal does (``error_payload``). A ``PartialParseError`` is
  counted the same way and its good events are published.
* Bounds (issue 9): a frame larger than ``max_frame_bytes`` is refused by the
  reader from its header, before its payload is buffered (aiohttp's
  ``max_msg_size``; fragmented messages count their parts together), and ends
  the connection as ``frame_too_large``: a counted reconnect, not an RSS
  blow-up. The reader yields to the event loop every ``YIELD_EVERY`` frames,
  so a flood of frames already buffered cannot starve pings, probes and
  scrapes. Parser exceptions are logged throttled per reason, all counted.
* Optional adapter attributes, for venues that need them: ``control_pings``
  (True: liveness is websocket control frames: the venue's pings are answered
  and count as frames, and our ping is a control ping whose pong clears it,
  dYdX); ``subscribe_interval_s`` (> 0: subscriptions are paced, sent while
  the connection is already read, so the venue's heartbeat is answered
  meanwhile); ``on_raw(raw)`` (every received data frame, before decoding, e.g.
  for a capture); ``pong_text`` (bytes: a non-JSON frame that is the pong of a
  ``ping_message()`` given as bytes, sent as a literal text frame: OKX ``ping``).
* ``pace`` (optional adapter attribute, an async callable): awaited before each
  subscribe message, for a message budget per IP that several connections share
  (Lighter); subscriptions are then sent while the connection is read, as with
  ``subscribe_interval_s``.
* A venue that pings at the application level (``classify`` -> ``PING``, Lighter's
  ``{"type":"ping"}``) gets ``adapter.pong_message(obj)`` back at once.

Reconnect reasons are ``adlmon.metrics.RECONNECT_REASONS``: ``close_1000``,
``close_1001``, ``abnormal_1006`` (TCP dropped without a close frame), other
close codes, ``timeout``, ``ping_timeout``, ``silence``, ``error_payload``,
``http_429``, ``connect_error``, ``frame_too_large``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol, Sequence

import aiohttp
import orjson

from adlmon.errorlog import ErrorLog
from adlmon.events import Event, FeedGap, ParseError, PartialParseError, event_time_ms
from adlmon.metrics import reconnect_reason_for_close as close_reason
from adlmon.net.backoff import Backoff, RepeatedFailure, parse_retry_after
from adlmon.net.quarantine import Quarantine

log = logging.getLogger(__name__)

# What Adapter.classify returns for a decoded frame.
DATA, PONG, ACK, ERROR, IGNORE, PING = "data", "pong", "ack", "error", "ignore", "ping"
MAX_FRAME_BYTES = 64 << 20  # default frame cap; the largest real frame is ~5 MB (11k-fill userFills)
YIELD_EVERY = 16  # frames read back to back before the reader lets the loop run
CLOSE_MESSAGE_TOO_BIG = 1009  # RFC 6455 §7.4.1


@dataclass(frozen=True)
class ChannelPolicy:
    """How long a channel may be silent. ``silence_budget_s=None``: quiet, age only."""

    name: str
    silence_budget_s: float | None = None

    @property
    def busy(self) -> bool:
        return self.silence_budget_s is not None


class Adapter(Protocol):
    """What a venue tells the session. Everything here is pure and cheap."""

    venue: str
    channels: Sequence[ChannelPolicy]  # the data channels this session's subscriptions produce

    def subscriptions(self) -> list[Any]:
        """The messages to send after every connect (JSON-able)."""

    def ping_message(self) -> Any:
        """The application ping (JSON-able), or None when the venue needs none."""

    def classify(self, obj: Any) -> tuple[str, str]:
        """(DATA|PONG|ACK|ERROR|IGNORE, channel name) of a decoded frame."""

    def error_is_fatal(self, obj: Any) -> bool:
        """Whether an error payload means the subscriptions are not in place (reconnect)."""

    def ignore_text(self, raw: bytes) -> bool:
        """A known non-JSON frame (e.g. a greeting) that is not a parse error."""

    def guess_channel(self, raw: bytes) -> str | None:
        """The channel of a frame that is not valid JSON, when it can be told (for the count)."""

    def parse(self, channel: str, obj: Any) -> list[Event]:
        """Pure: one decoded data frame -> events. Raises ParseError (or anything) on bad input."""

    # Optional: ``on_connection(up) -> list[Event]``, called when the session is
    # subscribed (True) and when it ends (False); events returned are published.


class FeedMetrics(Protocol):
    """The feed half of ``adlmon.metrics.Metrics`` (what a session reports)."""

    def connected(self, venue: str, channel: str, up: bool) -> None: ...
    def silence_budget(self, venue: str, channel: str, seconds: float) -> None: ...
    def message(self, venue: str, channel: str, n: int = 1,
                exchange_time_ms: float | None = None, now: float | None = None) -> None: ...
    def parse_error(self, venue: str, channel: str, reason: str, n: int = 1) -> None: ...
    def reconnect(self, venue: str, channel: str, reason: str) -> None: ...
    def gap(self, venue: str, channel: str, n: int = 1) -> None: ...


class NullMetrics:
    # ``source=`` and other keywords: what adlmon.metrics.SourceMetrics adds.
    def connected(self, venue, channel, up, **_kw): pass
    def silence_budget(self, venue, channel, seconds, **_kw): pass
    def message(self, venue, channel, n=1, exchange_time_ms=None, now=None, **_kw): pass
    def parse_error(self, venue, channel, reason, n=1, **_kw): pass
    def reconnect(self, venue, channel, reason, **_kw): pass
    def gap(self, venue, channel, n=1, **_kw): pass
    def declare_feed(self, venue, channel, **_kw): pass


class WsSession:
    """Keeps one websocket to ``url`` alive until cancelled; publishes the parsed events.

    ``publish(events)`` is awaited for every non-empty batch (backpressure from
    the bus pauses reading; that pause never counts against the deadlines).
    ``clock`` (monotonic seconds) drives the deadlines, ``sleep`` the backoff
    waits, ``now_ms`` stamps FeedGaps; all three are injectable for tests.
    """

    def __init__(self, name: str, url: str, adapter: Adapter,
                 publish: Callable[[list[Event]], Awaitable[None]], *,
                 ping_interval_s: float, liveness_timeout_s: float, backoff: Backoff,
                 metrics: FeedMetrics | None = None, quarantine: Quarantine | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000),
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                 ssl: Any = True, max_frame_bytes: int = MAX_FRAME_BYTES):
        self.name = name
        self.url = url
        self.adapter = adapter
        self.venue = adapter.venue
        self.publish = publish
        self.ping_interval_s = ping_interval_s
        self.liveness_timeout_s = liveness_timeout_s
        self.backoff = backoff
        self.metrics = metrics or NullMetrics()
        self.quarantine = quarantine or Quarantine(None, 0)
        self.clock = clock
        self.now_ms = now_ms
        self.sleep = sleep
        self.ssl = ssl
        self.max_frame_bytes = max_frame_bytes
        self._errors = ErrorLog(log)
        self._policies = {p.name: p for p in adapter.channels}
        self._busy = [p for p in adapter.channels if p.busy]
        for p in self._busy:
            self.metrics.silence_budget(self.venue, p.name, p.silence_budget_s)
        # observable state (for /api/status and tests)
        self.connected = False
        self.connects = 0
        self.reconnects: dict[str, int] = {}
        self.last_reason: str | None = None
        self.last_error: str = ""
        self.history: deque[tuple[str, float]] = deque(maxlen=1000)  # (reason, delay waited)
        self.next_retry_at: float | None = None
        self.messages: dict[str, int] = {}
        self.parse_errors: dict[str, int] = {}
        self.last_data: dict[str, float] = {}  # channel -> clock() of its last data frame
        self.last_data_wall: dict[str, float] = {}  # channel -> wall time of its last data frame
        self.gaps_emitted = 0
        self.failures = RepeatedFailure(log)  # the same error once in the log, then counted
        self._last_frame = 0.0
        self._last_alive_ms: int | None = None
        self._ping_sent: float | None = None
        self._connected_at = 0.0
        self._publishing = False
        self._http: aiohttp.ClientSession | None = None
        self._control_pings = bool(getattr(adapter, "control_pings", False))
        self._subscribe_interval_s = float(getattr(adapter, "subscribe_interval_s", 0.0) or 0.0)
        self._on_raw = getattr(adapter, "on_raw", None)
        self._pace_hook = getattr(adapter, "pace", None)
        self._replies: list[str] = []  # answers to app-level venue pings, sent by the reader

    @property
    def delays(self) -> list[float]:
        return [d for _r, d in self.history]

    # ------------------------------------------------------------------ loop
    async def run(self) -> None:
        """Connect, read and reconnect forever; returns only by cancellation."""
        try:
            while True:
                reason, retry_after, detail = await self._one_connection()
                if asyncio.current_task().cancelling():  # a cancel that a cleanup absorbed
                    raise asyncio.CancelledError
                self._down(reason, detail)
                delay = self.backoff.next_delay(retry_after)
                self.history.append((reason, delay))
                self.next_retry_at = self.clock() + delay
                self.failures.failed(f"{self.name}: reconnecting", reason, detail, delay)
                await self.sleep(delay)
                self.next_retry_at = None
        finally:
            if self.connected:
                self._set_connected(False)
            if self._http is not None:
                await self._http.close()
                self._http = None

    def _down(self, reason: str, detail: str) -> None:
        if self.connected:
            self._set_connected(False)  # a down hook releases nothing
        self.reconnects[reason] = self.reconnects.get(reason, 0) + 1
        self.last_reason = reason
        self.last_error = detail
        for ch in self.adapter.channels:
            self.metrics.reconnect(self.venue, ch.name, reason)

    def _set_connected(self, up: bool) -> list[Event]:
        self.connected = up
        for ch in self.adapter.channels:
            self.metrics.connected(self.venue, ch.name, up)
        hook = getattr(self.adapter, "on_connection", None)
        return (hook(up) or []) if hook is not None else []

    async def _one_connection(self) -> tuple[str, float | None, str]:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        try:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
            # lands as the inner call completes, and run() would then never stop.
            async with asyncio.timeout(self.liveness_timeout_s):
                ws = await self._http.ws_connect(
                    self.url, compress=0, heartbeat=None, autoping=not self._control_pings,
                    autoclose=True,
                    max_msg_size=self.max_frame_bytes, decode_text=False, ssl=self.ssl,
                    timeout=aiohttp.ClientWSTimeout(ws_close=min(self.liveness_timeout_s, 5.0)))
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 429:
                retry_after = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None)
                return "http_429", retry_after, f"HTTP 429, Retry-After {retry_after}"
            return "connect_error", None, f"HTTP {exc.status} on upgrade"
        except asyncio.TimeoutError:
            return "timeout", None, f"no handshake in {self.liveness_timeout_s}s"
        except (aiohttp.ClientError, OSError) as exc:
            return "connect_error", None, f"{exc.__class__.__name__}: {exc}"
        try:
            return await self._serve(ws)
        finally:
            # A dead peer must not hold the close up: ws_close timeout is short.
            try:
                async with asyncio.timeout(min(self.liveness_timeout_s, 5.0)):
                    await ws.close()
            except (asyncio.TimeoutError, aiohttp.ClientError, OSError):
                pass

    async def _serve(self, ws: aiohttp.ClientWebSocketResponse) -> tuple[str, float | None, str]:
        now = self.clock()
        self._connected_at = now
        self._last_frame = now
        self._ping_sent = None
        for ch in self._busy:
            self.last_data[ch.name] = now
        subs = self.adapter.subscriptions()
        paced = subs[1:] if self._subscribe_interval_s > 0 or self._pace_hook else []
        try:
            if paced and self._pace_hook is not None:
                await self._pace_hook()
            for sub in subs[:1] if paced else subs:
                await ws.send_str(orjson.dumps(sub).decode())
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            return "abnormal_1006", None, f"subscribe failed: {exc}"
        self.connects += 1
        self.failures.recovered()
        released = self._set_connected(True)
        if released:
            await asyncio.shield(self.publish(released))
        log.info("%s: connected to %s, %d subscriptions", self.name, self.url, len(subs))
        if self._last_alive_ms is not None:
            await self._emit_gaps(self._last_alive_ms, self.now_ms())
        self._last_alive_ms = self.now_ms()
        reader = asyncio.create_task(self._read(ws))
        watchdog = asyncio.create_task(self._watch(ws))
        tasks = [reader, watchdog]
        if paced:
            tasks.append(asyncio.create_task(self._pace(ws, paced)))
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            while not (reader in done or watchdog in done):  # the pacer finished: keep reading
                tasks = [reader, watchdog]
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            return (reader if reader in done else watchdog).result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _pace(self, ws: aiohttp.ClientWebSocketResponse, subs: list) -> None:
        """The remaining subscriptions, one per ``subscribe_interval_s`` (a send that fails
        ends quietly: the reader sees the closed socket)."""
        for sub in subs:
            if self._pace_hook is not None:
                await self._pace_hook()
            else:
                await asyncio.sleep(self._subscribe_interval_s)
            try:
                await ws.send_str(orjson.dumps(sub).decode())
            except (aiohttp.ClientError, ConnectionError, RuntimeError):
                return

    async def _emit_gaps(self, from_ms: int, to_ms: int) -> None:
        gaps: list[Event] = []
        for ch in self.adapter.channels:
            gaps.append(FeedGap(self.venue, ch.name, from_ms, to_ms, self.last_reason or ""))
            self.metrics.gap(self.venue, ch.name)
        self.gaps_emitted += len(gaps)
        if gaps:
            await asyncio.shield(self.publish(gaps))

    # ---------------------------------------------------------------- reader
    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> tuple[str, float | None, str]:
        text, binary = aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY
        n = 0
        while True:
            msg = await ws.receive()
            n += 1
            if n % YIELD_EVERY == 0:
                # receive() does not suspend while frames are buffered: let the loop run
                await asyncio.sleep(0)
            if msg.type is text or msg.type is binary:
                outcome = self._on_frame(msg.data)
                if self._replies:
                    replies, self._replies = self._replies, []
                    try:
                        for reply in replies:
                            await ws.send_str(reply)
                    except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
                        return "abnormal_1006", None, f"pong not sent: {exc}"
                if outcome is None:
                    continue
                if isinstance(outcome, str):
                    return "error_payload", None, outcome
                self._publishing = True
                try:
                    # Shielded: a reconnect decided meanwhile must not drop a parsed batch.
                    await asyncio.shield(self.publish(outcome))
                finally:
                    self._publishing = False
                    # Time spent waiting on the bus is not the venue's silence.
                    now = self.clock()
                    self._last_frame = now
                    if self._ping_sent is not None:
                        self._ping_sent = now
            elif msg.type is aiohttp.WSMsgType.CLOSE:
                code = msg.data if isinstance(msg.data, int) else ws.close_code
                return close_reason(code), None, f"closed by venue ({code} {msg.extra or ''})".strip()
            elif msg.type is aiohttp.WSMsgType.CLOSED:
                return close_reason(ws.close_code), None, "connection closed"
            elif msg.type is aiohttp.WSMsgType.ERROR:
                # aiohttp puts a protocol error in msg.data (ws.exception() stays None)
                exc = msg.data if isinstance(msg.data, BaseException) else ws.exception()
                if CLOSE_MESSAGE_TOO_BIG in (getattr(exc, "code", None), ws.close_code):
                    return "frame_too_large", None, (f"frame over max_frame_bytes = "
                                                     f"{self.max_frame_bytes}: {exc}")
                return "abnormal_1006", None, f"transport error: {exc}"
            elif msg.type is aiohttp.WSMsgType.PING:  # control_pings: answer, and it is a frame
                self._last_frame = self.clock()
                try:
                    await ws.pong(msg.data)
                except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
                    return "abnormal_1006", None, f"pong not sent: {exc}"
            elif msg.type is aiohttp.WSMsgType.PONG:
                self._last_frame = self.clock()
                self._ping_sent = None
            # CLOSING frames (and, with autoping, PING/PONG): nothing to do.

    def _on_frame(self, raw: bytes | str) -> list[Event] | str | None:
        """Handle one frame; returns events to publish, an error text (fatal), or None."""
        now = self.clock()
        self._last_frame = now
        self._last_alive_ms = self.now_ms()
        adapter = self.adapter
        if self._on_raw is not None:
            self._on_raw(raw)
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            text = raw if isinstance(raw, bytes) else raw.encode()
            if text == getattr(adapter, "pong_text", None):  # a literal text pong (OKX)
                self._ping_sent = None
                self.backoff.reset()
                return None
            if adapter.ignore_text(text):
                return None
            self._parse_error(self._guess_channel(raw), "bad_json", str(exc), raw)
            return None
        try:
            kind, channel = adapter.classify(obj)
        except Exception as exc:  # a frame of a shape the adapter does not know
            self._parse_error("unknown", "unknown_shape", f"{exc.__class__.__name__}: {exc}", raw)
            return None
        if kind == PONG:
            self._ping_sent = None
            self.backoff.reset()
            return None
        if kind == PING:
            self._replies.append(orjson.dumps(adapter.pong_message(obj)).decode())
            return None
        if kind == DATA:
            if channel not in self._policies:
                self._parse_error("unknown", "unknown_channel", f"channel {channel!r}", raw)
                return None
            wall = time.time()
            self.last_data[channel] = now
            self.last_data_wall[channel] = wall
            self.messages[channel] = self.messages.get(channel, 0) + 1
            self.backoff.reset()
            try:
                events = adapter.parse(channel, obj)
            except ParseError as exc:
                self.metrics.message(self.venue, channel, now=wall)
                self._parse_error(channel, exc.reason, str(exc), raw)
                return (exc.events or None) if isinstance(exc, PartialParseError) else None
            except Exception as exc:  # a parser bug must not take the feed down
                self.metrics.message(self.venue, channel, now=wall)
                self._parse_error(channel, "exception", f"{exc.__class__.__name__}: {exc}", raw,
                                  exc_info=exc)
                return None
            self.metrics.message(self.venue, channel, now=wall,
                                 exchange_time_ms=event_time_ms(events[-1]) if events else None)
            return events or None
        if kind == ERROR:
            text = str(obj)[:300]
            if adapter.error_is_fatal(obj):
                log.warning("%s: venue error payload, reconnecting: %s", self.name, text)
                return text
            self._errors.log("error_payload", "%s: venue error payload (not fatal): %s", self.name,
                             text, level=logging.INFO)
            return None
        return None  # ACK / IGNORE

    def _guess_channel(self, raw: bytes | str) -> str:
        head = raw[:200] if isinstance(raw, bytes) else raw[:200].encode("utf-8", "replace")
        name = self.adapter.guess_channel(head)
        return name if name in self._policies else "unknown"

    def _parse_error(self, channel: str, reason: str, error: str, raw: bytes | str,
                     exc_info: BaseException | None = None) -> None:
        self.parse_errors[channel] = self.parse_errors.get(channel, 0) + 1
        self.metrics.parse_error(self.venue, channel, reason)
        self.quarantine.add(self.venue, channel, reason, error, raw)
        self._errors.log(reason, "%s: unparsable %s frame (%s: %s); %d so far, raw frame "
                         "quarantined", self.name, channel, reason, error[:200],
                         sum(self.parse_errors.values()), exc_info=exc_info)

    # -------------------------------------------------------------- watchdog
    def _tick_s(self) -> float:
        spans = [self.ping_interval_s, self.liveness_timeout_s]
        spans += [p.silence_budget_s for p in self._busy]
        return max(0.005, min(spans) / 4)

    async def _watch(self, ws: aiohttp.ClientWebSocketResponse) -> tuple[str, float | None, str]:
        tick = self._tick_s()
        ping = self.adapter.ping_message()
        # bytes: a literal text frame (OKX's bare ``ping``), else a JSON message.
        ping_text = (ping.decode() if isinstance(ping, bytes) else
                     orjson.dumps(ping).decode() if ping is not None else None)
        control = ping_text is None and self._control_pings
        next_ping = self._connected_at + self.ping_interval_s
        dead_after = self.ping_interval_s + self.liveness_timeout_s
        while True:
            await asyncio.sleep(tick)  # real time: the injectable sleep is for backoff waits
            now = self.clock()
            if (ping_text is not None or control) and now >= next_ping:
                next_ping = now + self.ping_interval_s
                try:
                    if control:
                        await ws.ping()
                    else:
                        await ws.send_str(ping_text)
                except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
                    return "abnormal_1006", None, f"ping not sent: {exc}"
                if self._ping_sent is None:
                    self._ping_sent = now
            if self._publishing:
                continue  # the reader is held by the bus, not by the venue
            if self._ping_sent is not None and now - self._ping_sent > self.liveness_timeout_s:
                return "ping_timeout", None, f"no pong in {self.liveness_timeout_s}s"
            if now - self._last_frame > dead_after:
                return "timeout", None, f"no frame in {dead_after}s"
            for p in self._busy:
                if now - self.last_data[p.name] > p.silence_budget_s:
                    return "silence", None, f"channel {p.name} silent for {p.silence_budget_s}s"

    # ---------------------------------------------------------------- status
    def status(self) -> dict:
        """A JSON-able view for /api/status."""
        now = self.clock()
        wall = time.time()
        channels = {}
        for p in self.adapter.channels:
            last = self.last_data_wall.get(p.name)
            channels[p.name] = {
                "busy": p.busy,
                "silence_budget_s": p.silence_budget_s,
                "messages": self.messages.get(p.name, 0),
                "parse_errors": self.parse_errors.get(p.name, 0),
                "last_message_age_s": None if last is None else round(wall - last, 3),
            }
        return {
            "kind": "websocket",
            "url": self.url,
            "connected": self.connected,
            "connects": self.connects,
            "reconnects": dict(self.reconnects),
            "last_reconnect_reason": self.last_reason,
            "last_error": self.last_error,
            "failures_in_a_row": self.failures.count,
            "next_retry_in_s": None if self.next_retry_at is None
            else round(max(0.0, self.next_retry_at - now), 3),
            "gaps": self.gaps_emitted,
            "channels": channels,
        }
