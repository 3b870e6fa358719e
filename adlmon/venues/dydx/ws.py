"""dYdX v4 indexer sources for the daemon (venues-wire.md §1.1-§1.5, §1.8, §1.9).

Connections, each one :class:`~adlmon.net.session.WsSession`:

* ``dydx.markets``: ``v4_markets`` (oracle prices every block: a busy channel
  with a silence budget; statuses) and the watched ``v4_subaccounts`` (≤ 256);
* ``dydx.trades.<k>``: ``v4_trades`` of at most ``trades_per_connection`` (32,
  the indexer's cap) markets each: ⌈N/32⌉ shards. Quiet markets are normal,
  so this channel has no silence budget (transport liveness only).

The venue's rules: liveness is websocket control frames (the server pings
every 30 s and closes 1011 without a pong; a JSON ping is ignored), so the
session answers pings and sends control pings of its own; subscribes are
paced at ``subscribes_per_s`` per connection; close codes 1008 (rate limit),
1011 (heartbeat), 1012 (restart) are reconnect reasons like any other.

Every received frame and REST answer goes to the capture (when configured)
and to the venue's one :class:`~adlmon.venues.dydx.parse.DydxStream`, in
arrival order, stamped with the venue clock (``ctx.now_ms``); the stream's
merge puts the connections' events in time order (``merge_hold_ms``), and a
tick releases them while the feeds are quiet. Replaying the capture with the
same section gives these events in this order. After a reconnect of a trades shard, the re-sent
snapshot is deduplicated on trade id and each market is backfilled from REST
by height down to the last height seen before the drop (at most
``backfill_max_pages`` pages); what could not be fetched is a ``FeedGap``
(reason ``backfill_incomplete``) on top of the session's own gap per channel.
Oracle prices missed while ``dydx.markets`` was down cannot be backfilled (the
indexer has no oracle history): the session's ``FeedGap`` says so.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from typing import Any

from adlmon.events import Event, FeedGap, ParseError, PartialParseError
from adlmon.io.capture import CLOSE, OPEN, WS
from adlmon.metrics import SourceMetrics
from adlmon.net.backoff import Backoff
from adlmon.net.quarantine import Quarantine
from adlmon.net.session import ACK, DATA, ERROR, IGNORE, ChannelPolicy, NullMetrics, WsSession
from adlmon.supervise import Supervisor
from adlmon.venues.dydx.config import DydxConfig
from adlmon.venues.dydx.address import module_address
from adlmon.venues.dydx.parse import VENUE, stream
from adlmon.venues.dydx.rest import IndexerRest

log = logging.getLogger(__name__)

MAX_TRADES_PER_CONNECTION = 32
MAX_SUBACCOUNTS_PER_CONNECTION = 256
_CHANNEL_RE = re.compile(rb'"channel"\s*:\s*"([A-Za-z0-9_]{1,40})"')
# Errors after which a subscription is not in place and a reconnect re-sends it.
_FATAL_ERRORS = ("Internal error",)  # "Too many subscribe attempts" is followed by a 1008 close

COVERAGE = {
    "trades": ("v4_trades of every subscribed market: every DELEVERAGED (ADL) and LIQUIDATED "
               "fill, public, with price, size, side and block time, so every ADL wave and its "
               "needed budget B are observable. Cannot show accounts: the winner of each ADL "
               "fill is unknown (each fill counts as its own winner, so the production haircut "
               "H is an upper bound), the loser too (the deficit is unknown), and capacities "
               "only for watched subaccounts. A DELEVERAGED trade of a market in "
               "FINAL_SETTLEMENT is a delisting close, not ADL."),
    "markets": ("v4_markets: the oracle price of every market at every block (the mark M(t) of B "
                "and H) and market statuses. Oracle prices missed during a disconnect cannot be "
                "backfilled (announced as a feed gap)."),
    "subaccounts": ("v4_subaccounts of the watched subaccounts: their equity and positions, and "
                    "their OFFSETTING/DELEVERAGED fills, which name the winner/loser of those ADL "
                    "trades (only if the fill arrives before the public trade)."),
    "insurance_fund": ("The insurance fund's USDC balance from a node's Cosmos bank REST "
                       "(lcd_url). Off by default: then the fund, and the shortfall it covers, "
                       "are unseen."),
}


class _DydxFrames:
    """What every dYdX connection shares: envelope, control-frame liveness, pacing, capture."""

    venue = VENUE
    control_pings = True

    def __init__(self, sources: "DydxSources", src: str):
        self.sources = sources
        self.src = src
        self.subscribe_interval_s = 1.0 / sources.cfg.subscribes_per_s
        self.connects = 0
        self._recv_ms = 0

    def ping_message(self) -> None:
        return None  # a JSON ping is ignored by the indexer: control pings only

    def classify(self, obj: Any) -> tuple[str, str]:
        t = obj.get("type") if isinstance(obj, dict) else None
        if t in ("subscribed", "channel_data", "channel_batch_data"):
            ch = obj.get("channel")
            if not isinstance(ch, str):
                raise ParseError("missing_field", "frame has no 'channel'")
            return DATA, ch
        if t == "error":
            return ERROR, str(obj.get("channel") or "error")
        if t in ("connected", "unsubscribed", "pong"):
            return (IGNORE if t == "connected" else ACK), t
        raise ParseError("unknown_format", f"type {t!r} is not a dYdX message type")

    def error_is_fatal(self, obj: Any) -> bool:
        message = str(obj.get("message", "")) if isinstance(obj, dict) else ""
        self.sources.venue_errors += 1
        self.sources.last_venue_error = message[:300]
        return message.startswith(_FATAL_ERRORS)

    def ignore_text(self, raw: bytes) -> bool:
        return False

    def guess_channel(self, raw: bytes) -> str | None:
        m = _CHANNEL_RE.search(raw)
        return m.group(1).decode() if m else None

    def on_raw(self, raw: bytes | str) -> None:
        self._recv_ms = self.sources.ctx.now_ms()
        cap = self.sources.ctx.capture
        if cap is not None:
            cap.write(WS, self.src, raw, self._recv_ms)

    def parse(self, channel: str, obj: Any) -> list[Event]:
        # Released events go to the outbox at once (their order is the merge's), not
        # back to the session, whose publish runs later, after other tasks' releases.
        try:
            self.sources.emit(self.sources.parser.frame(obj, self._recv_ms))
        except PartialParseError as exc:
            self.sources.emit(exc.events)
            raise ParseError(exc.reason, str(exc)) from None
        return []

    def on_connection(self, up: bool) -> list[Event]:
        cap = self.sources.ctx.capture
        if cap is not None:
            cap.write(OPEN if up else CLOSE, self.src, "", self.sources.ctx.now_ms())
        if up:
            self.connects += 1
        return []


class MarketsAdapter(_DydxFrames):
    def __init__(self, sources: "DydxSources", src: str, subaccounts: list[str]):
        super().__init__(sources, src)
        self.subaccounts = subaccounts
        self.channels = [ChannelPolicy("v4_markets", sources.cfg.markets_silence_budget_s)]
        if subaccounts:
            self.channels.append(ChannelPolicy("v4_subaccounts", None))

    def subscriptions(self) -> list[dict]:
        subs = [{"type": "subscribe", "channel": "v4_markets", "batched": False}]
        subs += [{"type": "subscribe", "channel": "v4_subaccounts", "id": s} for s in self.subaccounts]
        return subs


class TradesAdapter(_DydxFrames):
    def __init__(self, sources: "DydxSources", src: str, markets: list[str]):
        super().__init__(sources, src)
        self.markets = markets
        self.channels = [ChannelPolicy("v4_trades", None)]
        self.heights_at_drop: dict[str, int] = {}

    def subscriptions(self) -> list[dict]:
        return [{"type": "subscribe", "channel": "v4_trades", "id": m, "batched": False}
                for m in self.markets]

    def on_connection(self, up: bool) -> list[Event]:
        out = super().on_connection(up)
        last = self.sources.parser.last_height
        if not up:
            self.heights_at_drop = {m: last[m] for m in self.markets if m in last}
        elif self.connects > 1 and self.heights_at_drop:
            self.sources.schedule_backfill(dict(self.heights_at_drop))
        return out


class DydxSources:
    """Every configured dYdX source of the daemon (``VenueSources``): ``start``/``stop``/``status``."""

    def __init__(self, ctx: Any, *, discovery_timeout_s: float = 10.0):
        self.ctx = ctx
        self.cfg: DydxConfig = ctx.cfg
        self.metrics = ctx.metrics or NullMetrics()
        self.pools = {module_address(n): n for n in self.cfg.insurance_funds}
        self.parser = stream(self.cfg)
        self.rest = IndexerRest(self.cfg.rest_url, self.parser,
                                points_per_10s=self.cfg.rest_points_per_10s, now_ms=ctx.now_ms,
                                capture=ctx.capture, lcd_url=self.cfg.lcd_url,
                                node_rest_url=self.cfg.node_rest_url,
                                timeout_s=discovery_timeout_s)
        self.quarantine = Quarantine(self.cfg.quarantine_path, self.cfg.quarantine_max_bytes)
        self.markets: list[str] = list(self.cfg.markets)
        self.discovery = "config" if self.markets else "pending"
        self.sessions: dict[str, WsSession] = {}
        self.venue_errors = 0
        self.last_venue_error = ""
        self.backfills = 0
        self.backfilled_events = 0
        self.backfill_gaps = 0
        self.blocks_decoded = 0
        self.block_errors = 0
        self.insurance_polls = 0
        self.last_insurance_error = ""
        self.supervisor = ctx.supervisor or Supervisor(self.metrics, rng=ctx.rng)
        self._tasks: list[str] = []  # names of the supervised tasks of this venue
        self._blocks: asyncio.Queue[int] = asyncio.Queue()  # heights to decode
        self._backfills: asyncio.Queue[dict[str, int]] = asyncio.Queue()  # per reconnect
        self.busy = 0  # backfill or block jobs in progress (tests wait for 0)
        self._outbox: deque[list[Event]] = deque()
        self._outbox_ready = asyncio.Event()
        self.stage = ""

    def _backoff(self) -> Backoff:
        return Backoff(self.cfg.backoff_initial_s, self.cfg.backoff_max_s, rng=self.ctx.rng)

    # ------------------------------------------------------------------ start / stop
    async def start(self) -> None:
        self.stage = "discovering markets (/v4/perpetualMarkets)"
        self._spawn(self._startup, "dydx.startup", once=True)
        self._spawn(self._tick, "dydx.merge")
        self._spawn(self._pump, "dydx.publish")
        self._spawn(self._backfill_worker, "dydx.backfill")
        if self.cfg.node_rest_url:
            self._spawn(self._block_worker, "dydx.blocks")

    async def _tick(self) -> None:
        """Releases merged events while no frame arrives (a quiet venue)."""
        while True:
            await asyncio.sleep(0.05)
            self.emit(self.parser.tick(self.ctx.now_ms()))

    async def _startup(self) -> None:
        backoff = self._backoff()
        while True:
            try:
                self.emit(await self.rest.markets())
                break
            except Exception as exc:  # RestError, shapes: retry, never die
                if self.markets:  # configured: statuses are a nicety, go on without them
                    log.warning("dydx: market discovery failed (%s); using the configured markets", exc)
                    break
                self.discovery = f"pending: {exc}"
                delay = backoff.next_delay()
                log.warning("dydx: market discovery failed (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
        if not self.markets:
            self.markets = sorted(self.parser.status)
            self.discovery = "/v4/perpetualMarkets"
        cfg = self.cfg
        subs = list(cfg.subaccounts)[:MAX_SUBACCOUNTS_PER_CONNECTION]
        self._session("dydx.markets", MarketsAdapter(self, f"{cfg.ws_url}#markets", subs), "markets")
        per = min(cfg.trades_per_connection, MAX_TRADES_PER_CONNECTION)
        for k in range(0, len(self.markets), per):
            name = f"dydx.trades.{k // per}"
            self._session(name, TradesAdapter(self, f"{cfg.ws_url}#trades-{k // per}",
                                              self.markets[k:k + per]), f"trades{k // per}")
        if cfg.lcd_url:
            declare_pool = getattr(self.metrics, "declare_pool", None)  # NullMetrics has none
            for pool in self.pools.values():
                if declare_pool is not None:
                    declare_pool(VENUE, pool)
            self._spawn(self._poll_insurance, "dydx.insurance_fund")
        self.stage = ""
        log.info("dydx: %d markets (%s) on %d trades connections", len(self.markets),
                 self.discovery, len(self.sessions) - 1)

    def _session(self, name: str, adapter, source: str) -> None:
        """One connection; its feed series under ``source`` (adlmon.metrics), declared now."""
        cfg = self.cfg
        metrics = SourceMetrics(self.metrics, source)
        for ch in adapter.channels:
            metrics.declare_feed(VENUE, ch.name)
        s = WsSession(name, cfg.ws_url, adapter, self._from_session, ping_interval_s=cfg.ping_interval_s,
                      liveness_timeout_s=cfg.liveness_timeout_s, backoff=self._backoff(),
                      metrics=metrics, quarantine=self.quarantine, now_ms=self.ctx.now_ms)
        self.sessions[name] = s
        self._spawn(s.run, name)

    def emit(self, events: list[Event]) -> None:
        """Events the merge released, in release order (one outbox, one publisher)."""
        if self.parser.wanted:
            self.fetch_blocks()
        if events:
            self._outbox.append(events)
            self._outbox_ready.set()

    async def _pump(self) -> None:
        """Publishes the outbox in order (the bus's backpressure holds this task only)."""
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox:
                await self.ctx.publish(self._outbox.popleft())

    async def _from_session(self, events: list[Event]) -> None:
        """What a session publishes itself: its FeedGaps, which join the merge at now."""
        self.emit(self.parser.merge.add(events, self.ctx.now_ms()))

    def fetch_blocks(self) -> None:
        """Block decode: fetch the blocks whose ADL fills wait in the stream."""
        wanted = self.parser.wanted
        while wanted:
            self.busy += 1
            self._blocks.put_nowait(wanted.pop(0))

    async def _block_worker(self) -> None:
        while True:
            height = await self._blocks.get()
            try:
                self.emit(await self.rest.block(height))
                self.blocks_decoded += 1
            except Exception as exc:  # the fills go on unnamed after decode_wait_ms
                self.block_errors += 1
                log.warning("dydx: block %d not decoded: %s", height, exc)
            finally:
                self.busy -= 1

    def schedule_backfill(self, heights: dict[str, int]) -> None:
        self.busy += 1
        self._backfills.put_nowait(heights)

    async def _backfill_worker(self) -> None:
        while True:
            heights = await self._backfills.get()
            try:
                await self._backfill(heights)
            finally:
                self.busy -= 1

    async def _backfill(self, heights: dict[str, int]) -> None:
        cfg = self.cfg
        for ticker, height in heights.items():
            self.backfills += 1
            try:
                n, complete, lowest = await self.rest.backfill(
                    ticker, height, cfg.rest_page_limit, cfg.backfill_max_pages, self.emit)
            except Exception as exc:  # RestError: the gap stays
                n, complete, lowest = 0, False, None
                log.warning("dydx: backfill of %s failed: %s", ticker, exc)
            self.backfilled_events += n
            if not complete:
                self.backfill_gaps += 1
                now = self.ctx.now_ms()
                gap = FeedGap(VENUE, "v4_trades", now, now,
                              f"backfill_incomplete {ticker} above height {height}"
                              + (f" below {lowest}" if lowest is not None else ""))
                self.emit(self.parser.merge.add([gap], now))
                self.metrics.gap(VENUE, "v4_trades", source="rest")

    async def _poll_insurance(self) -> None:
        while True:
            for address in self.pools:
                try:
                    self.emit(await self.rest.insurance_fund(address))
                    self.insurance_polls += 1
                    self.last_insurance_error = ""
                except Exception as exc:
                    self.last_insurance_error = str(exc)[:300]
                    log.warning("dydx: insurance fund read failed: %s", exc)
            await asyncio.sleep(self.cfg.insurance_poll_interval_s)

    def _spawn(self, factory, name: str, once: bool = False) -> None:
        """Run ``factory()`` supervised: logged, counted and restarted if it raises."""
        self.supervisor.spawn(name, factory, once=once)
        if name not in self._tasks:
            self._tasks.append(name)

    async def stop(self) -> None:
        await self.supervisor.stop(self._tasks)
        self._tasks = []
        self.emit(self.parser.finish())  # nothing received is dropped
        while self._outbox:
            await self.ctx.publish(self._outbox.popleft())
        await self.rest.close()
        if self.ctx.capture is not None:
            self.ctx.capture.close()

    def watermark_ms(self) -> int:
        """Venue time up to which every event received has been published: the merge holds
        ``merge_hold_ms`` back, so a live clock (engine ``tick``) must not run past this."""
        return self.ctx.now_ms() - self.parser.merge.hold_ms

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for name, s in self.sessions.items():
            st = s.status()
            kind = "markets" if name == "dydx.markets" else "trades"
            last = max((c["last_message_age_s"] for c in st["channels"].values()
                        if c["last_message_age_s"] is not None), default=None)
            extra = {"markets": len(s.adapter.markets)} if kind == "trades" else {
                "subaccounts": len(s.adapter.subaccounts)}
            out[name] = {**st, **extra, "healthy": s.connected, "coverage": COVERAGE[kind],
                         "last_message_ts": None if last is None else time.time() - last,
                         "detail": "" if s.connected else
                         f"disconnected ({s.last_reason or 'connecting'})"}
        if self.stage:
            out["dydx.startup"] = {"kind": "startup", "healthy": False, "connected": False,
                                   "coverage": "", "detail": self.stage, "last_message_ts": None}
        out.setdefault("dydx.markets", {"kind": "websocket", "healthy": False, "connected": False,
                                        "coverage": COVERAGE["markets"],
                                        "detail": f"market discovery {self.discovery}"})
        common = {"market_discovery": self.discovery, "duplicate_trades": self.parser.seen.duplicates,
                  "final_settlement_trades": self.parser.stats["final_settlement"],
                  "backfills": self.backfills, "backfilled_events": self.backfilled_events,
                  "backfill_gaps": self.backfill_gaps, "venue_errors": self.venue_errors,
                  "block_decode": bool(self.cfg.node_rest_url), "blocks_decoded": self.blocks_decoded,
                  "block_errors": self.block_errors,
                  "decode_timeouts": self.parser.stats.get("decode_timeouts", 0)}
        out["dydx.markets"].update(common)
        if self.cfg.lcd_url:
            out["dydx.insurance_fund"] = {"kind": "rest", "healthy": not self.last_insurance_error
                                          and self.insurance_polls > 0, "connected": True,
                                          "coverage": COVERAGE["insurance_fund"],
                                          "detail": self.last_insurance_error,
                                          "last_message_ts": None}
        return out
