"""The node tailer on a node-shaped data dir built from a simulated cascade: complete
lines only, rotation to the next hour, resume from a saved offset, a corrupt state."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from adlmon.engine.engine import Engine
from adlmon.events import Fill
from adlmon.net.quarantine import Quarantine
from adlmon.replay import replay_files
from adlmon.sim import simulate
from adlmon.venues.hyperliquid.node import STATE_FILE, NodeTailer
from adlmon.venues.hyperliquid.parse import parse_node_line

HORIZONS = (0, 1000)


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim")
    sim = simulate(out, accounts=300, coins=2, seed=11)
    fills = sim.fills_path.read_bytes().splitlines(keepends=True)
    misc = sim.misc_path.read_bytes().splitlines(keepends=True)
    return sim, fills, misc


def node_dir(root: Path, fills: list[bytes], misc: list[bytes], split: int | None = None) -> Path:
    """<root>/node_fills_by_block/hourly/20251010/{21,22} and misc_events/hourly/20251010/21
    (a file only for a non-empty part)."""
    split = len(fills) // 2 if split is None else split
    hourly = root / "node_fills_by_block" / "hourly" / "20251010"
    hourly.mkdir(parents=True)
    for hour, part in (("21", fills[:split]), ("22", fills[split:])):
        if part:
            (hourly / hour).write_bytes(b"".join(part))
    m = root / "misc_events" / "hourly" / "20251010"
    m.mkdir(parents=True)
    if misc:
        (m / "21").write_bytes(b"".join(misc))
    return root


class Sink:
    def __init__(self):
        self.events = []

    async def __call__(self, events):
        self.events.extend(events)


def tailer(root: Path, sink: Sink, state_dir: Path | None = None, **kw) -> NodeTailer:
    t = NodeTailer(root, sink, state_dir=state_dir, rotate_after_s=0.0, **kw)
    t.start()
    return t


async def drain(t: NodeTailer, rounds: int = 10) -> None:
    for _ in range(rounds):  # bounded: a few idle polls let the tail rotate
        await t.poll()


def fill_keys(events) -> list:
    return [(e.user, e.coin, e.tid, e.side) for e in events if isinstance(e, Fill)]


async def test_tail_follows_rotation_and_gives_the_replay_s_waves(cascade, tmp_path):
    sim, fills, misc = cascade
    root = node_dir(tmp_path / "data", fills, misc)
    # no state: the newest hourly file only (documented); start at the first instead
    sink = Sink()
    t = NodeTailer(root, sink, rotate_after_s=0.0)
    t.start()
    assert t.tails["node_fills_by_block"].path.name == "22"
    t.tails["node_fills_by_block"].resume({"file": "20251010/21", "offset": 0})
    await drain(t)
    assert t.tails["node_fills_by_block"].rotations == 1
    expected = [e for line in fills for e in parse_node_line(line)]
    assert sorted(fill_keys(sink.events)) == sorted(fill_keys(expected))
    engine = Engine("hyperliquid", 5000, HORIZONS)
    waves = []
    for e in sink.events:
        waves += engine.apply(e)
    waves += engine.finish()
    ref = replay_files([sim.fills_path, sim.misc_path], 5000, HORIZONS).reports
    assert [(w.t_start_ms, w.adl_fills, w.needed_usd, w.production_haircut_usd[0]) for w in waves] == \
        [(r["t_start_ms"], r["adl_fills"], r["needed_usd"], r["production_haircut_usd"]["0"]) for r in ref]
    assert t.parse_errors == {}


async def test_a_partial_last_line_waits_for_its_newline(cascade, tmp_path):
    _sim, fills, _misc = cascade
    root = node_dir(tmp_path / "data", [], [], split=0)
    path = root / "node_fills_by_block" / "hourly" / "20251010" / "22"
    line = fills[0]
    path.write_bytes(line[:40])
    sink = Sink()
    t = tailer(root, sink)
    await drain(t, 3)
    assert sink.events == [] and t.parse_errors == {}
    with open(path, "ab") as fh:
        fh.write(line[40:])
    await drain(t, 3)
    assert fill_keys(sink.events) == fill_keys(parse_node_line(line))


async def test_a_partial_line_left_behind_by_rotation_is_counted_and_quarantined(cascade, tmp_path):
    _sim, fills, _misc = cascade
    root = node_dir(tmp_path / "data", fills[:3] + [fills[3][:50]], [], split=4)
    (root / "node_fills_by_block" / "hourly" / "20251010" / "22").write_bytes(fills[4])
    sink = Sink()
    q = Quarantine(tmp_path / "q.jsonl", 100_000)
    t = NodeTailer(root, sink, rotate_after_s=0.0, quarantine=q)
    t.start()
    t.tails["node_fills_by_block"].resume({"file": "20251010/21", "offset": 0})
    await drain(t)
    assert t.parse_errors == {"node_fills_by_block": 1}
    rec = orjson.loads((tmp_path / "q.jsonl").read_bytes())
    assert rec["reason"] == "truncated_line" and rec["raw"] == fills[3][:50].decode()
    got = fill_keys(sink.events)
    want = [k for line in fills[:3] + [fills[4]] for k in fill_keys(parse_node_line(line))]
    assert got == want


async def test_restart_resumes_from_the_saved_offset_without_gaps_or_repeats(cascade, tmp_path):
    _sim, fills, misc = cascade
    root = node_dir(tmp_path / "data", fills[:100], misc[:0], split=100)
    path = root / "node_fills_by_block" / "hourly" / "20251010" / "21"
    state = tmp_path / "state"
    first = Sink()
    t = tailer(root, first, state_dir=state)
    t.tails["node_fills_by_block"].resume({"file": "20251010/21", "offset": 0})
    await drain(t, 2)
    t.save_state()
    saved = orjson.loads((state / STATE_FILE).read_bytes())
    assert saved["streams"]["node_fills_by_block"] == {"file": "20251010/21",
                                                       "offset": path.stat().st_size}
    with open(path, "ab") as fh:  # the node writes on while we are down
        fh.write(b"".join(fills[100:150]))
    second = Sink()
    t2 = tailer(root, second, state_dir=state)
    await drain(t2, 2)
    assert "resumed" in t2.resume_notes["node_fills_by_block"]
    want = [k for line in fills[:150] for k in fill_keys(parse_node_line(line))]
    assert fill_keys(first.events) + fill_keys(second.events) == want


@pytest.mark.parametrize("content", [b"{not json", b'{"streams": 5}',
                                     b'{"streams": {"node_fills_by_block": {"file": "x", "offset": -1}}}'])
async def test_a_corrupt_state_file_is_counted_and_the_tail_starts_at_the_newest_file(cascade, tmp_path, content):
    _sim, fills, misc = cascade
    root = node_dir(tmp_path / "data", fills[:20], misc[:5], split=10)
    state = tmp_path / "state"
    state.mkdir()
    (state / STATE_FILE).write_bytes(content)
    sink = Sink()
    t = tailer(root, sink, state_dir=state)
    assert t.parse_errors.get("node_state") == 1
    assert t.tails["node_fills_by_block"].path.name == "22"
    assert t.tails["node_fills_by_block"].offset == 0
    await drain(t, 2)
    want = [k for line in fills[10:20] for k in fill_keys(parse_node_line(line))]
    assert fill_keys(sink.events) == want


async def test_a_saved_offset_past_the_end_restarts_that_file(cascade, tmp_path):
    _sim, fills, _misc = cascade
    root = node_dir(tmp_path / "data", fills[:4], [], split=4)
    state = tmp_path / "state"
    state.mkdir()
    (state / STATE_FILE).write_bytes(orjson.dumps(
        {"streams": {"node_fills_by_block": {"file": "20251010/21", "offset": 10**9}}}))
    t = tailer(root, Sink(), state_dir=state)
    assert t.tails["node_fills_by_block"].offset == 0
    assert "past the end" in t.resume_notes["node_fills_by_block"]


async def test_run_saves_its_position_when_cancelled(cascade, tmp_path):
    _sim, fills, misc = cascade
    root = node_dir(tmp_path / "data", fills[:10], misc[:3], split=10)
    state = tmp_path / "state"
    sink = Sink()
    t = NodeTailer(root, sink, state_dir=state, poll_s=0.01, rotate_after_s=0.0)
    task = asyncio.create_task(t.run())
    async with asyncio.timeout(5):
        while not sink.events:
            await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    saved = orjson.loads((state / STATE_FILE).read_bytes())["streams"]
    assert saved["misc_events"]["offset"] == len(b"".join(misc[:3]))


# --- issue 9: a bad line is quarantined and skipped; the offset never passes an unapplied line ---

def _poison(line: bytes, how: str) -> bytes:
    obj = orjson.loads(line)
    if how == "users_int":
        obj["inner"][next(iter(obj["inner"]))]["users"] = 5
    else:  # a time the parser's int() chokes on
        obj["time"] = "²"
    return orjson.dumps(obj) + b"\n"


@pytest.mark.parametrize("how", ["users_int", "time_superscript"])
async def test_a_misc_line_the_parser_raises_on_is_quarantined_and_the_rest_is_applied(cascade, tmp_path, how):
    from adlmon.supervise import Supervisor
    _sim, fills, misc = cascade
    bad = next(i for i, line in enumerate(misc) if b'"users"' in line and i > 0)
    poisoned = misc[:bad] + [_poison(misc[bad], how)] + misc[bad + 1:]
    root = node_dir(tmp_path / "data", fills[:40], poisoned, split=40)
    state = tmp_path / "state"
    sink = Sink()
    q = Quarantine(tmp_path / "q.jsonl", 1_000_000)
    t = NodeTailer(root, sink, state_dir=state, poll_s=0.01, rotate_after_s=0.0, quarantine=q)
    sup = Supervisor()
    sup.spawn("hyperliquid.node", t.run)
    want_misc = sum(len(parse_node_line(line)) for i, line in enumerate(misc) if i != bad)
    want_fills = [k for line in fills[:40] for k in fill_keys(parse_node_line(line))]
    async with asyncio.timeout(10):
        while len(sink.events) < want_misc + len(want_fills):
            await asyncio.sleep(0.01)
    assert sup.states["hyperliquid.node"].failures == 0  # the source never died
    assert fill_keys(sink.events) == want_fills
    assert sum(t.parse_errors.values()) == 1 and t.parse_errors.get("misc_events") == 1
    assert q.written == 1
    await sup.stop()
    saved = orjson.loads((state / STATE_FILE).read_bytes())["streams"]
    assert saved["misc_events"]["offset"] == len(b"".join(poisoned))


async def test_a_failed_publish_never_moves_the_offset_and_the_restarted_run_rereads_the_lines(cascade, tmp_path):
    from adlmon.supervise import Supervisor
    _sim, fills, misc = cascade
    root = node_dir(tmp_path / "data", fills[:30], misc[:0], split=30)
    state = tmp_path / "state"
    got = []
    calls = {"n": 0}

    async def flaky(events):
        calls["n"] += 1
        if calls["n"] == 2:  # the bus refuses the second batch: the task fails
            raise RuntimeError("bus refused the batch")
        got.extend(events)

    t = NodeTailer(root, flaky, state_dir=state, poll_s=0.01, rotate_after_s=0.0)
    t.start()
    t.tails["node_fills_by_block"].resume({"file": "20251010/21", "offset": 0})
    # small reads so that the file takes several batches
    import adlmon.venues.hyperliquid.node as node
    old = node.MAX_READ
    node.MAX_READ = 4096
    try:
        sup = Supervisor(backoff_initial_s=0.01, backoff_max_s=0.02)
        sup.spawn("hyperliquid.node", t.run)
        want = [k for line in fills[:30] for k in fill_keys(parse_node_line(line))]
        async with asyncio.timeout(10):
            while len(fill_keys(got)) < len(want):
                await asyncio.sleep(0.01)
        assert sup.states["hyperliquid.node"].restarts == 1
        assert fill_keys(got) == want  # nothing skipped, nothing twice
        await sup.stop()
    finally:
        node.MAX_READ = old
    saved = orjson.loads((state / STATE_FILE).read_bytes())["streams"]
    assert saved["node_fills_by_block"]["offset"] == len(b"".join(fills[:30]))


async def test_the_offset_saved_by_a_dying_run_is_before_its_unpublished_lines(cascade, tmp_path):
    """Before issue 9 the position saved when the run died was the end of both files."""
    _sim, fills, misc = cascade
    root = node_dir(tmp_path / "data", fills[:20], misc[:0], split=20)
    state = tmp_path / "state"

    async def refuse(events):
        raise RuntimeError("bus down")

    t = NodeTailer(root, refuse, state_dir=state, poll_s=0.01, rotate_after_s=0.0)
    t.start()
    t.tails["node_fills_by_block"].resume({"file": "20251010/21", "offset": 0})
    with pytest.raises(RuntimeError):
        await t.run()
    saved = orjson.loads((state / STATE_FILE).read_bytes())["streams"]
    assert saved["node_fills_by_block"] == {"file": "20251010/21", "offset": 0}
    second = Sink()
    t2 = tailer(root, second, state_dir=state)
    await drain(t2, 2)
    want = [k for line in fills[:20] for k in fill_keys(parse_node_line(line))]
    assert fill_keys(second.events) == want
