"""The bus over NATS JetStream, for scale-out (DESIGN §5, ecosystem.md §3).

Same interface as :class:`adlmon.bus.memory.MemoryBus`: ``publish(events)``,
``consume()``, ``close()``. Collectors on any host publish; the engine of a
venue consumes through a durable pull consumer, so a restarted engine resumes
after the last batch it acknowledged.

* Subjects: ``adlmon.events.<venue>``, one stream (``[bus] stream``) over
  ``adlmon.events.>``. The partition is the venue, not the coin: one engine
  needs every coin of its venue (account equity spans coins), and one subject
  keeps a venue's events in publication order.
* A batch is one or more messages of at most ``max_events`` events (NATS caps a
  message at 1 MB by default; an 11k-fill block is several MB), published in
  order and acknowledged by JetStream before ``publish`` returns.
* Encoding (orjson): a list of ``[type, fields...]`` in each dataclass's field
  order, nested ``Liquidation`` / ``PositionSnapshot`` as lists. It round-trips
  every event exactly (floats as shortest repr).
* A consumed batch is acknowledged when the next one is asked for, i.e. after
  the engine applied it (at-least-once: a crash between apply and ack replays
  that batch; the websocket layer's dedupe keys do not span processes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import AsyncIterator, Sequence

import orjson

from adlmon import events as ev
from adlmon.validate import check_event

log = logging.getLogger(__name__)

SUBJECT_PREFIX = "adlmon.events"
MAX_EVENTS = 2000  # per message: 2000 fills encode to ~0.6 MB, under NATS's 1 MB default

_TYPES = {cls.__name__: cls for cls in (
    ev.Fill, ev.Mark, ev.Funding, ev.LedgerUpdate, ev.AccountSnapshot, ev.LiquidationOrder,
    ev.InsuranceFund, ev.AdlSignal, ev.FeedGap)}
_FIELDS = {name: tuple(f.name for f in dataclasses.fields(cls)) for name, cls in _TYPES.items()}


def _encode_one(e) -> list:
    name = e.__class__.__name__
    out = [name]
    for f in _FIELDS[name]:
        v = getattr(e, f)
        if v.__class__ is ev.Liquidation:
            v = [v.liquidated_user, v.mark_px, v.method, v.entry_px]
        elif f == "positions":
            v = [[p.coin, p.size, p.entry_px, p.mark_px] for p in v]
        out.append(v)
    return out


def encode(events: Sequence) -> bytes:
    return orjson.dumps([_encode_one(e) for e in events])


def decode(data: bytes) -> list:
    """A message -> its events, each checked against the typed boundary
    (``adlmon.validate.check_event``: a subject anyone can publish on is outside
    input). Anything else raises ``ParseError``."""
    out = []
    try:
        for item in orjson.loads(data):
            name, values = item[0], item[1:]
            cls = _TYPES[name]
            kw = dict(zip(_FIELDS[name], values))
            if name == "Fill" and kw.get("liquidation") is not None:
                liq = kw["liquidation"]
                if isinstance(liq, list) and len(liq) > 1 and liq[1] is None:
                    liq = [liq[0], float("nan"), *liq[2:]]  # JSON has no NaN: an unknown mark
                kw["liquidation"] = ev.Liquidation(*liq)
            elif name == "AccountSnapshot":
                kw["positions"] = tuple(ev.PositionSnapshot(*p) for p in kw["positions"])
            elif name == "InsuranceFund":
                kw["symbols"] = tuple(kw.get("symbols") or ())
            e = cls(**kw)
            check_event(e)
            out.append(e)
    except ev.ParseError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:  # orjson's error is a ValueError
        raise ev.ParseError("bad_value", f"bus message: {type(exc).__name__}: {exc}"[:300]) from None
    return out


def subject(venue: str) -> str:
    return f"{SUBJECT_PREFIX}.{venue}"


class NatsBus:
    """``await NatsBus.connect(url, stream, venue)``; then the MemoryBus interface."""

    def __init__(self, nc, js, stream: str, venue: str, durable: str, max_events: int = MAX_EVENTS,
                 ack_wait_s: float = 30.0):
        self.nc = nc
        self.js = js
        self.stream = stream
        self.venue = venue
        self.durable = durable
        self.max_events = max_events
        self.ack_wait_s = ack_wait_s  # an unacknowledged batch is redelivered after this
        self.published = 0
        self.consumed = 0
        self.rejected = 0  # messages refused at the typed boundary
        self._closed = False
        self._sub = None

    @classmethod
    async def connect(cls, url: str, stream: str = "ADLMON", venue: str = "hyperliquid",
                      durable: str | None = None, **kw) -> "NatsBus":
        # nats-py is the optional [nats] extra: imported only when this bus is chosen
        import nats
        from nats.js.errors import NotFoundError

        nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=-1,
                                reconnect_time_wait=1)
        js = nc.jetstream()
        try:
            await js.stream_info(stream)
        except NotFoundError:
            await js.add_stream(name=stream, subjects=[f"{SUBJECT_PREFIX}.>"])
        return cls(nc, js, stream, venue, durable or f"engine-{venue}", **kw)

    @property
    def pending(self) -> int:
        """Events this process published and its engine has not consumed yet. Collectors on
        other hosts are not counted: their backlog lives in the server."""
        return max(self.published - self.consumed, 0)

    async def publish(self, events: Sequence) -> None:
        if not events:
            return
        events = list(events)
        subj = subject(self.venue)
        for i in range(0, len(events), self.max_events):
            chunk = events[i:i + self.max_events]
            await self.js.publish(subj, encode(chunk), stream=self.stream)
            self.published += len(chunk)

    async def consume(self, batch: int = 16, timeout_s: float = 0.5) -> AsyncIterator[list]:
        import nats.errors
        from nats.js.api import ConsumerConfig

        if self._sub is None:
            self._sub = await self.js.pull_subscribe(
                subject(self.venue), durable=self.durable, stream=self.stream,
                config=ConsumerConfig(ack_wait=self.ack_wait_s))
        while not self._closed:
            try:
                msgs = await self._sub.fetch(batch=batch, timeout=timeout_s)
            except asyncio.TimeoutError:  # nats' own TimeoutError, or a fetch deadline already past
                continue
            except nats.errors.ConnectionClosedError:
                return
            for msg in msgs:
                try:
                    events = decode(msg.data)
                except ev.ParseError as exc:  # never applied, never redelivered, counted
                    self.rejected += 1
                    if self.rejected <= 10 or self.rejected % 1000 == 0:
                        log.warning("NATS bus: message %d refused (%s); %d so far", self.rejected, exc,
                                    self.rejected)
                    try:
                        await msg.term()
                    except nats.errors.ConnectionClosedError:
                        return
                    continue
                self.consumed += len(events)
                yield events
                try:
                    await msg.ack()  # the engine applied it
                except nats.errors.ConnectionClosedError:
                    return  # closed while the engine applied it: redelivered after ack_wait_s

    async def close(self) -> None:
        """Stop consuming and disconnect. Publishes are already acknowledged by JetStream;
        batches fetched but not yet applied are redelivered to the next engine after
        ``ack_wait_s`` (a drain would wait for them instead)."""
        self._closed = True
        if not self.nc.is_closed:
            await self.nc.close()
