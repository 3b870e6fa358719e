"""Acceptance (issue 13): on a simulated cascade, ``adlmon exposure`` at the time just
before an ADL block reproduces the order in which the simulator's venue ADL'd (the
simulator ranks by the same documented index, from the state before the block), and the
rank audit of every wave agrees with it. The simulator and adlmon meet only through the
archive files."""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict

import orjson
import pytest

from adlmon import sim
from adlmon.counterfactual import Counterfactual
from adlmon.config import CounterfactualConfig
from adlmon.exposure import build_queue, queue_order
from adlmon.exposure_cli import ledger_at
from adlmon.replay import replay_files

BLOCKS_CHECKED = 4  # each check replays the input up to its block: keep the count bounded


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    out = tmp_path_factory.mktemp("cascade")
    res = sim.simulate(out, accounts=800, coins=3, shock=0.4, seed=5)
    result = replay_files(res.paths, sim.GAP_MS, sim.HORIZONS_MS)
    assert result.ok and len(result.waves) >= 2
    return res, result.waves


def _adl_blocks(waves):
    """[(time, coin, side of the ADL'd winners, [users in fill order])] over every wave."""
    blocks = defaultdict(list)
    for w in waves:
        f = w.fills
        for k in range(len(f)):
            side = "long" if f.start_position[k] > 0 else "short"
            key = (int(f.time_ms[k]), f.coin[k], side)
            if f.user[k] not in blocks[key]:
                blocks[key].append(f.user[k])
    return sorted(blocks.items())


def test_queue_before_each_adl_block_is_the_order_the_venue_adld(cascade):
    res, waves = cascade
    blocks = _adl_blocks(waves)
    assert len(blocks) >= BLOCKS_CHECKED
    order = queue_order("hyperliquid")
    picked = blocks[:BLOCKS_CHECKED - 1] + blocks[-1:]
    for (t, coin, side), users in picked:
        ledger, last, _ = ledger_at(res.paths, t - 1)
        assert last is not None and last < t
        q = build_queue(ledger.holders(coin, 1 if side == "long" else -1), order, side)
        assert list(q.users[:len(users)]) == users, (t, coin, side)


def test_rank_audit_of_every_wave_agrees_with_the_queue(cascade):
    # The wave's audit ranks against the ledger's view at the coin's first ADL block; that
    # block is audited apart (later blocks of a long wave rank a book that has moved on).
    res, waves = cascade
    cf = Counterfactual(CounterfactualConfig(mechanisms=("pro_rata",)))
    order = queue_order("hyperliquid")
    audited = 0
    for w in waves:
        firsts = {}
        for (t, coin, side), users in _adl_blocks([w]):
            firsts.setdefault(coin, (t, side, users))
        for coin, audit in cf.report(w)["counterfactual"]["rank_audit"].items():
            fb = audit["first_block"]
            t, side, users = firsts[coin]
            assert fb["unknown_accounts"] == 0 and fb["inversions"] == 0, (w.wave_id, coin, fb)
            assert fb["adl_accounts"] == len(users)
            assert fb["share_outside_head"] == pytest.approx(0.0, abs=1e-9)
            if audited < BLOCKS_CHECKED:  # and that head is the exposure queue's head then
                ledger, _, _ = ledger_at(res.paths, t - 1)
                q = build_queue(ledger.holders(coin, 1 if side == "long" else -1), order, side)
                assert fb["head_size"] <= len(users) and list(q.users[:len(users)]) == users
            audited += 1
    assert audited >= len(waves)


def test_cli_json_has_the_issue_shape(cascade, tmp_path):
    res, waves = cascade
    (t, coin, side), users = _adl_blocks(waves)[0]
    cmd = [sys.executable, "-m", "adlmon", "exposure", *map(str, res.paths), "--venue", "hyperliquid",
           "--coin", coin, "--side", side, "--at-ms", str(t - 1), "--shortfall-usd", "1000",
           "--json"]
    out = subprocess.run(cmd, capture_output=True, timeout=300)
    assert out.returncode == 0, out.stderr.decode()
    doc = orjson.loads(out.stdout)
    assert doc["at_ms"] == t - 1 and doc["coin"] == coin and doc["side"] == side
    acc = doc["accounts"]
    assert [a["user"] for a in acc[:len(users)]] == users
    for key in ("user", "rank", "score", "size", "notional_usd", "upnl_usd", "capacity_usd",
                "leverage", "production_take_usd", "take_usd"):
        assert key in acc[0], key
    assert set(acc[0]["take_usd"]) >= {"pro_rata", "capped_pro_rata", "risk_based"}
    assert doc["totals"]["production_take_usd"] == pytest.approx(
        min(1000.0, doc["totals"]["capacity_usd"]))
    human = subprocess.run(cmd[:-1], capture_output=True, timeout=300)
    assert human.returncode == 0 and users[0] in human.stdout.decode()
