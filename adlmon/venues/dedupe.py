"""Bounded dedupe memory for venue ids re-sent after reconnects (pure).

Venues re-send what a client may have missed (Hyperliquid's ``isSnapshot``
backfill, dYdX's subscribe snapshot and REST pages): a fill is applied once by
remembering its key; the oldest keys are forgotten past ``max_items``.
"""

from __future__ import annotations

from collections import deque


class SeenSet:
    """A set that forgets its oldest keys past ``max_items`` (bounded dedupe memory)."""

    def __init__(self, max_items: int = 200_000):
        self.max_items = max_items
        self._keys: set = set()
        self._order: deque = deque()
        self.duplicates = 0

    def add(self, key) -> bool:
        """True when ``key`` is new (and remembers it)."""
        if key in self._keys:
            self.duplicates += 1
            return False
        self._keys.add(key)
        self._order.append(key)
        if len(self._order) > self.max_items:
            self._keys.discard(self._order.popleft())
        return True

    def __contains__(self, key) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)
