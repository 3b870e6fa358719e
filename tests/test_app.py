"""adlmon run: the live daemon end to end against the fake venue, and as a real process."""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from live_venue import (
    SPEED, free_port, metric as _metric, live_config, make_cascade, replay_reports, same,
    start_daemon, wait_for,
)
from adlmon.app import VenueClock, effective_config
from adlmon.metrics import FAMILIES, Metrics
from adlmon.venues.hyperliquid.fake import FakeHyperliquid
from tools import require_tool

ADLMON = [sys.executable, "-m", "adlmon"]

# A reconnect on a loaded machine loses trades beyond what the venue re-sends (the fault
# matrix in test_faults.py covers that); these end-to-end comparisons must not depend on it.
NO_LOAD_RECONNECTS = {"liveness_timeout_s": 3.0, "silence_budget_s": 3.0}
NO_LOAD_JOIN_HOLD_MS = 40_000  # 2 s of wall time at the fake venue's speed


@pytest.fixture(scope="module")
def cascade(tmp_path_factory):
    sim = make_cascade(tmp_path_factory.mktemp("cascade"))
    return sim, replay_reports(sim)


def wave_samples(text: str) -> dict:
    """Samples of the wave families (what a wave report determines) from an exposition."""
    names = {f.base_name for f in FAMILIES if f.group == "waves"}
    out = {}
    for fam in text_string_to_metric_families(text):
        if fam.name in names:
            for s in fam.samples:
                if not s.name.endswith("_created"):
                    out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_live_daemon_reports_the_same_waves_and_wave_metrics_as_a_replay(cascade, tmp_path):
    sim, reference = cascade
    fake = await FakeHyperliquid(sim.out_dir, speed=SPEED, paused=True).start()
    daemon, _tap = await start_daemon(fake, live_config(fake, tmp_path, **NO_LOAD_RECONNECTS),
                                      join_hold_ms=NO_LOAD_JOIN_HOLD_MS)
    try:
        fake.resume()
        await wait_for(fake.done.is_set, 20)
        await wait_for(lambda: len(daemon.reports) >= len(reference), 20)
        async with aiohttp.ClientSession() as http:
            async with http.get(daemon.url + "/metrics") as r:
                exposition = await r.text()
            async with http.get(daemon.url + "/api/status") as r:
                status = await r.json()
            async with http.get(daemon.url + "/readyz") as r:
                ready = r.status
    finally:
        await daemon.stop()
        await fake.stop()

    assert len(daemon.reports) == len(reference) >= 2
    for live, ref in zip(daemon.reports, reference):
        assert same(live, ref) == [], live["wave_id"]
        # the live ledger lacks the winners: their state was read after the wave
        assert live["winner_state"]["polled"] > 0
        assert live["winner_state"]["source"] == "clearinghouseState after the wave"
        assert "capacity_source" in live["counterfactual"]
    # the same wave metrics as the replay's reports give
    ref_metrics = Metrics(process_collectors=False)
    for ref in reference:
        ref_metrics.observe_wave(ref)
    live_samples = wave_samples(exposition)
    ref_samples = wave_samples(ref_metrics.exposition().decode())
    assert live_samples.keys() == ref_samples.keys()
    for key, value in ref_samples.items():
        assert math.isclose(live_samples[key], value, rel_tol=1e-9, abs_tol=1e-9) or (
            math.isnan(value) and math.isnan(live_samples[key])), key
    # the wavelog holds the same reports, one per line
    lines = (tmp_path / "wavelog.jsonl").read_bytes().splitlines()
    assert [orjson.loads(x)["wave_id"] for x in lines] == [r["wave_id"] for r in daemon.reports]
    # /api/status states per source what it can and cannot see
    assert ready == 200
    sources = status["sources"]
    assert {"hyperliquid.market", "hyperliquid.vault_state"} <= sources.keys()
    assert any(name.startswith("hyperliquid.vault.") for name in sources)
    for s in sources.values():
        assert "Cannot see" in s["coverage"] or "Winners' capacities only" in s["coverage"]
    vault = sources["hyperliquid.vault_state"]["vaults"][sim.truth["vaults"][0]]
    assert vault["bootstrapped"]
    # the vault's balance and shortfall from clearinghouseState, as gauges
    samples = {(s.name, s.labels.get("pool")): s.value
               for fam in text_string_to_metric_families(exposition) for s in fam.samples}
    balance = samples[("adlmon_insurance_fund_usd", "hlp_liquidator")]
    assert samples[("adlmon_deficit_usd", None)] == max(0.0, -balance)
    assert vault["account_value_usd"] is not None


def test_venue_clock_follows_the_latest_event_with_slack():
    wall = [100.0]
    clock = VenueClock(wall=lambda: wall[0], slack_ms=250, rate=2.0)
    clock.observe(1_000_000)
    assert clock.now_ms() == 1_000_000
    wall[0] += 1.0  # one second of wall time at rate 2, minus the slack
    assert clock.now_ms() == 1_000_000 + 2000 - 250
    clock.observe(999_000)  # an older event never moves the clock back
    assert clock.now_ms() == 1_001_750


def test_command_line_overrides_listen_and_points_info_at_the_venue_host(tmp_path):
    args = argparse.Namespace(config=None, listen="127.0.0.1:19817",
                              venue_url="ws://127.0.0.1:8123/ws", info_url=None)
    cwd = os.getcwd()
    os.chdir(tmp_path)  # no config.toml here: built-in defaults
    try:
        cfg = effective_config(args)
    finally:
        os.chdir(cwd)
    assert cfg.server.listen == "127.0.0.1:19817"
    assert cfg.venues.hyperliquid.ws_url == "ws://127.0.0.1:8123/ws"
    assert cfg.venues.hyperliquid.info_url == "http://127.0.0.1:8123/info"


# ----------------------------------------------------------------- real processes

def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "adlmon.toml"
    path.write_text(f"""
[wavelog]
path = "{tmp_path / 'wavelog.jsonl'}"
[venues.hyperliquid]
backoff_initial_s = 0.05
backoff_max_s = 0.2
quarantine_path = "{tmp_path / 'quarantine.jsonl'}"
{extra}
""")
    return path


def _spawn(args: list[str], tmp_path: Path, env_extra: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env_extra or {})}
    return subprocess.Popen(ADLMON + args, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)


def _get(url: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode()
        try:
            _get(url)
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"{url} never answered")


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=10)  # the bound the issue sets for a clean stop
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return code, proc.stdout.read().decode()


def test_sigterm_stops_a_real_adlmon_run_within_10s_with_the_wavelog_flushed_and_systemd_told(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    notify = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(notify))
    sock.settimeout(0.2)
    proc = _spawn(["run", "--demo", "--demo-speed", "10", "--listen", f"127.0.0.1:{port}",
                   "--config", str(_config(tmp_path))], tmp_path,
                  {"NOTIFY_SOCKET": str(notify), "WATCHDOG_USEC": "1000000",
                   "TMPDIR": str(tmp_path)})  # the demo's own directory lands here
    try:
        _wait_http(base + "/livez", proc)
        deadline = time.monotonic() + 30
        waves = 0
        while waves < 1 and time.monotonic() < deadline:
            waves = orjson.loads(_get(base + "/api/waves")[1])["count"]
            time.sleep(0.1)
        assert waves >= 1
    finally:
        code, output = _stop(proc)
    messages = []
    try:
        while True:
            messages.append(sock.recv(4096).decode())
    except (socket.timeout, BlockingIOError):
        pass
    sock.close()
    assert code == 0, output
    # the demo writes its waves to the directory it names, never to [wavelog] path
    assert not (tmp_path / "wavelog.jsonl").exists()
    wavelog = Path(re.search(r"waves in (\S+wavelog\.jsonl)", output).group(1))
    assert wavelog.parent.parent == tmp_path and wavelog.parent.name.startswith("adlmon-demo-")
    lines = wavelog.read_bytes().splitlines()
    assert len(lines) >= waves and all(orjson.loads(x)["venue"] == "hyperliquid" for x in lines)
    assert any("READY=1" in m for m in messages) and any("STOPPING=1" in m for m in messages)
    assert any("WATCHDOG=1" in m for m in messages)  # from the loop, every half interval


def spawn_offline(tmp_path: Path) -> tuple[subprocess.Popen, str]:
    """``adlmon run`` whose venue address has nothing listening; (process, base URL)."""
    port, dead = free_port(), free_port()  # nothing listens on `dead`
    proc = _spawn(["run", "--listen", f"127.0.0.1:{port}", "--venue-url",
                   f"ws://127.0.0.1:{dead}/ws", "--config", str(_config(tmp_path))], tmp_path)
    return proc, f"http://127.0.0.1:{port}"


def test_unreachable_venue_stays_up_serves_metrics_not_ready_and_retries_with_backoff(tmp_path):
    proc, base = spawn_offline(tmp_path)
    try:
        _wait_http(base + "/livez", proc)
        deadline = time.monotonic() + 20
        first = 0.0
        while first < 2 and time.monotonic() < deadline:
            first = _metric(_get(base + "/metrics")[1], "adlmon_feed_reconnects_total",
                            reason="connect_error")
            time.sleep(0.1)
        assert first >= 2
        time.sleep(0.5)
        status, body = _get(base + "/metrics")
        later = _metric(body, "adlmon_feed_reconnects_total", reason="connect_error")
        deadline = time.monotonic() + 10
        ready, why = _get(base + "/readyz")
        while "hyperliquid.vault." not in why and time.monotonic() < deadline:
            assert ready == 503  # never ready meanwhile (start-up entries, then the sources)
            time.sleep(0.1)
            ready, why = _get(base + "/readyz")
        live, _ = _get(base + "/livez")
        sources = orjson.loads(_get(base + "/api/status")[1])["sources"]
    finally:
        code, output = _stop(proc)
    assert status == 200 and later > first  # still retrying
    assert _metric(body, "adlmon_feed_connected") == 0
    assert ready == 503 and "hyperliquid.vault." in why
    assert live == 200
    assert sources and not any(s["healthy"] for s in sources.values())
    assert all(s["detail"] for s in sources.values())
    assert code == 0, output
    assert "connect_error" in output  # logged clearly


async def test_live_daemon_over_a_real_nats_jetstream_bus_reports_the_same_waves(cascade, tmp_path):
    server = require_tool("nats-server", package="nats-server")
    pytest.importorskip("nats", reason="nats-py (the [nats] extra) is not installed")
    sim, reference = cascade
    port = free_port()
    proc = subprocess.Popen([server, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd",
                             str(tmp_path / "js")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "nats-server did not start"
                time.sleep(0.05)
        fake = await FakeHyperliquid(sim.out_dir, speed=SPEED, paused=True).start()
        cfg = live_config(fake, tmp_path, **NO_LOAD_RECONNECTS)
        cfg = dataclasses.replace(cfg, bus=dataclasses.replace(
            cfg.bus, kind="nats", nats_url=f"nats://127.0.0.1:{port}"))
        daemon, _tap = await start_daemon(fake, cfg, join_hold_ms=NO_LOAD_JOIN_HOLD_MS)
        try:
            fake.resume()
            await wait_for(fake.done.is_set, 20)
            await wait_for(lambda: len(daemon.reports) >= len(reference), 20)
        finally:
            await daemon.stop()
            await fake.stop()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert type(daemon.bus).__name__ == "NatsBus" and daemon.bus.consumed > 0
    for live, ref in zip(daemon.reports, reference):
        assert same(live, ref) == []
