"""Throttled logging of repeated errors: the first few of each reason, then one in many,
every one counted (issue 9, "Bounds": a flood of bad input must not flood the log).

Used by the websocket sessions, the node tailer, the engine and the supervisor.
"""

from __future__ import annotations

import logging
from typing import Any


class ErrorLog:
    """Per-reason throttled logging; the rest is only counted (one helper for all callers).

    ``log(reason, msg, *args, exc_info=...)`` writes the first ``first`` records
    of each ``reason`` and then every ``every``-th; ``counts[reason]`` has them
    all. A flood of 20,000 bad frames writes a few dozen lines, not 11 MB of
    tracebacks. Reasons should be few (a parser reason, a task name, an
    exception type); past ``max_reasons`` they share the ``other`` budget.
    """

    def __init__(self, logger: logging.Logger, first: int = 10, every: int = 1000,
                 max_reasons: int = 256):
        self.logger = logger
        self.first = first
        self.every = every
        self.max_reasons = max_reasons
        self.counts: dict[str, int] = {}
        self.suppressed = 0

    def __getstate__(self) -> dict:
        """Pickled with its logger's name (a state snapshot holds the engine's)."""
        return {**self.__dict__, "logger": self.logger.name}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, logger=logging.getLogger(state["logger"]))

    def log(self, reason: str, msg: str, *args: Any, level: int = logging.WARNING,
            exc_info: Any = None) -> bool:
        """Count one record of ``reason``; log it unless throttled. True when logged."""
        if reason not in self.counts and len(self.counts) >= self.max_reasons:
            reason = "other"
        n = self.counts[reason] = self.counts.get(reason, 0) + 1
        if n <= self.first or n % self.every == 0:
            suffix = f" [{reason}: {n} so far; after {self.first}, one in {self.every} is logged]" \
                if n > 1 else ""
            self.logger.log(level, msg + suffix.replace("%", "%%"), *args, exc_info=exc_info)
            return True
        self.suppressed += 1
        return False
