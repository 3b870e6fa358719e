"""The in-process bus: a bounded asyncio queue of event batches (DESIGN §1, §5).

Collectors ``publish`` a batch (the events of one frame or file line); the
engine ``consume``s batches in publication order. The bound is in *events*, not
batches: a publisher waits while the queue holds ``max_events`` or more, so a
slow engine slows the collectors down (TCP backpressure reaches the venue)
instead of growing memory without limit. A batch larger than the bound is
still accepted when the queue is empty, so one huge frame (an 11k-fill block)
cannot deadlock.

The same interface (``publish``, ``consume``, ``close``) is implemented over NATS
JetStream in ``adlmon/bus/nats.py`` for scale-out.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import AsyncIterator, Protocol, Sequence

from adlmon.events import Event


class Bus(Protocol):
    async def publish(self, events: Sequence[Event]) -> None: ...
    def consume(self) -> AsyncIterator[list[Event]]: ...
    async def close(self) -> None: ...


class BusClosed(Exception):
    pass


class MemoryBus:
    def __init__(self, max_events: int = 100_000):
        if max_events <= 0:
            raise ValueError("max_events must be positive")
        self.max_events = max_events
        self._batches: deque[list[Event]] = deque()
        self._pending = 0  # events queued
        self._cond = asyncio.Condition()
        self._closed = False
        self.published = 0  # events
        self.consumed = 0
        self.high_water = 0
        self.waits = 0  # publishes that had to wait for room

    @property
    def pending(self) -> int:
        return self._pending

    async def publish(self, events: Sequence[Event]) -> None:
        if not events:
            return
        batch = list(events)
        async with self._cond:
            if self._closed:
                raise BusClosed("bus is closed")
            if self._pending and self._pending + len(batch) > self.max_events:
                self.waits += 1
                await self._cond.wait_for(
                    lambda: self._closed or not self._pending
                    or self._pending + len(batch) <= self.max_events)
                if self._closed:
                    raise BusClosed("bus is closed")
            self._batches.append(batch)
            self._pending += len(batch)
            self.published += len(batch)
            self.high_water = max(self.high_water, self._pending)
            self._cond.notify_all()

    async def get(self) -> list[Event] | None:
        """The next batch; None once the bus is closed and drained."""
        async with self._cond:
            await self._cond.wait_for(lambda: self._batches or self._closed)
            if not self._batches:
                return None
            batch = self._batches.popleft()
            self._pending -= len(batch)
            self.consumed += len(batch)
            self._cond.notify_all()
            return batch

    async def consume(self) -> AsyncIterator[list[Event]]:
        while True:
            batch = await self.get()
            if batch is None:
                return
            yield batch

    async def close(self) -> None:
        """Stop accepting batches; consumers drain what is queued, then stop."""
        async with self._cond:
            self._closed = True
            self._cond.notify_all()
