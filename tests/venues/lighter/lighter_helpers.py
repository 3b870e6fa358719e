"""Shared by the Lighter tests: replaying captures and comparing waves with truth.json."""

from __future__ import annotations

import pytest

from adlmon.engine.engine import Engine
from adlmon.io.capture import decode_line
from adlmon.venues.lighter.parse import LLP_MAINNET, LighterParser


def replay(paths, truth) -> tuple[list, LighterParser, Engine]:
    import lz4.frame

    parser = LighterParser(hold_ms=1000)  # the collectors' time merge, as [venues.lighter] sets it
    eng = Engine("lighter", gap_ms=truth["gap_ms"], horizons_ms=truth["horizons_ms"])
    waves = []
    for path in paths:
        raw = lz4.frame.decompress(path.read_bytes()) if path.suffix == ".lz4" else path.read_bytes()
        for line in raw.splitlines():
            for e in parser.parse(decode_line(line)):
                waves += eng.apply(e)
    for e in parser.finish():
        waves += eng.apply(e)
    return waves + eng.finish(), parser, eng


def assert_waves_match(waves, truth_waves, rel=1e-9):
    assert len(waves) == len(truth_waves) > 0
    for w, t in zip(waves, truth_waves):
        assert (w.t_start_ms, w.t_end_ms, w.adl_fills, w.accounts, w.losers) == (
            t["t_start_ms"], t["t_end_ms"], t["adl_fills"], t["accounts"], t["losers"])
        assert list(w.coins) == t["coins"]
        assert w.needed_usd == pytest.approx(t["needed_usd"], rel=rel)
        assert w.notional_usd == pytest.approx(t["notional_usd"], rel=rel)
        for h in w.horizons_ms:
            assert w.production_haircut_usd[h] == pytest.approx(t["production_haircut_usd"][str(h)],
                                                                rel=rel, abs=1e-6)
        assert w.deficit_source == "ledger"
        assert w.deficit_usd == pytest.approx(t["deficit_usd"], rel=1e-9)
        assert w.loser_users == (str(LLP_MAINNET),)
