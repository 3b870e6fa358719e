"""The parser fuzz harness (issue 9 acceptance): every entry point that turns outside
input into events gets generated and mutated inputs, and must either return events
that meet the typed boundary (``adlmon.validate.check_event``) and go through an
``Engine`` without an exception, or refuse the input with its declared error type
(``ParseError`` with a reason in ``validate.REASONS``; ``ConfigError`` for the
config). Anything else is a failure, reported with the input that caused it.

A venue's parsers are registered in ``tests/fuzz/entry_points.py``, one line each:

    register("lighter.ws", lighter_parse.parse_frame, seeds=frames("lighter"), form="bytes")

``form``: ``json`` (the call takes a decoded document) or ``bytes`` (a raw line
or frame; mutated structurally, then serialized, or mutated as bytes).
The waves those events close go through the counterfactual (``Counterfactual.report``).
``events``: the call returns events (or fill rows); ``False`` for parsers of
other values (config, account-value maps), which are only checked not to raise.
Run: ``python -m tests.fuzz.run`` (``make fuzz``); a small run is in ``make test``
(tests/fuzz/test_fuzz.py).
"""

from __future__ import annotations

import random
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import orjson

from adlmon import validate
from adlmon.counterfactual import Counterfactual
from adlmon.engine.engine import Engine
from adlmon.events import Fill, ParseError

from tests.fuzz.mutate import generate, mutate, mutate_bytes, vocabulary


@dataclass
class EntryPoint:
    name: str
    call: Callable[[Any], Any]
    seeds: Sequence[Any]
    form: str = "json"  # json | bytes
    events: bool = True
    errors: tuple[type[BaseException], ...] = (ParseError,)
    venue: str = "hyperliquid"
    vocab: list[str] = field(default_factory=list)


REGISTRY: dict[str, EntryPoint] = {}


def register(name: str, call: Callable[[Any], Any], seeds: Sequence[Any], *, form: str = "json",
             events: bool = True, errors: tuple[type[BaseException], ...] = (ParseError,),
             venue: str | None = None) -> EntryPoint:
    """Add one entry point (``name`` unique, ``seeds`` valid inputs as decoded JSON)."""
    if name in REGISTRY:
        raise ValueError(f"fuzz entry point {name!r} registered twice")
    if form not in ("json", "bytes") or not seeds:
        raise ValueError(f"{name}: form must be json or bytes, with at least one seed")
    ep = EntryPoint(name, call, list(seeds), form, events, errors, venue or name.split(".")[0],
                    vocabulary(list(seeds)))
    REGISTRY[name] = ep
    return ep


@dataclass
class Stats:
    name: str
    inputs: int = 0
    generated: int = 0
    mutated: int = 0
    byte_mutated: int = 0
    accepted: int = 0
    events: int = 0
    waves: int = 0
    rejected: Counter = field(default_factory=Counter)
    seconds: float = 0.0

    def add(self, other: "Stats") -> None:
        for k in ("inputs", "generated", "mutated", "byte_mutated", "accepted", "events", "waves", "seconds"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.rejected.update(other.rejected)


class FuzzFailure(AssertionError):
    pass


def _dump(doc: Any) -> bytes:
    try:
        return orjson.dumps(doc)
    except (TypeError, orjson.JSONEncodeError):  # an int beyond 64 bits: orjson refuses it
        import json
        return json.dumps(doc).encode()


def make_input(ep: EntryPoint, rng: random.Random, stats: Stats) -> Any:
    """One input for ``ep``: generated (10%), mutated seed, or (bytes) mutated bytes."""
    r = rng.random()
    if r < 0.1:
        stats.generated += 1
        doc = generate(rng, ep.vocab)
    else:
        doc = mutate(rng, rng.choice(ep.seeds), ep.vocab) if r < 0.95 or ep.form == "json" \
            else rng.choice(ep.seeds)
        stats.mutated += 1
    if ep.form == "json":
        return doc
    data = _dump(doc)
    if rng.random() < 0.3:
        stats.byte_mutated += 1
        data = mutate_bytes(rng, data)
    return data


def _as_events(out: Any) -> list:
    if out is None:
        return []
    if isinstance(out, (list, tuple)):
        return [Fill(*x) if x.__class__ is tuple else x for x in out]
    return [out]


def check_one(ep: EntryPoint, value: Any, engine: Engine | None, stats: Stats) -> None:
    """Run ``ep`` on one input; raise FuzzFailure on anything but a declared refusal."""
    stats.inputs += 1
    try:
        out = ep.call(value)
    except ep.errors as exc:
        reason = getattr(exc, "reason", type(exc).__name__)
        if isinstance(exc, ParseError) and reason not in validate.REASONS:
            raise FuzzFailure(f"{ep.name}: unbounded reason {reason!r} for {value!r:.300}") from exc
        stats.rejected[reason] += 1
        return
    except Exception as exc:  # noqa: BLE001 - the harness reports it with the input
        raise FuzzFailure(f"{ep.name}: {type(exc).__name__}: {exc} for input {value!r:.500}\n"
                          f"{traceback.format_exc()}") from exc
    stats.accepted += 1
    if not ep.events:
        return
    events = _as_events(out)
    stats.events += len(events)
    for ev in events:
        try:
            validate.check_event(ev)
        except ParseError as exc:
            raise FuzzFailure(f"{ep.name}: event breaks the boundary: {exc} from {value!r:.300}") from exc
        if engine is not None:
            try:
                waves = engine.apply(ev)
            except Exception as exc:  # noqa: BLE001
                raise FuzzFailure(f"{ep.name}: engine raised {type(exc).__name__}: {exc} on {ev!r:.300} "
                                  f"from {value!r:.300}\n{traceback.format_exc()}") from exc
            _report(ep, waves, stats)


_COUNTERFACTUAL = Counterfactual()


def _report(ep: EntryPoint, waves: list, stats: Stats) -> None:
    """Each wave the fuzzed events close also goes through the counterfactual (the
    replay's and the daemon's report builder): it must not raise either."""
    for w in waves:
        stats.waves += 1
        try:
            _COUNTERFACTUAL.report(w)
        except Exception as exc:  # noqa: BLE001
            raise FuzzFailure(f"{ep.name}: counterfactual raised {type(exc).__name__}: {exc} on wave "
                              f"{w.to_dict()!r:.600}\n{traceback.format_exc()}") from exc


def run(ep: EntryPoint, n: int, seed: int = 0, engine_every: int = 5000) -> Stats:
    """``n`` inputs for ``ep`` from ``random.Random(seed)``, through parse -> engine."""
    rng = random.Random(f"{ep.name}:{seed}")
    stats = Stats(ep.name)
    engine = Engine(ep.venue, 5000, (0, 1000)) if ep.events else None
    t0 = time.process_time()
    for i in range(n):
        check_one(ep, make_input(ep, rng, stats), engine, stats)
        if engine is not None and (i + 1) % engine_every == 0:
            _finish(ep, engine, stats)
            engine = Engine(ep.venue, 5000, (0, 1000))
    if engine is not None:
        _finish(ep, engine, stats)
    stats.seconds = time.process_time() - t0
    return stats


def _finish(ep: EntryPoint, engine: Engine, stats: Stats) -> None:
    try:
        waves = engine.finish()
    except Exception as exc:  # noqa: BLE001
        raise FuzzFailure(f"{ep.name}: engine.finish raised {type(exc).__name__}: {exc}\n"
                          f"{traceback.format_exc()}") from exc
    _report(ep, waves, stats)
