"""State snapshots (engine/persist.py): a restart at any point reports what an
uninterrupted run reports; a damaged snapshot is never used and never crashes."""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from adlmon.counterfactual import Counterfactual
from adlmon.engine import persist
from adlmon.engine.engine import Engine
from adlmon.engine.ledger import Ledger
from adlmon.engine.persist import SnapshotError, StateStore, VenueState
from adlmon.metrics import Metrics
from adlmon.replay import replay_files
from adlmon.sim import line_time_ms, simulate

VENUE = "hyperliquid"
GAP_MS = 5000
HORIZONS = (0, 500, 1000, 2000, 5000)


def _dump(obj) -> bytes:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
                        | orjson.OPT_SORT_KEYS)


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    """A small simulated cascade, its uninterrupted replay (reports and the
    counterfactual's state) and every line's time, per data file."""
    out = tmp_path_factory.mktemp("cascade")
    res = simulate(out, accounts=800, coins=3, seed=1)
    cf = Counterfactual()
    full = replay_files(res.paths, GAP_MS, HORIZONS, report_builder=cf.report)
    assert len(full.reports) >= 3, "the cascade must have several waves to split"
    files = {}
    for path in (res.fills_path, res.misc_path):
        lines = path.read_bytes().splitlines(keepends=True)
        files[path.name] = [(line_time_ms(ln), ln) for ln in lines]
    times = sorted({t for lines in files.values() for t, _ in lines})
    return res, full, cf, files, times


def _write_parts(files: dict, split_t: int, where: Path) -> tuple[list[Path], list[Path]]:
    """Each data file cut at ``split_t``: lines before it, lines from it on."""
    first, second = [], []
    for name, lines in files.items():
        a, b = where / f"a-{name}", where / f"b-{name}"
        a.write_bytes(b"".join(ln for t, ln in lines if t < split_t))
        b.write_bytes(b"".join(ln for t, ln in lines if t >= split_t))
        first.append(a)
        second.append(b)
    return first, second


def _regret_state(cf: Counterfactual) -> bytes:
    return _dump({"regret": vars(cf._regret), "loss": cf._loss,
                  "controller": vars(cf.controller)})


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frac=st.floats(0.0, 1.0))
def test_restart_at_any_point_reports_what_the_uninterrupted_run_reports(cascade, frac):
    res, full, cf_full, files, times = cascade
    split_t = times[min(int(frac * len(times)), len(times) - 1)]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        first, second = _write_parts(files, split_t, tmp)
        # Before the restart: snapshot files and the first part, input not ended.
        engine = Engine(VENUE, GAP_MS, HORIZONS, Ledger(new_accounts_empty=True))
        cf = Counterfactual()
        before = replay_files([res.account_snapshot_path, res.positions_snapshot_path, *first],
                              GAP_MS, HORIZONS, report_builder=cf.report, engine=engine,
                              finish=False)
        store = StateStore(tmp / "state", VENUE)
        assert store.save(VenueState(VENUE, engine, cf, recent_waves=before.reports,
                                     sources={"node": {"offset": 123}})) is not None
        del engine, cf
        # After: a fresh process would load the newest snapshot and go on.
        state = StateStore(tmp / "state", VENUE).load()
        assert state is not None and state.sources == {"node": {"offset": 123}}
        assert state.next_wave_id == len(before.reports) + 1 + (
            state.engine.waves.open_wave_start_ms is not None) + len(state.engine.waves._waiting)
        after = replay_files(second, GAP_MS, HORIZONS, report_builder=state.counterfactual.report,
                             engine=state.engine)
    got = [*state.recent_waves, *after.reports]
    assert [r["wave_id"] for r in got] == [r["wave_id"] for r in full.reports]
    assert _dump(got) == _dump(full.reports)  # every figure, counterfactual included
    assert _regret_state(state.counterfactual) == _regret_state(cf_full)
    assert state.engine.stats == full.stats


def _one_snapshot(tmp: Path, engine_waves: int = 0) -> tuple[StateStore, VenueState]:
    engine = Engine(VENUE, GAP_MS, HORIZONS)
    engine.waves._next_id = 7 + engine_waves
    state = VenueState(VENUE, engine, Counterfactual(), totals={"x": 1.0})
    store = StateStore(tmp, VENUE)
    store.save(state)
    return store, state


def test_keeps_the_newest_two_and_falls_back_to_the_previous_one(tmp_path):
    store, _ = _one_snapshot(tmp_path)
    for extra in (1, 2):
        _one_snapshot(tmp_path, extra)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [f"{VENUE}.state.2", f"{VENUE}.state.3"]
    newest = tmp_path / f"{VENUE}.state.3"
    newest.write_bytes(newest.read_bytes()[:-10])  # a crash mid-write of a copy, say
    metrics = Metrics(process_collectors=False)
    store = StateStore(tmp_path, VENUE, metrics=metrics)
    state = store.load()
    assert state is not None and state.next_wave_id == 8  # the previous snapshot's
    status = store.status()
    assert status["fell_back"] is True
    assert status["problems"][0]["reason"] == "truncated"
    assert status["resumed_from"]["file"].endswith(".state.2")
    text = metrics.exposition().decode()
    assert 'adlmon_state_snapshot_errors_total{reason="truncated",venue="hyperliquid"} 1.0' in text
    # The next save continues the numbering (never overwrites the damaged file's number).
    assert store.save(state).name == f"{VENUE}.state.4"


def test_other_format_version_is_not_used(tmp_path, monkeypatch):
    _one_snapshot(tmp_path)
    monkeypatch.setattr(persist, "FORMAT_VERSION", persist.FORMAT_VERSION + 1)
    store = StateStore(tmp_path, VENUE)
    assert store.load() is None
    assert store.problems[0]["reason"] == "version"


def test_a_payload_naming_other_code_is_refused(tmp_path):
    """Even with a correct checksum, a payload may only name adlmon/numpy classes."""
    payload = pickle.dumps(os.system)
    import hashlib

    header = orjson.dumps({"format": persist.FORMAT_VERSION, "adlmon": persist.__version__,
                           "venue": VENUE, "payload_bytes": len(payload)})
    digest = hashlib.sha256(header + b"\n" + payload).hexdigest().encode()
    data = persist.MAGIC + header + b"\n" + digest + b"\n" + payload
    with pytest.raises(SnapshotError) as err:
        persist.decode(data, VENUE)
    assert err.value.reason == "corrupt" and "not allowed" in str(err.value)


def test_write_failure_is_reported_not_raised(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    metrics = Metrics(process_collectors=False)
    store = StateStore(blocker / "state", VENUE, metrics=metrics)
    assert store.save(VenueState(VENUE, Engine(VENUE))) is None
    assert store.problems[-1]["reason"] == "write_failed"
    assert 'reason="write_failed",venue="hyperliquid"} 1.0' in metrics.exposition().decode()


@pytest.fixture(scope="module")
def good_snapshot(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("snap")
    _one_snapshot(tmp)  # seq 1: the previous good one
    _one_snapshot(tmp, 5)  # seq 2: to be damaged
    return tmp, (tmp / f"{VENUE}.state.2").read_bytes()


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_damaged_snapshot_never_crashes_load_and_falls_back(good_snapshot, data):
    tmp, raw = good_snapshot
    how = data.draw(st.sampled_from(["flip", "truncate", "garbage"]))
    at = data.draw(st.integers(0, len(raw) - 1))
    if how == "flip":
        bad = bytearray(raw)
        bad[at] ^= data.draw(st.integers(1, 255))
        bad = bytes(bad)
    elif how == "truncate":
        bad = raw[:at]
    else:
        bad = raw[:at] + data.draw(st.binary(min_size=1, max_size=64)) + raw[at + 1:]
    if bad == raw:
        return
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        (d / f"{VENUE}.state.1").write_bytes((tmp / f"{VENUE}.state.1").read_bytes())
        (d / f"{VENUE}.state.2").write_bytes(bad)
        store = StateStore(d, VENUE)
        state = store.load()
    # The checksum covers everything after the magic: any damage is caught.
    assert state is not None and store.fell_back
    assert state.next_wave_id == 7  # the previous snapshot's
    assert store.problems[0]["reason"] in ("corrupt", "truncated")


def _wave_lines(metrics: Metrics) -> list[str]:
    groups = {"adlmon_adl_", "adlmon_deficit_", "adlmon_insurance_"}
    return sorted(ln for ln in metrics.exposition().decode().splitlines()
                  if not ln.startswith("#") and any(ln.startswith(g) for g in groups)
                  and "compute_duration" not in ln)


def test_wave_series_carry_over_a_restart(cascade):
    """Counters continue from their totals, gauges (last wave, regret bound, policy
    losses) keep their values: the restarted daemon's /metrics reads as before."""
    _res, full, _cf, _files, _times = cascade
    before = Metrics(process_collectors=False)
    for report in full.reports:
        before.observe_wave(report)
    after = Metrics(process_collectors=False)
    assert after.restore_series(pickle.loads(pickle.dumps(before.saved_series()))) > 0
    assert _wave_lines(after) == _wave_lines(before)
    assert any(ln.startswith("adlmon_adl_regret_bound_usd") and not ln.endswith("NaN")
               for ln in _wave_lines(after))


def test_a_snapshot_of_another_configuration_is_not_used(tmp_path):
    _one_snapshot(tmp_path)
    store = StateStore(tmp_path, VENUE)
    assert store.load(lambda st: "gap_ms changed") is None
    assert store.problems[0]["reason"] == "config_changed"
    assert StateStore(tmp_path, VENUE).load(lambda st: None) is not None
