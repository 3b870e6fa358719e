"""The simulator (adlmon/sim.py): archive formats, determinism, accounting, truth.

The reference replay below is written from CONTRACT "Engine accounting" and
"Wave definitions" independently of adlmon/engine: it re-reads the files the
simulator wrote and must arrive at the simulator's truth.json.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import lz4.frame
import orjson
import pytest

from adlmon import sim
from adlmon.cli import main as cli_main

FIXTURE = Path(__file__).parent / "fixtures" / "hyperliquid" / "adl_block_758800641.jsonl"
NUMBER_STRINGS = ("px", "sz", "startPosition", "closedPnl", "fee")
SMALL = dict(accounts=1500, coins=3, seed=7)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> sim.SimResult:
    return sim.simulate(tmp_path_factory.mktemp("sim"), **SMALL)


def blocks(path) -> list[dict]:
    return [orjson.loads(line) for line in sim.open_lines(path)]


def fills(res) -> list[tuple[str, dict]]:
    return [(u, f) for b in blocks(res.fills_path) for u, f in b["events"]]


def iso_ms(text: str) -> int:
    head, frac = text.split(".")
    dt = datetime.fromisoformat(head).replace(tzinfo=timezone.utc)
    return int(dt.timestamp()) * 1000 + int(frac[:3])


# ---------------------------------------------------------------- reference replay

class RefReplay:
    """Contract accounting, from the files alone (no adlmon.engine)."""

    def __init__(self, res: sim.SimResult):
        self.cash: dict[str, float] = {}
        self.pos: dict[tuple[str, str], list[float]] = {}
        self.mark: dict[str, float] = {}
        self.av0 = {r["user"]: r["account_value"]
                    for r in orjson.loads(res.account_snapshot_path.read_bytes())}
        upnl = dict.fromkeys(self.av0, 0.0)
        for m in orjson.loads(res.positions_snapshot_path.read_bytes()):
            coin = m["market_name"].split(":", 1)[1]
            assert m["position_count"] == len(m["positions"])
            for p in m["positions"]:
                mk = p["notional_size"] / abs(p["size"])
                upnl[p["user"]] += p["size"] * (mk - p["entry_price"])
                self.pos[(p["user"], coin)] = [p["size"], p["entry_price"]]
                self.mark.setdefault(coin, mk)
        self.cash = {u: self.av0[u] - upnl[u] for u in self.av0}
        self.fees = self.funding = self.deposits = 0.0
        self.adl_checks: list[dict] = []  # per ADL block: loser equity before, ranking facts

    def equity(self, user: str) -> float:
        eq = self.cash.get(user, 0.0)
        for (u, c), (s, e) in self.pos.items():
            if u == user and s:
                eq += s * (self.mark[c] - e)
        return eq

    def apply_fill(self, user: str, f: dict) -> None:
        coin, px, sz = f["coin"], float(f["px"]), float(f["sz"])
        s, e = self.pos.get((user, coin), [0.0, 0.0])
        start = float(f["startPosition"])
        assert abs(s - start) <= 1e-9 * max(1.0, abs(s)), (user, f, s)
        s = start
        d = sz if f["side"] == "B" else -sz
        if s == 0.0:
            e, closed = px, 0.0
        elif (s > 0) == (d > 0):
            e, closed = (abs(s) * e + sz * px) / (abs(s) + sz), 0.0
        else:
            closed = min(sz, abs(s)) * (px - e) * (1.0 if s > 0 else -1.0)
            if sz > abs(s):
                e = px
        assert float(f["closedPnl"]) == pytest.approx(closed, rel=1e-12, abs=1e-9)
        fee = float(f["fee"])
        self.cash[user] = self.cash.get(user, 0.0) + float(f["closedPnl"]) - fee
        self.fees += fee
        self.pos[(user, coin)] = [s + d, e]
        self.mark[coin] = px

    def apply_misc(self, ev: dict) -> None:
        inner = ev["inner"]
        if "Funding" in inner:
            for d in inner["Funding"]["deltas"]:
                a = float(d["funding_amount"])
                self.cash[d["user"]] += a
                self.funding += a
        else:
            delta = inner["LedgerUpdate"]["delta"]
            if delta["type"] == "deposit":
                a = float(delta["usdc"])
                self.cash[inner["LedgerUpdate"]["users"][0]] += a
                self.deposits += a

    def run(self, res: sim.SimResult) -> "RefReplay":
        misc = [orjson.loads(x) for x in sim.open_lines(res.misc_path)]
        items = [(iso_ms(m["time"]), 0, m) for m in misc]
        items += [(b["events"][0][1]["time"], 1, b) for b in blocks(res.fills_path)]
        items.sort(key=lambda x: (x[0], x[1]))
        vaults = set(res.truth["vaults"])
        for t, kind, obj in items:
            if kind == 0:
                self.apply_misc(obj)
                continue
            adl = [(u, f) for u, f in obj["events"] if f["dir"] == "Auto-Deleveraging"]
            if adl:
                self.adl_checks.append(self._adl_facts(t, adl, vaults))
            for u, f in obj["events"]:
                self.apply_fill(u, f)
        return self

    def _adl_facts(self, t: int, adl: list, vaults: set) -> dict:
        """Before the block: the loser's equity, and whether the ADL'd winners
        of each coin are the top of Hyperliquid's index (venues.md §1.4)."""
        losers = {f["liquidation"]["liquidatedUser"] for _, f in adl}
        ranked_ok = True
        for coin in sorted({f["coin"] for _, f in adl}):
            winners = {u for u, f in adl if f["coin"] == coin}
            side = -1 if next(f for _, f in adl if f["coin"] == coin)["side"] == "B" else 1
            mk = self.mark[coin]
            index = {}
            for (u, c), (s, e) in self.pos.items():
                if c == coin and s * side > 0 and u not in vaults:
                    eq = self.equity(u)
                    ratio = mk / e if s > 0 else e / mk
                    index[u] = ratio * abs(s) * mk / eq if eq > 0 else float("-inf")
            cut = min(index[u] for u in winners)
            # every holder ranked strictly above the lowest ADL'd winner was ADL'd
            ranked_ok &= all(u in winners for u, x in index.items() if x > cut)
        return {"t": t, "equity": {lo: self.equity(lo) for lo in losers}, "ranked": ranked_ok}


@pytest.fixture(scope="module")
def ref(run) -> RefReplay:
    return RefReplay(run).run(run)


# ---------------------------------------------------------------- determinism

def _digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path):
    a = sim.simulate(tmp_path / "a", accounts=300, coins=2, seed=5)
    b = sim.simulate(tmp_path / "b", accounts=300, coins=2, seed=5)
    c = sim.simulate(tmp_path / "c", accounts=300, coins=2, seed=6)
    assert _digest(a.out_dir) == _digest(b.out_dir)
    assert _digest(a.out_dir)["node_fills_by_block.jsonl"] != _digest(c.out_dir)["node_fills_by_block.jsonl"]


def test_lz4_files_are_lz4_frames_holding_the_plain_lines(tmp_path):
    plain = sim.simulate(tmp_path / "p", accounts=300, coins=2, seed=5)
    packed = sim.simulate(tmp_path / "z", accounts=300, coins=2, seed=5, lz4=True)
    assert packed.fills_path.name == "node_fills_by_block.jsonl.lz4"
    assert lz4.frame.decompress(packed.fills_path.read_bytes()) == plain.fills_path.read_bytes()
    assert lz4.frame.decompress(packed.misc_path.read_bytes()) == plain.misc_path.read_bytes()
    assert packed.truth["accounts"] == plain.truth["accounts"]


# ---------------------------------------------------------------- formats

def test_block_lines_and_fills_have_the_real_node_line_keys(run):
    real = orjson.loads(FIXTURE.read_bytes())
    real_fill = real["events"][0][1]
    seen_liq = seen_plain = 0
    for b in blocks(run.fills_path):
        assert list(b) == list(real)
        for user, f in b["events"]:
            assert user.startswith("0x") and len(user) == 42
            if "liquidation" in f:
                assert list(f) == list(real_fill)
                assert list(f["liquidation"]) == list(real_fill["liquidation"])
                seen_liq += 1
            else:
                assert list(f) == [k for k in real_fill if k != "liquidation"]
                seen_plain += 1
    assert seen_liq and seen_plain


def test_numbers_are_decimal_strings_and_ids_are_ints(run):
    for b in blocks(run.fills_path):
        assert isinstance(b["block_number"], int)
        assert iso_ms(b["block_time"]) == b["events"][0][1]["time"]
        for _, f in b["events"]:
            for key in NUMBER_STRINGS:
                v = f[key]
                assert isinstance(v, str) and "e" not in v.lower() and v != "-0.0", (key, v)
                float(v)
            for key in ("time", "oid", "tid"):
                assert type(f[key]) is int
            assert f["side"] in ("B", "A") and f["feeToken"] == "USDC"
            assert f["hash"].startswith("0x") and len(f["hash"]) == 66
            if "liquidation" in f:
                assert isinstance(f["liquidation"]["markPx"], str)
                float(f["liquidation"]["markPx"])


def test_every_adl_fill_carries_the_vault_as_liquidated_user_and_its_mark(run):
    vaults = set(run.truth["vaults"])
    assert sim.HLP_LIQUIDATOR in vaults
    n = 0
    for b in blocks(run.fills_path):
        adl = [f for _, f in b["events"] if f["dir"] == "Auto-Deleveraging"]
        if not adl:
            continue
        # an ADL block holds only ADL pairs, at one timestamp
        assert len(adl) * 2 == len(b["events"])
        assert len({f["time"] for _, f in b["events"]}) == 1
        for user, f in b["events"]:
            liq = f["liquidation"]
            assert liq["liquidatedUser"] in vaults and liq["method"] == "backstop"
            assert f["px"] != liq["markPx"] and f["fee"] == "0.0"
            if f["dir"] != "Auto-Deleveraging":
                assert user == liq["liquidatedUser"]
                assert f["dir"] in ("Liquidated Cross Long", "Liquidated Cross Short")
            else:
                assert user not in vaults
        n += len(adl)
    assert n == run.adl_fills > 0


def test_liquidated_users_fill_with_liquidated_dir_and_counterparties_carry_the_object(run):
    kinds = {"market": 0, "backstop": 0}
    for b in blocks(run.fills_path):
        ev = b["events"]
        for (u1, f1), (u2, f2) in zip(ev[::2], ev[1::2]):
            if "liquidation" not in f1 or f1["dir"] == "Auto-Deleveraging":
                continue
            assert f1["liquidation"]["liquidatedUser"] == u1
            assert f1["dir"].startswith("Liquidated Cross ")
            assert f2["liquidation"] == f1["liquidation"] and not f2["dir"].startswith("Liquidated")
            kinds[f1["liquidation"]["method"]] += 1
            if f1["liquidation"]["method"] == "backstop":
                assert u2 in run.truth["vaults"] and f1["px"] == f1["liquidation"]["markPx"]
    assert kinds["market"] > 0 and kinds["backstop"] > 0


def test_both_sides_of_every_trade_are_present_and_sizes_balance(run, ref):
    by_tid: dict[int, list] = {}
    for u, f in fills(run):
        by_tid.setdefault(f["tid"], []).append((u, f))
    assert len(by_tid) * 2 == run.fills
    for pair in by_tid.values():
        (u1, a), (u2, b) = pair
        assert u1 != u2 and {a["side"], b["side"]} == {"B", "A"}
        for key in ("coin", "px", "sz", "time", "hash"):
            assert a[key] == b[key]
    net: dict[str, float] = {}
    for (u, c), (s, _) in ref.pos.items():
        net[c] = net.get(c, 0.0) + s
    assert all(abs(x) < 1e-6 for x in net.values()), net


def test_misc_events_have_the_documented_shapes(run):
    seen = set()
    for line in sim.open_lines(run.misc_path):
        ev = orjson.loads(line)
        assert list(ev) == ["time", "hash", "inner"]
        iso_ms(ev["time"])
        (variant, body), = ev["inner"].items()
        if variant == "Funding":
            for d in body["deltas"]:
                assert list(d) == ["user", "coin", "funding_amount"]
                float(d["funding_amount"])
            seen.add("funding")
        else:
            assert variant == "LedgerUpdate"
            delta = body["delta"]
            seen.add(delta["type"])
            if delta["type"] == "liquidation":
                assert delta["leverageType"] == "Cross"
                for key in ("accountValue", "liquidatedNtlPos"):
                    float(delta[key])
                assert all(list(p) == ["coin", "szi"] for p in delta["liquidatedPositions"])
    assert seen == {"funding", "deposit", "liquidation"}


def test_block_misc_format_batches_events_like_the_node(tmp_path):
    res = sim.simulate(tmp_path, accounts=300, coins=2, seed=5, misc_format="block")
    for line in sim.open_lines(res.misc_path):
        b = orjson.loads(line)
        assert list(b) == ["local_time", "block_time", "block_number", "events"]
        assert all(e["time"] == b["block_time"] for e in b["events"])


# ---------------------------------------------------------------- accounting and truth

def test_reference_replay_of_the_files_gives_the_truth_equity_of_every_account(run, ref):
    truth = run.truth["accounts"]
    assert set(truth) == set(ref.av0)
    for user, eq in truth.items():
        assert ref.equity(user) == pytest.approx(eq, rel=1e-9, abs=1e-6), user
    for coin, mk in run.truth["marks"].items():
        assert ref.mark[coin] == mk


def test_cash_and_pnl_are_zero_sum_up_to_fees_funding_and_deposits(run, ref):
    tot = run.truth["totals"]
    change = sum(run.truth["accounts"].values()) - sum(ref.av0.values())
    assert ref.fees > 0
    assert tot["fees_usd"] == pytest.approx(ref.fees, rel=1e-9)
    assert change == pytest.approx(ref.funding + ref.deposits - ref.fees, abs=1e-5)
    # funding is paid by one side to the other
    assert abs(ref.funding) < 1e-3


def test_truth_has_several_waves_with_needed_and_deficit_and_a_multi_second_one(run):
    waves = run.truth["waves"]
    assert len(waves) >= 2
    for w in waves:
        assert w["needed_usd"] > 0 and w["deficit_usd"] > 0
        assert set(w["production_haircut_usd"]) == {"0", "500", "1000", "2000", "5000"}
    for a, b in zip(waves, waves[1:]):
        assert b["t_start_ms"] - a["t_end_ms"] > sim.GAP_MS
    assert max(w["t_end_ms"] - w["t_start_ms"] for w in waves) >= 2000


def test_truth_waves_match_the_adl_fills_written(run, ref):
    """Segmentation, needed, deficit and production haircut recomputed from the files."""
    adl = [(f["time"], u, f) for u, f in fills(run) if f["dir"] == "Auto-Deleveraging"]
    waves: list[list] = []
    for row in adl:
        if waves and row[0] - waves[-1][-1][0] <= sim.GAP_MS:
            waves[-1].append(row)
        else:
            waves.append([row])
    truth = run.truth["waves"]
    assert len(waves) == len(truth)
    path: dict[str, list] = {}
    for u, f in fills(run):
        path.setdefault(f["coin"], []).append((f["time"], float(f["px"])))

    def mark_at(coin, t):
        return [p for tt, p in path[coin] if tt <= t][-1]

    for w, tw in zip(waves, truth):
        t0, t1 = w[0][0], w[-1][0]
        assert (t0, t1, len(w)) == (tw["t_start_ms"], tw["t_end_ms"], tw["adl_fills"])
        needed = sum(abs(float(f["liquidation"]["markPx"]) - float(f["px"])) * float(f["sz"])
                     for _, _, f in w)
        assert needed == pytest.approx(tw["needed_usd"], rel=1e-9)
        eqs: dict[str, float] = {}
        for chk in ref.adl_checks:
            if t0 <= chk["t"] <= t1:
                for lo, e in chk["equity"].items():
                    eqs[lo] = min(eqs.get(lo, e), e)
        deficit = sum(max(0.0, -e) for e in eqs.values())
        assert deficit == pytest.approx(tw["deficit_usd"], rel=1e-9)
        for h, value in tw["production_haircut_usd"].items():
            per_user: dict[str, float] = {}
            for _, u, f in w:
                s = 1.0 if f["side"] == "A" else -1.0
                per_user[u] = per_user.get(u, 0.0) + s * float(f["sz"]) * (
                    mark_at(f["coin"], t1 + int(h)) - float(f["px"]))
            assert sum(max(0.0, x) for x in per_user.values()) == pytest.approx(value, rel=1e-9, abs=1e-9)


def test_adl_closes_the_top_of_hyperliquids_index_in_the_band_and_leaves_the_vault_flat(run, ref):
    assert ref.adl_checks and all(c["ranked"] for c in ref.adl_checks)
    assert all(min(c["equity"].values()) < 0 for c in ref.adl_checks)
    band = run.truth["params"]["adl_band"]
    assert band > 0  # the default: ADL capped per step (module docstring)
    capped = 0
    for b in blocks(run.fills_path):
        if not any(f["dir"] == "Auto-Deleveraging" for _, f in b["events"]):
            continue
        vault_fills = [f for _, f in b["events"] if f["dir"] != "Auto-Deleveraging"]
        last: dict[str, dict] = {}
        for f in vault_fills:
            mk, px = float(f["liquidation"]["markPx"]), float(f["px"])
            # within the band, up to one tick of rounding away from the mark (a tick is
            # < 2.5e-4 of a five-significant-figure price above half its start)
            assert abs(px - mk) <= (band + 2.5e-4) * mk, f
            capped += abs(px - mk) >= band * mk * (1 - 1e-9)
            last[f["coin"]] = f
        for f in last.values():  # the vault ends the ADL step flat in every coin
            d = float(f["sz"]) if f["side"] == "B" else -float(f["sz"])
            assert abs(float(f["startPosition"]) + d) < 1e-9, f
    assert capped > 0
    # the hole the capped steps did not cover stays with the vault
    assert min(run.truth["accounts"][v] for v in run.truth["vaults"]) < 0


def test_uncapped_adl_makes_the_vault_whole_so_theta_needed_is_one(tmp_path):
    """adl_band=0: the bankruptcy price; the vault ends every ADL step with equity >= 0, so a
    wave's needed (each block's hole, added) covers its deficit (the largest hole)."""
    res = sim.simulate(tmp_path, **SMALL, adl_band=0.0)
    ref = RefReplay(res).run(res)
    assert ref.adl_checks and all(c["ranked"] for c in ref.adl_checks)
    for v in res.truth["vaults"]:
        assert res.truth["accounts"][v] >= 0
    assert res.truth["waves"] and all(w["theta_needed"] == 1.0 for w in res.truth["waves"])


def test_capped_adl_gives_waves_with_theta_needed_below_one_and_the_replay_agrees(run):
    """The default per-step ADL cap leaves part of the vault's hole to later waves: some waves
    need less than their deficit (0 < θ^needed < 1, paper §4.5), θ^needed varies across waves
    (path variation P > 0), and the engine's replay of the files finds the same θ."""
    from adlmon import replay
    from adlmon.engine.engine import Engine
    from adlmon.engine.ledger import Ledger
    from adlmon.mechanisms.severity import path_variation

    truth = run.truth["waves"]
    below = [w for w in truth if 0.0 < w["theta_needed"] < 1.0]
    assert below, [w["theta_needed"] for w in truth]
    for w in below:
        assert w["needed_usd"] < w["deficit_usd"]
    assert path_variation([w["theta_needed"] for w in truth]) > 0
    engine = Engine("hyperliquid", sim.GAP_MS, sim.HORIZONS_MS, Ledger(new_accounts_empty=True))
    out = replay.replay_files(run.paths, sim.GAP_MS, sim.HORIZONS_MS, engine=engine)
    assert out.ok and not out.errors, out.errors
    got = {(w.t_start_ms, w.t_end_ms): w.to_dict() for w in out.waves}
    for w in below:
        g = got[(w["t_start_ms"], w["t_end_ms"])]
        assert g["adl_fills"] == w["adl_fills"]
        for key in ("theta_needed", "needed_usd", "deficit_usd", "deficit_increment_usd"):
            assert g[key] == pytest.approx(w[key], rel=1e-6), (w["wave_id"], key)


def test_two_vaults_share_the_backstop(tmp_path):
    res = sim.simulate(tmp_path, accounts=1500, coins=3, seed=7, vaults=2)
    takers = {u for u, f in fills(res)
              if f.get("liquidation", {}).get("method") == "backstop" and u in res.truth["vaults"]}
    assert takers == {sim.HLP_LIQUIDATOR, sim.HLP_LIQUIDATOR_2}


# ---------------------------------------------------------------- API and CLI

def test_fill_target_scales_the_background_flow(tmp_path):
    res = sim.simulate(tmp_path, accounts=300, coins=2, seed=5, fills=60_000)
    assert 60_000 <= res.fills < 70_000


def test_cli_writes_the_files_and_rejects_bad_parameters(tmp_path, capsys):
    assert cli_main(["simulate", "--out", str(tmp_path), "--accounts", "300", "--coins", "2",
                     "--seed", "3", "--lz4"]) == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert {"truth.json", "node_fills_by_block.jsonl.lz4", "misc_events.jsonl.lz4"} <= names
    assert any(n.startswith("account_value_snapshot_758750000_") for n in names)
    assert "waves" in capsys.readouterr().out
    assert cli_main(["simulate", "--out", str(tmp_path / "x"), "--blocks", "50"]) == 2
    with pytest.raises(ValueError):
        sim.simulate(tmp_path / "y", shock=1.5)
    with pytest.raises(TypeError):
        sim.simulate(tmp_path / "y", colour="red")


def test_a_fill_target_far_above_what_the_accounts_trade_still_gives_a_cascade(tmp_path):
    # What --fills did before: every trade changed a position, so 400 accounts trading
    # 120 times a block sold their positions before the shock, and no ADL happened.
    busy = sim.simulate(tmp_path / "busy", accounts=400, coins=2, seed=3, trades_per_block=120)
    assert busy.adl_fills == 0
    big = sim.simulate(tmp_path / "big", accounts=400, coins=2, seed=3, fills=100_000)
    assert big.fills >= 100_000 and big.adl_fills > 0 and big.waves
    # the volume past the accounts' own trading is round trips, capped per account
    trades, round_trips = sim.background_rates({**sim.DEFAULTS, "fills": 100_000}, 418, 400)
    assert trades == sim.DEFAULTS["trades_per_block"] and round_trips > 0
    assert sim.background_rates({**sim.DEFAULTS, "fills": 5_000}, 418, 400) == (6, 0)


def test_cli_refuses_an_existing_file_as_out_with_a_message(tmp_path, capsys):
    target = tmp_path / "taken.txt"
    target.write_text("keep me")
    assert cli_main(["simulate", "--out", str(target), "--accounts", "50"]) == 2
    err = capsys.readouterr().err
    assert "exists and is not a directory" in err and "Traceback" not in err
    assert target.read_text() == "keep me"


def test_cli_says_why_when_a_run_has_no_adl(tmp_path, capsys):
    code = cli_main(["simulate", "--out", str(tmp_path), "--accounts", "60", "--coins", "1",
                     "--shock", "0.01", "--seed", "2"])
    err = capsys.readouterr().err
    assert code == 1 and "no ADL in this run" in err and "--shock" in err


def test_help_shows_defaults_and_long_runs_show_progress(capsys):
    with pytest.raises(SystemExit):
        cli_main(["simulate", "--help"])
    out = capsys.readouterr().out
    assert "(default: 2000)" in out and "(default: 0.3)" in out  # accounts, shock
    lines, clock = [], iter(range(0, 1000, 1))

    class Stream:
        def write(self, text):
            lines.append(text)

        def flush(self):
            pass

    progress = sim._Progress(every_s=10, clock=lambda: next(clock), stream=Stream())
    for step in range(1, 51):
        progress(step, 50, step * 100)
    printed = [x for x in lines if x.strip()]
    assert 3 <= len(printed) <= 6 and "step 50/50 (100%), 5,000 fills" in printed[-1]
    short = sim._Progress(every_s=10, clock=lambda: 0, stream=Stream())
    lines.clear()
    for step in range(1, 6):
        short(step, 5, step)
    assert not [x for x in lines if x.strip()]  # a short run prints no progress


def test_num_round_trips_without_exponent_or_negative_zero():
    for x in (0.0, -0.0, 1e-7, 22.075, -28.53, 1.5e17, 0.1 + 0.2):
        s = sim.num(x)
        assert float(s) == x and "e" not in s and s != "-0.0"


def test_iter_archive_streams_every_line_in_time_order(run):
    items = list(sim.iter_archive(run))
    times = [t for t, _, _ in items]
    assert times == sorted(times)
    n_fill_lines = sum(1 for _ in sim.open_lines(run.fills_path))
    n_misc_lines = sum(1 for _ in sim.open_lines(run.misc_path))
    assert sum(k == "fills" for _, k, _ in items) == n_fill_lines == run.blocks
    assert sum(k == "misc" for _, k, _ in items) == n_misc_lines
    for t, kind, obj in items:
        assert t == (obj["events"][0][1]["time"] if kind == "fills" else iso_ms(obj["time"]))


def test_truth_uses_the_gap_and_horizons_asked_for(tmp_path):
    assert cli_main(["simulate", "--out", str(tmp_path), "--accounts", "1500", "--coins", "3",
                     "--seed", "7", "--gap-ms", "60000", "--horizons-ms", "0,250"]) == 0
    truth = orjson.loads((tmp_path / "truth.json").read_bytes())
    assert truth["gap_ms"] == 60000 and truth["horizons_ms"] == [0, 250]
    assert len(truth["waves"]) == 1  # a gap longer than the quiet between drops joins them
    assert set(truth["waves"][0]["production_haircut_usd"]) == {"0", "250"}
