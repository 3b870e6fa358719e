"""Lighter's public websocket sources (venues-wire.md §2.1-§2.4; issue 10 "Collectors").

Subscriptions: ``market_stats/all`` (every market's mark; one subscription)
and one ``trade/{id}`` per market (there is no all-markets trade channel).
They are sharded over connections of at most ``subscriptions_per_connection``
(100), at most ``subscriptions_per_ip`` (1,000) in all (markets beyond are
left out, with a warning). Subscribe messages of every connection share one
pacer, ``subscribe_interval_s`` apart (the venue's ~200 client messages a
minute per IP); WsSession sends them while it already reads.

Keepalive: the venue closes a socket idle for 2 minutes; an app
``{"type":"ping"}`` every ``ping_interval_s`` (30 s, as the official client)
keeps it, and a server ``ping`` is answered ``{"type":"pong"}``. Close codes
and silence are reconnect reasons (adlmon.net.session); ``market_stats`` is a
busy channel with a silence budget, ``trade`` a quiet one (a market may not
trade for minutes).

After a reconnect: the ``subscribed/trade`` snapshot re-sends recent trades,
deduplicated on ``trade_id`` by the shared parser. When a market's snapshot
does not reach back to the moment the connection was lost, ``recentTrades``
backfills it (within the REST weight budget); when that does not reach back
either, a ``FeedGap`` (``backfill_incomplete``) says what may be missing. The
session's own ``FeedGap`` per channel marks every reconnect; marks have no
backfill.

Every frame received and every REST answer is written to ``capture`` (kinds
ws/rest/open/close) with the time the parser is given, so a replay of the
capture gives the live run's events.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from typing import Any, Awaitable, Callable

from adlmon.events import Event, FeedGap, Fill, ParseError
from adlmon.metrics import SourceMetrics
from adlmon.net.backoff import Backoff
from adlmon.net.quarantine import Quarantine
from adlmon.net.session import ACK, DATA, ERROR, PING, PONG, ChannelPolicy, NullMetrics, WsSession
from adlmon.supervise import Supervisor
from adlmon.venues.lighter.parse import (
    MARKET_STATS_CHANNEL, POOL_LABEL, TRADE_CHANNEL, VENUE, LighterParser, frame_family,
)
from adlmon.venues.lighter.rest import LighterRest

log = logging.getLogger(__name__)

PING_MESSAGE = {"type": "ping"}
PONG_MESSAGE = {"type": "pong"}
MARKET_STATS_ALL = "market_stats/all"
_CHANNEL_RE = re.compile(rb'"channel"\s*:\s*"(trade|market_stats):')

COVERAGE = {
    "stream": ("Public trade/{market} (every trade with both account ids; deleverage = ADL with "
               "the winner as maker, liquidation with the liquidated taker) and market_stats/all "
               "marks: every ADL fill, B and H from public data alone. Winner capacity only where "
               "the trade carries maker_position_size_before/maker_entry_quote_before; marks "
               "missed during a reconnect are not recoverable."),
    "rest": ("orderBooks (markets), systemConfig (the LLP pool index) and the pool's account "
             "(insurance fund, the deficit where the ADL loser is the pool); recentTrades backfill "
             "after a reconnect. A user loser's deficit is not public: D is unknown for it."),
}


def shard(channels: list[str], per_connection: int, per_ip: int) -> tuple[list[list[str]], list[str]]:
    """(subscriptions per connection, channels left out by the per-IP cap)."""
    kept, dropped = channels[:per_ip], channels[per_ip:]
    return [kept[i:i + per_connection] for i in range(0, len(kept), per_connection)], dropped


class Pacer:
    """Spaces the awaiting callers ``interval_s`` apart (one budget for every connection)."""

    def __init__(self, interval_s: float, clock: Callable[[], float] = time.monotonic):
        self.interval_s = interval_s
        self.clock = clock
        self._next = 0.0
        self._lock = asyncio.Lock()
        self.sent = 0

    async def __call__(self) -> None:
        async with self._lock:
            wait = self._next - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
            self._next = self.clock() + self.interval_s
            self.sent += 1


class LighterAdapter:
    """One connection's subscriptions; the frames go to the shared parser."""

    venue = VENUE

    def __init__(self, name: str, subscriptions: list[str], feeds: "LighterFeeds",
                 marks_silence_budget_s: float):
        self.name = name
        self.subs = list(subscriptions)
        self.feeds = feeds
        self.pace = feeds.pacer  # read by WsSession: awaited before each subscribe
        self.metrics = feeds.metrics  # this connection's view (LighterFeeds sets it)
        self.markets = [int(c.split("/", 1)[1]) for c in self.subs if c.startswith("trade/")]
        self.channels = []
        if self.markets:
            self.channels.append(ChannelPolicy(TRADE_CHANNEL, None))
        if MARKET_STATS_ALL in self.subs:
            self.channels.append(ChannelPolicy(MARKET_STATS_CHANNEL, marks_silence_budget_s))
        self.frame_t = 0  # the time (venue ms estimate) the current frame was received
        self.last_frame_ms: int | None = None
        self.lost_since: int | None = None  # set while a reconnect's snapshots are awaited
        self._awaiting: set[int] = set()
        self.last_trade_ms: dict[int, int] = {}  # market -> time of the latest trade received
        self.errors: list[str] = []

    def subscriptions(self) -> list[dict]:
        return [{"type": "subscribe", "channel": c} for c in self.subs]

    def ping_message(self) -> dict:
        return PING_MESSAGE

    def pong_message(self, obj: Any) -> dict:
        return PONG_MESSAGE

    def classify(self, obj: Any) -> tuple[str, str]:
        if not isinstance(obj, dict):
            raise ParseError("bad_value", "frame is not a JSON object")
        head, family = frame_family(obj)
        if head == "pong":
            return PONG, ""
        if head == "ping":
            return PING, ""
        if head == "error":
            return ERROR, ""
        if head in ("connected", "unsubscribed"):
            return ACK, ""
        if head in ("subscribed", "update"):
            if family in (TRADE_CHANNEL, MARKET_STATS_CHANNEL):
                return DATA, family
            if head == "subscribed":
                return ACK, family  # the ack of a channel adlmon does not read
        raise ParseError("unknown_variant", f"frame type {obj.get('type')!r:.40}")

    def error_is_fatal(self, obj: Any) -> bool:
        # A refused subscription leaves a channel missing: reconnect and subscribe again.
        self.errors.append(str(obj)[:200])
        del self.errors[:-20]
        return "already subscribed" not in str(obj.get("message", "")).lower()

    def ignore_text(self, raw: bytes) -> bool:
        return False

    def guess_channel(self, raw: bytes) -> str | None:
        m = _CHANNEL_RE.search(raw)
        return m.group(1).decode() if m else None

    def _capture(self, kind: str, frame: Any) -> None:
        cap = self.feeds.capture
        if cap is not None:
            cap.write(kind, f"{self.feeds.cfg.ws_url}#{self.name}", frame, t_ms=self.frame_t)

    def on_raw(self, raw: bytes | str) -> None:
        """Session hook, every frame as received: stamps it and writes its capture line."""
        self.frame_t = self.last_frame_ms = self.feeds.now_ms()
        self._capture("ws", raw)

    def on_connection(self, up: bool) -> list[Event]:
        """Session hook: the connection's open / close marks in the capture; after a loss
        the re-sent snapshots are checked for what they do not cover."""
        self.frame_t = self.feeds.now_ms()
        self._capture("open" if up else "close", "")
        if not up and self.last_frame_ms is not None:
            self.lost_since = self.last_frame_ms
            self._awaiting = set(self.markets)
        return []

    def parse(self, channel: str, obj: Any) -> list[Event]:
        parser = self.feeds.parser
        before = Counter(parser.rejected)
        events = parser.ws_frame(obj, self.frame_t, src=self.name)
        self.feeds.report_rejections(self.metrics, channel, before)
        if channel == TRADE_CHANNEL:
            if self.lost_since is not None and str(obj.get("type", "")).startswith("subscribed/"):
                self._check_snapshot(obj)
            self._note_trades(obj)
        return parser.feed(events, self.frame_t)

    @staticmethod
    def _market_of(obj: dict) -> int | None:
        try:
            return int(str(obj.get("channel", "")).split(":", 1)[1])
        except (IndexError, ValueError):
            return None

    @staticmethod
    def _times(obj: dict) -> list[int]:
        times = [t.get("timestamp") for key in ("trades", "liquidation_trades")
                 for t in obj.get(key) or () if isinstance(t, dict)]
        return [t for t in times if t.__class__ is int]

    def _note_trades(self, obj: dict) -> None:
        market, times = self._market_of(obj), self._times(obj)
        if market is not None and times:
            self.last_trade_ms[market] = max(max(times), self.last_trade_ms.get(market, 0))

    def _check_snapshot(self, obj: dict) -> None:
        """A re-sent snapshot that does not reach back to the loss: backfill the market."""
        market = self._market_of(obj)
        if market not in self._awaiting:
            return
        self._awaiting.discard(market)
        times = self._times(obj)
        # Covered when the snapshot reaches back to the last trade we had of the market
        # (event times on both sides; the loss time only for a market not seen trading).
        since = self.last_trade_ms.get(market, self.lost_since)
        if times and min(times) > since:
            self.feeds.backfill(market, since, self.metrics)
        if not self._awaiting:
            self.lost_since = None


class LighterFeeds:
    """Builds and runs the Lighter sources: REST discovery, sharded websockets, pool polls.

    ``publish(events)`` is the bus; ``now_ms()`` the daemon's estimate of venue
    time (frames are stamped with it); ``capture`` an ``adlmon.io.capture.CaptureWriter``
    or None. ``start()`` returns at once (discovery runs in the background);
    ``stop()`` cancels every task and closes every socket.
    """

    def __init__(self, cfg, publish: Callable[[list[Event]], Awaitable[None]], *, metrics=None,
                 now_ms: Callable[[], int] | None = None, capture=None, rng=None,
                 discovery_timeout_s: float = 10.0, supervisor: Supervisor | None = None):
        self.cfg = cfg
        self.publish = publish
        self.metrics = metrics or NullMetrics()
        self.now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.capture = capture
        self.rng = rng
        self.parser = LighterParser(cfg)
        rest_metrics = SourceMetrics(self.metrics, "rest")
        self.rest = LighterRest(cfg, self.parser, now_ms=self.now_ms, capture=capture,
                                on_parse_error=lambda r: rest_metrics.parse_error(VENUE, "rest", r),
                                timeout_s=discovery_timeout_s)
        self.quarantine = Quarantine(cfg.quarantine_path, cfg.quarantine_max_bytes)
        self.pacer = Pacer(cfg.subscribe_interval_s)
        self.markets: list[int] = list(cfg.markets)
        self.left_out: list[str] = []
        self.sessions: dict[str, WsSession] = {}
        self.stage = ""
        self.backfilled = 0
        self.backfill_gaps = 0
        self.backfill_pending = 0  # markets queued or being backfilled
        self.pool_polls = 0
        self.last_error = ""
        self._backfill_q: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        # Every task runs supervised (adlmon/supervise.py): the daemon's, or a private one.
        self.supervisor = supervisor or Supervisor(self.metrics, rng=rng)
        self._tasks: list[str] = []  # names of this venue's supervised tasks
        self.started = False

    def _backoff(self) -> Backoff:
        return Backoff(self.cfg.backoff_initial_s, self.cfg.backoff_max_s, rng=self.rng)

    def report_rejections(self, metrics, channel: str, before: Counter) -> None:
        for reason, n in self.parser.rejected.items():
            if n > before.get(reason, 0):
                metrics.parse_error(VENUE, channel, reason, n - before.get(reason, 0))

    # ------------------------------------------------------------------ start
    async def start(self) -> None:
        declare_pool = getattr(self.metrics, "declare_pool", None)
        if declare_pool is not None:
            declare_pool(VENUE, POOL_LABEL)
        self.stage = "starting"
        # Restartable: a rerun starts only what is missing.
        self._spawn(self._startup, "lighter.startup", once=True)
        self.started = True

    async def _retry(self, what: str, call):
        backoff = self._backoff()
        while True:
            try:
                return await call()
            except Exception as exc:  # RestError, shapes: retry with backoff, never die
                self.last_error = f"{what}: {exc}"
                delay = backoff.next_delay()
                log.warning("lighter: %s failed (%s); retrying in %.1f s", what, exc, delay)
                await asyncio.sleep(delay)

    async def _startup(self) -> None:
        cfg = self.cfg
        self.stage = "discovering markets (orderBooks)"
        if cfg.markets:
            try:
                await self.rest.markets()  # names only; the configured list stands
            except Exception as exc:
                log.warning("lighter: orderBooks failed (%s); markets named by id", exc)
        else:
            self.markets = await self._retry("market discovery", self.rest.markets)
        if self.parser.pool_index is None:
            self.stage = "reading the LLP pool index (systemConfig)"
            await self._retry("systemConfig", self.rest.pool_index)
        self.stage = "reading the LLP pool account"
        await self._poll_pool_once()
        channels = [MARKET_STATS_ALL] + [f"trade/{m}" for m in self.markets]
        shards, self.left_out = shard(channels, cfg.subscriptions_per_connection,
                                      cfg.subscriptions_per_ip)
        if self.left_out:
            log.warning("lighter: %d markets exceed the %d-subscription cap per IP; not watched: %s",
                        len(self.left_out), cfg.subscriptions_per_ip, ", ".join(self.left_out[:10]))
        for i, subs in enumerate(shards):
            if f"lighter.stream.{i}" not in self.sessions:
                self._start_session(f"lighter.stream.{i}", subs, f"stream{i}")
        self._spawn(self._backfill_worker, "lighter.backfill")
        self._spawn(self._poll_pool_forever, "lighter.pool")
        self._spawn(self._release_held, "lighter.merge")
        self.stage = ""

    def _start_session(self, name: str, subs: list[str], source: str) -> None:
        cfg = self.cfg
        adapter = LighterAdapter(name, subs, self, cfg.marks_silence_budget_s)
        # Each connection's series of its own (a bounded `source` label: ≤ 10 shards).
        metrics = SourceMetrics(self.metrics, source)
        adapter.metrics = metrics
        declare = getattr(metrics, "declare_feed", None)
        for ch in adapter.channels if declare is not None else ():
            declare(VENUE, ch.name)
        session = WsSession(name, cfg.ws_url, adapter, self.publish,
                            ping_interval_s=cfg.ping_interval_s,
                            liveness_timeout_s=cfg.liveness_timeout_s, backoff=self._backoff(),
                            metrics=metrics, quarantine=self.quarantine, now_ms=self.now_ms,
                            max_frame_bytes=cfg.max_frame_bytes)
        self.sessions[name] = session
        self._spawn(session.run, name)

    # ------------------------------------------------------------ REST tasks
    async def _poll_pool_once(self) -> None:
        try:
            events = await self.rest.pool_account()
        except Exception as exc:
            self.last_error = f"pool account: {exc}"
            log.warning("lighter: pool account read failed: %s", exc)
            return
        self.pool_polls += 1
        fund = self.parser.fund
        if fund is not None and hasattr(self.metrics, "set_insurance_fund"):
            self.metrics.set_insurance_fund(VENUE, fund.pool, fund.balance_usd, fund.time_ms / 1000)
        if events:
            await self._emit(events)

    async def _poll_pool_forever(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.pool_poll_interval_s)
            await self._poll_pool_once()

    async def _emit(self, events: list[Event]) -> None:
        """Publish as WsSession does (shielded: a task of its own), so batches the merge
        released reach the bus in the order they were released, whoever released them."""
        await asyncio.shield(self.publish(events))

    async def _release_held(self) -> None:
        """The time merge releases by the clock too (a quiet feed must not hold events)."""
        while True:
            await asyncio.sleep(0.05)
            released = self.parser.tick(self.now_ms())
            if released:
                await self._emit(released)

    def backfill(self, market: int, since_ms: int, metrics=None) -> None:
        self.backfill_pending += 1
        self._backfill_q.put_nowait((market, since_ms, metrics or self.metrics))

    async def _backfill_worker(self) -> None:
        while True:
            market, since, metrics = await self._backfill_q.get()
            try:
                events, oldest, n = await self.rest.recent_trades(market)
            except Exception as exc:
                events, oldest, n = [], None, 0
                self.last_error = f"recentTrades {market}: {exc}"
                log.warning("lighter: backfill of market %d failed: %s", market, exc)
            self.backfilled += sum(1 for e in self.rest.last_parsed if isinstance(e, Fill))
            if oldest is None or (oldest > since and n >= self.cfg.backfill_limit):
                self.backfill_gaps += 1
                metrics.gap(VENUE, TRADE_CHANNEL)
                now = self.now_ms()
                events = events + self.parser.feed([FeedGap(
                    VENUE, TRADE_CHANNEL, since, oldest if oldest is not None else now,
                    "backfill_incomplete")], now)
            if events:
                await self._emit(events)
            self.backfill_pending -= 1

    # ------------------------------------------------------------------ stop
    def _spawn(self, factory: Callable[[], Awaitable[Any]], name: str, once: bool = False) -> None:
        """Run ``factory()`` supervised: logged, counted and restarted if it raises."""
        self.supervisor.spawn(name, factory, once=once)
        if name not in self._tasks:
            self._tasks.append(name)

    async def stop(self) -> None:
        await self.supervisor.stop(self._tasks)
        self._tasks = []
        await self.rest.close()
        held = self.parser.finish()  # nothing received is dropped
        if held:
            await self._emit(held)

    # ----------------------------------------------------------------- status
    def status(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        p = self.parser
        for name, s in self.sessions.items():
            st = s.status()
            last = max((c["last_message_age_s"] for c in st["channels"].values()
                        if c["last_message_age_s"] is not None), default=None)
            detail = "" if s.connected else (
                f"disconnected ({s.last_reason or 'connecting'}"
                f"{': ' + s.last_error if s.last_error else ''})")
            out[name] = {**st, "healthy": s.connected, "coverage": COVERAGE["stream"],
                         "subscriptions": len(s.adapter.subs),
                         "last_message_ts": None if last is None else time.time() - last,
                         "detail": detail}
        out["lighter.rest"] = {
            "kind": "rest", "healthy": self.pool_polls > 0 or not self.started,
            "connected": self.pool_polls > 0, "coverage": COVERAGE["rest"],
            "detail": self.stage or self.last_error, "markets": len(self.markets),
            "left_out": len(self.left_out), "pool_index": p.pool_index,
            "results": dict(self.rest.results), "backfilled_fills": self.backfilled,
            "backfill_gaps": self.backfill_gaps, "duplicate_trades": p.stats["duplicates"],
            "rejected": dict(p.rejected), "parser": dict(p.stats), "last_message_ts": None}
        return out
