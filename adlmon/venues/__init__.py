"""The venue registry: every venue by its fixed face (DESIGN §2; style.md "A venue's face").

Each ``adlmon/venues/<venue>/__init__.py`` defines ``FACE = VenueFace(...)``,
what the rest of adlmon may use of that venue. The core (``app.py``,
``replay.py``, ``sim.py``, the status page) asks the registry and never names
a venue, so a new venue touches only its own folder, the config defaults and
the docs. Venues are found by scanning this package: no list to edit.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Protocol

from adlmon.events import Event


class VenueSources(Protocol):
    """A venue's live sources in the daemon (websockets, REST polls, tailers)."""

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def status(self) -> dict[str, dict]: ...  # source name -> ServerState.update_source kwargs

    # Optional: ``watermark_ms() -> int``, the venue time up to which everything received
    # has been published (sources that hold events back to order them, e.g. a time merge
    # across connections); a live clock ticking the engine must not run past it.


class CaptureParser(Protocol):
    """Capture records -> events, in capture order (``adlmon.io.capture``).

    May keep the state a venue's frames need (subscription snapshots to dedupe,
    market status, last marks); otherwise pure: no I/O, no clock. Raises
    ``ParseError`` on a malformed frame (the caller counts it and goes on).
    """

    def parse(self, record: Any) -> list[Event]: ...

    # Optional: ``finish() -> list[Event]``, the events still held when the input ends
    # (a venue that merges several connections in time order holds some back).



@dataclass(frozen=True)
class SourceContext:
    """What the daemon hands a venue's sources."""

    cfg: Any  # the venue's config section ([venues.<name>])
    publish: Callable[[list[Event]], Awaitable[None]]
    metrics: Any  # adlmon.metrics.Metrics
    now_ms: Callable[[], int]  # the venue clock's estimate of exchange time
    state_dir: str = ""
    capture: Any = None  # adlmon.io.capture.CaptureWriter of this venue, or None
    rng: Any = None
    # adlmon.supervise.Supervisor of the daemon: a venue starts every long-lived task
    # (sessions, polls, tailers, start-up) with ``supervisor.spawn(name, factory)``, so it
    # is logged, counted, restarted and shown in /readyz with no code in app.py for it.
    supervisor: Any = None


@dataclass(frozen=True)
class VenueFace:
    """One venue, as the core sees it.

    ``config``: the frozen dataclass of ``[venues.<name>]`` (with ``enabled``).
    ``sources(ctx)``: its live sources. ``capture_parser(cfg)``: a fresh parser
    of its capture records. ``fake``: ``async (cascade_dir, speed=..., **kw)``
    -> a started fake venue (``.stop()``, ``.resume()``), and ``demo_config``
    (cfg section, fake) -> the section pointed at it. ``simulate(out, **kw)``
    writes a cascade in the venue's own format with ``truth.json``.
    ``coverage``: what its public data can and cannot show (status page, README).
    """

    name: str
    config: type
    sources: Callable[[SourceContext], VenueSources]
    capture_parser: Callable[[Any], CaptureParser]
    coverage: str
    fake: Callable[..., Awaitable[Any]] | None = None
    demo_config: Callable[[Any, Any], Any] | None = None
    simulate: Callable[..., Any] | None = None
    gap_ms: int = 5000  # the venue's own wave gap rule (DESIGN §4), overridable in its section
    extra: dict = field(default_factory=dict)  # venue-private hooks the core passes through


_FACES: dict[str, VenueFace] | None = None


def faces() -> dict[str, VenueFace]:
    """Every venue package that declares a ``FACE``, by name (sorted)."""
    global _FACES
    if _FACES is None:
        found = {}
        for mod in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
            if not mod.ispkg:
                continue
            face = getattr(importlib.import_module(f"{__name__}.{mod.name}"), "FACE", None)
            if isinstance(face, VenueFace):
                found[face.name] = face
        _FACES = found
    return _FACES


def face(name: str) -> VenueFace:
    try:
        return faces()[name]
    except KeyError:
        raise KeyError(f"unknown venue {name!r}; known: {', '.join(faces())}") from None
