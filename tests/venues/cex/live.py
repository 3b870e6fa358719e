"""Shared driver of the CEX live tests: a fake venue, the venue's real collectors
over 127.0.0.1, the ADL state tracker fed live, and the capture replayed."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path

from adlmon.engine.adlsink import AdlStateSink
from adlmon.engine.adlstate import AdlStateTracker
from adlmon.io.capture import CaptureWriter, decode_line
from adlmon.events import ParseError
from adlmon.metrics import Metrics
from adlmon.venues import SourceContext, face


def tracker_for(name: str, cfg) -> AdlStateTracker:
    return AdlStateTracker({name: face(name).extra["adl_rule"](cfg)})


async def run_live(name: str, fake, steps, tmp: Path, done, now_ms=None, **cfg_kw):
    """Play ``steps`` against the venue's sources until ``done(events)`` (bounded);
    returns (tracker, events, metrics, capture dir, status, cfg)."""
    f = face(name)
    presets = [s for s in steps if s[0] == "preset"]
    rest = [s for s in steps if s[0] != "preset"]
    await fake.play(presets)
    cfg = dataclasses.replace(f.demo_config(f.config(), fake), **cfg_kw)
    tracker = tracker_for(name, cfg)
    events = []
    metrics = Metrics(venues=(name,))
    sink = AdlStateSink(tracker, metrics)  # what the daemon does with every batch

    async def publish(batch):
        events.extend(batch)
        sink.apply(batch)

    cap_dir = tmp / "capture"
    capture = CaptureWriter(cap_dir, name, compress=False)
    # now_ms stamps FeedGaps: a scripted venue's clock keeps them inside its own timeline
    ctx = SourceContext(cfg, publish, metrics, now_ms or (lambda: int(time.time() * 1000)), capture=capture)
    feeds = f.sources(ctx)
    await feeds.start()
    try:
        await asyncio.wait_for(fake.play(rest), 60)
        # the last frame pushed is parsed once the client has read it: wait for its events
        await fake.wait_for(lambda: done(events), "the last scripted events to arrive", 20.0)
    finally:
        status = feeds.status()
        await feeds.stop()
        capture.close()
    return tracker, events, metrics, cap_dir, status, cfg


def replay(name: str, cfg, cap_dir: Path):
    """The capture through the face's CaptureParser into a fresh tracker."""
    parser = face(name).capture_parser(cfg)
    tracker = tracker_for(name, cfg)
    events, errors = [], 0
    for path in sorted(cap_dir.iterdir()):
        for line in path.read_bytes().splitlines():
            try:
                batch = parser.parse(decode_line(line))
            except ParseError:
                errors += 1
                continue
            events.extend(batch)
            tracker.apply_all(batch)
    return tracker, events, errors
