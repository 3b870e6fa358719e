"""A node deployment's clock (app.NodeClock): block times, the wall clock only after
the node's configured silence (issue 12)."""

from __future__ import annotations

from adlmon.app import NodeClock
from adlmon.engine.engine import Engine
from adlmon.events import ADL, BUY, OPEN, SELL, Fill, Liquidation

V = "hyperliquid"
L = "0x" + "1" * 40
W = "0x" + "a" * 40
M = "0x" + "c" * 40


def _fill(user, side, px, sz, start, t, kind=OPEN, liq=None):
    return Fill(V, "ETH", user, side, px, sz, t, start, kind, 0.0, 0.0, t, "0x", liq,
                "Auto-Deleveraging" if kind == ADL else "")


class Wall:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def _engine_with_a_wave():
    eng = Engine(V, 5000, (0, 2000))
    eng.apply(_fill(M, BUY, 100.0, 1.0, 0.0, 1000))
    eng.apply(_fill(W, SELL, 100.0, 2.0, 0.0, 1000))
    eng.apply(_fill(W, BUY, 99.0, 2.0, -2.0, 2000, ADL, Liquidation(L, 98.0, "backstop")))
    return eng


def test_a_stalled_node_does_not_let_wall_time_reach_horizons_or_close_waves():
    wall = Wall()
    clock = NodeClock(silence_s=30.0, wall=wall)
    eng = _engine_with_a_wave()
    clock.observe(2000)
    wall.t += 29.0  # the node stalls for 29 s: far past gap_ms and every horizon in wall time
    assert clock.now_ms() == 2000 and not clock.by_wall_clock
    assert eng.tick(clock.now_ms(), clock.horizon_status()) == []
    assert eng.waves.emitted == 0
    # The node writes again: its block times move the clock, not the stall.
    eng.apply(_fill(M, BUY, 97.0, 1.0, 1.0, 3000))
    clock.observe(3000)
    wall.t += 0.1
    assert clock.now_ms() == 3000
    assert eng.tick(clock.now_ms(), clock.horizon_status()) == []
    assert eng.waves.open_wave_start_ms == 2000  # open: 1 s of node time, not 29 s of wall time


def test_after_the_silence_the_wall_clock_takes_over_and_the_report_says_so():
    wall = Wall()
    clock = NodeClock(silence_s=30.0, wall=wall)
    eng = _engine_with_a_wave()
    clock.observe(2000)
    eng.apply(_fill(M, BUY, 97.0, 1.0, 1.0, 3000))  # H(0) reached by this block
    clock.observe(3000)
    assert eng.tick(clock.now_ms(), clock.horizon_status()) == []
    wall.t += 30.0
    assert clock.by_wall_clock and clock.now_ms() == 3000 + 30_000
    waves = eng.tick(clock.now_ms(), clock.horizon_status())
    assert len(waves) == 1
    assert waves[0].horizon_status == {0: "reached", 2000: "wall_clock"}
    assert waves[0].closed_by == "clock"


def test_a_restored_engine_holds_its_time_until_the_node_writes():
    wall = Wall()
    clock = NodeClock(silence_s=5.0, wall=wall, start_ms=2000)
    wall.t += 4.9
    assert clock.now_ms() == 2000
    wall.t += 0.1
    assert clock.by_wall_clock and clock.now_ms() == 7000
