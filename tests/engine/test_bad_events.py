"""The engine skips an event it cannot apply (issue 9): counted as ``bad_events``, the rest
of the stream (the rest of its block included) applied exactly as without it."""

from __future__ import annotations

import dataclasses

import pytest

from adlmon.engine.engine import Engine
from adlmon.engine.ledger import fill_row
from adlmon.events import Fill, LedgerUpdate, Mark
from adlmon.sim import simulate
from adlmon.venues.hyperliquid.parse import parse_node_line

HORIZONS = (0, 1000)


@pytest.fixture(scope="module")
def stream(tmp_path_factory):
    sim = simulate(tmp_path_factory.mktemp("sim"), accounts=200, coins=2, seed=5)
    events = []
    for path in (sim.fills_path, sim.misc_path):
        for line in path.read_bytes().splitlines():
            events += parse_node_line(line)
    events.sort(key=lambda e: e.time_ms)
    return events


def run(events):
    eng = Engine("hyperliquid", 5000, HORIZONS)
    waves = []
    for e in events:
        waves += eng.apply(e)
    waves += eng.finish()
    return eng, [w.to_dict() for w in waves]


def equities(eng):
    return {u: eng.ledger.equity(u) for u in eng.ledger.users()}


def _poisoned(events, make_bad):
    """The stream with a bad event inserted before every 50th event (same times)."""
    out, bad = [], 0
    for i, e in enumerate(events):
        if i % 50 == 25:
            out.append(make_bad(e))
            bad += 1
        out.append(e)
    return out, bad


BAD = {
    # the reproduction: a userEvents liquidation whose liquidated_user is an object
    "object_user_ledger_update": lambda e: LedgerUpdate(
        "hyperliquid", {"user": "0xabc"}, "liquidation", 0.0, e.time_ms, 1.0, True),
    "list_coin_mark": lambda e: Mark("hyperliquid", ["BTC"], 1.0, None, e.time_ms),
    "string_time_mark": lambda e: Mark("hyperliquid", "BTC", 1.0, None, "soon"),
    "list_user_fill": lambda e: Fill("hyperliquid", "BTC", ["0xabc"], "B", 1.0, 1.0, e.time_ms,
                                     0.0, "open", 0.0, 0.0, 1, "0x", None, "Open Long"),
    "unhashable_kind_fill": lambda e: Fill("hyperliquid", "BTC", "0xabc", "B", 1.0, 1.0,
                                           e.time_ms, 0.0, ["adl"], 0.0, 0.0, 1, "0x", None, ""),
}


@pytest.mark.parametrize("kind", sorted(BAD))
def test_a_bad_event_is_skipped_and_counted_and_the_rest_is_applied_as_without_it(stream, kind):
    ref_engine, ref_waves = run(stream)
    poisoned, n_bad = _poisoned(stream, BAD[kind])
    eng, waves = run(poisoned)
    assert eng.stats["bad_events"] == n_bad > 0
    assert waves == ref_waves and len(waves) > 0
    assert equities(eng) == pytest.approx(equities(ref_engine), rel=1e-12, abs=1e-9)
    assert eng.last_bad_event


def test_a_bad_row_inside_a_batch_of_rows_skips_only_that_row(stream):
    """A node block arrives as one batch of rows; a bad row part-way through: the rows
    before it were applied by the batch, the rows after it are applied one by one."""
    fills = [e for e in stream if isinstance(e, Fill)]
    t = fills[0].time_ms
    block = [f for f in fills if f.time_ms == t] or fills[:1]
    rows = [fill_row(f) for f in block]
    extra = [fill_row(dataclasses.replace(block[0], user=f"0xextra{i}", start_position=0.0))
             for i in range(3)]
    bad = fill_row(dataclasses.replace(block[0], user={"not": "hashable"}))
    good = rows + extra
    ref = Engine("hyperliquid", 5000, HORIZONS)
    ref.apply_fill_rows(list(good))
    ref.finish()
    eng = Engine("hyperliquid", 5000, HORIZONS)
    eng.apply_fill_rows(rows + [bad] + extra)
    eng.finish()
    assert eng.stats["bad_events"] == 1
    assert equities(eng) == equities(ref)
    assert eng.ledger.position("0xextra2", block[0].coin) == ref.ledger.position(
        "0xextra2", block[0].coin)
