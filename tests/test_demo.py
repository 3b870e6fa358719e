"""``adlmon run --demo``: a repeatable cascade, and its waves never in the production wavelog."""

from __future__ import annotations

from pathlib import Path

from adlmon.app import _demo_venue, demo_config
from adlmon.config import Config


async def test_the_same_demo_seed_plays_the_same_cascade(tmp_path):
    played = []
    for run in ("a", "b", "c"):
        fake, result = await _demo_venue(5.0, tmp_path / run, seed=17 if run != "c" else 18)
        await fake.stop()
        played.append((Path(result.fills_path).read_bytes(), result.truth["waves"]))
    assert played[0] == played[1]  # --demo-seed 17 twice: the same fills and waves
    assert played[0][0] != played[2][0]


async def test_demo_config_sends_waves_and_quarantine_to_the_demo_dir(tmp_path):
    fake, _ = await _demo_venue(5.0, tmp_path / "cascade", seed=3)
    try:
        cfg = demo_config(Config(), fake, tmp_path)
    finally:
        await fake.stop()
    assert Config().wavelog.path == "wavelog.jsonl"  # the production default
    assert cfg.wavelog.path == str(tmp_path / "wavelog.jsonl")
    assert cfg.venues.hyperliquid.quarantine_path == str(tmp_path / "quarantine.jsonl")
    assert cfg.venues.hyperliquid.ws_url == fake.ws_url
