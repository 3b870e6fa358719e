"""Reconnect delays: exponential backoff with full jitter, capped (ecosystem.md §5.1 rule 4).

Full jitter (delay ~ U(0, min(cap, initial·2^n))) spreads the reconnects of many
collectors after a venue outage instead of having them all hit the venue at the
same instant. A ``Retry-After`` from the venue is a floor on the next delay.
"""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime

# A venue's Retry-After is honoured up to this; a larger value is a venue bug,
# and waiting for it would look like a dead daemon.
MAX_RETRY_AFTER_S = 600.0


class Backoff:
    """Delays for successive reconnect attempts; ``reset()`` after a healthy connection."""

    def __init__(self, initial_s: float, max_s: float, rng: random.Random | None = None,
                 factor: float = 2.0):
        if initial_s <= 0 or max_s < initial_s:
            raise ValueError(f"backoff needs 0 < initial_s <= max_s, got {initial_s}, {max_s}")
        self.initial_s = initial_s
        self.max_s = max_s
        self.factor = factor
        self.rng = rng or random.Random()
        self.attempt = 0

    def ceiling(self) -> float:
        """The upper bound of the next delay (before jitter)."""
        # min() before the power would overflow for very long outages.
        exp = min(self.attempt, 64)
        return min(self.max_s, self.initial_s * self.factor ** exp)

    def next_delay(self, retry_after_s: float | None = None) -> float:
        """The next delay in seconds: full jitter under the ceiling, at least ``retry_after_s``."""
        delay = self.rng.uniform(0.0, self.ceiling())
        self.attempt += 1
        if retry_after_s is not None and retry_after_s > 0:
            delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
        return delay

    def reset(self) -> None:
        self.attempt = 0


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date); None when absent or garbage."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


class RepeatedFailure:
    """Counts a failure that repeats (issue 8 §3): the first attempt of a new
    (reason, detail) is logged in full at WARNING, the same failure again only at
    DEBUG, with a WARNING reminder every ``remind_every`` attempts; ``count`` is
    the attempts in a row, for the status page ("connect_error ×12")."""

    def __init__(self, logger, remind_every: int = 100):
        self.log = logger
        self.remind_every = remind_every
        self.key: tuple[str, str] | None = None
        self.count = 0

    def failed(self, what: str, reason: str, detail: str, retry_in_s: float) -> int:
        if (reason, detail) != self.key:
            self.key, self.count = (reason, detail), 1
            self.log.warning("%s: %s%s; retrying in %.2f s", what, reason,
                             f": {detail}" if detail else "", retry_in_s)
        else:
            self.count += 1
            level = 30 if self.count % self.remind_every == 0 else 10  # WARNING / DEBUG
            self.log.log(level, "%s: still %s (%d attempts in a row, error logged above); "
                         "retrying in %.2f s", what, reason, self.count, retry_in_s)
        return self.count

    def recovered(self) -> None:
        self.key, self.count = None, 0
