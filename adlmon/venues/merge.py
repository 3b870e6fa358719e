"""Time-ordered merge of one venue's connections (pure: the clock is the caller's receive time).

A venue whose data comes on several sockets (dYdX: oracle prices on one,
trades sharded over others) delivers a block's trades and its marks in no
fixed order; the engine takes each block's marks and each loser's equity
before the block (engine.py), so it needs time order. :class:`TimeMerge`
holds events for ``hold_ms`` of receive time and releases them sorted by
(event time, arrival order).

The same rule runs live and in replay, so both give the same sequence: at
every input (a frame's events at its receive time ``t``), release what is at
or before ``t − hold_ms``, add the input, release again. A live ``tick(now)``
between inputs only releases a prefix of what the next input releases, and
``flush()`` at the end releases the rest: the order is the same either way.
An event older than what was already released (it arrived later than
``hold_ms``) is released at once and counted in ``late``.
"""

from __future__ import annotations

import heapq
from itertools import count

from adlmon.events import Event, event_time_ms


class TimeMerge:
    def __init__(self, hold_ms: int):
        if hold_ms < 0:
            raise ValueError("hold_ms must be >= 0")
        self.hold_ms = int(hold_ms)
        self._heap: list[tuple[int, int, Event]] = []
        self._seq = count()
        self.released_until: int | None = None
        self.late = 0

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, events: list[Event], t_ms: int) -> list[Event]:
        """A frame's events received at ``t_ms`` -> the events released now, in order."""
        out = self._release(t_ms - self.hold_ms)
        for e in events:
            t = event_time_ms(e)
            if self.released_until is not None and t < self.released_until:
                self.late += 1
            heapq.heappush(self._heap, (t, next(self._seq), e))
        return out + self._release(t_ms - self.hold_ms)

    def tick(self, now_ms: int) -> list[Event]:
        return self._release(now_ms - self.hold_ms)

    def flush(self) -> list[Event]:
        return self._release(None)

    def _release(self, until: int | None) -> list[Event]:
        heap = self._heap
        out = []
        while heap and (until is None or heap[0][0] <= until):
            t, _s, e = heapq.heappop(heap)
            out.append(e)
            if self.released_until is None or t > self.released_until:
                self.released_until = t
        return out
